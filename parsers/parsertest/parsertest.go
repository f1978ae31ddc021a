// Package parsertest holds helpers for testing parsers: a compact, stable
// rendering of events for table tests and golden files.
package parsertest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaywatch/relaywatch/parsers"
)

// Summary renders the fields of an event that a test checks, as
// "kind=accept queue_id=ABC client_ip=1.2.3.4 ...": every non-empty field
// except time, host, program and the raw line, in a fixed order.
func Summary(e parsers.Event) string {
	var b strings.Builder
	add := func(k, v string) {
		if v == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if strings.ContainsAny(v, " \"") {
			v = fmt.Sprintf("%q", v)
		}
		b.WriteString(k + "=" + v)
	}
	add("kind", e.Kind.String())
	add("queue_id", e.QueueID)
	add("client_name", e.ClientName)
	add("client_ip", e.ClientIP)
	add("helo", e.Helo)
	add("proto", e.Proto)
	add("auth_method", e.AuthMethod)
	add("auth_user", e.AuthUser)
	if e.FromSet {
		add("from", "<"+e.From+">")
	}
	add("to", e.To)
	add("orig_to", e.OrigTo)
	add("orig_queue_id", e.OrigQueueID)
	add("requeued", e.Requeued)
	if e.Forwarded {
		add("forwarded", "true")
	}
	if e.RelayDomain {
		add("relay_domain", "true")
	}
	if e.RelayDenied {
		add("relay_denied", "true")
	}
	add("relay", e.Relay)
	add("delay", e.Delay)
	add("status", e.Status.String())
	if e.Mailbox {
		add("mailbox", "true")
	}
	add("dsn", e.DSN)
	if e.Code != 0 {
		add("code", fmt.Sprint(e.Code))
	}
	add("action", e.Action)
	add("stage", e.Stage)
	add("reply", e.Reply)
	add("message_id", e.MessageID)
	add("subject", e.Subject)
	if e.Size != 0 {
		add("size", fmt.Sprint(e.Size))
	}
	if e.Nrcpt != 0 {
		add("nrcpt", fmt.Sprint(e.Nrcpt))
	}
	add("uid", e.UID)
	add("detail", e.Detail)
	if e.BadFields != 0 {
		add("bad_fields", fmt.Sprint(e.BadFields))
	}
	return b.String()
}

// CorpusDirs returns the directories of real log lines for a format: the
// in-repository testdata/corpus (or testdata/corpus/<format> when the
// package reads several formats; permissively licensed lines only) and, when
// it exists, the shared corpus's <format> directory, named by
// RELAYWATCH_CORPUS (default ../../../shared/corpus, relative to a parser
// package). Under CI=true a missing shared corpus fails the test unless
// RELAYWATCH_CORPUS=none says, loudly, that the machine has none.
func CorpusDirs(t testing.TB, format string) []string {
	t.Helper()
	dirs := []string{filepath.Join("testdata", "corpus")}
	if sub := filepath.Join("testdata", "corpus", format); isDir(sub) {
		dirs = []string{sub}
	}
	shared := os.Getenv("RELAYWATCH_CORPUS")
	switch shared {
	case "none":
		t.Log("RELAYWATCH_CORPUS=none: only the lines copied into the repository are checked")
		return dirs
	case "":
		shared = filepath.Join("..", "..", "..", "shared", "corpus")
	}
	dir := filepath.Join(shared, format)
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("shared corpus %s missing under CI=true (set RELAYWATCH_CORPUS to it, or to none): %v", dir, err)
		}
		t.Logf("shared corpus %s not found: only the in-repository lines are checked", dir)
		return dirs
	}
	return append(dirs, dir)
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// Golden compares got with the golden file at path, or rewrites the file
// when update is set (go test -update).
func Golden(t testing.TB, path, got string, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file: %v (run go test -update)", err)
	}
	if string(want) != got {
		wl, gl := strings.Split(string(want), "\n"), strings.Split(got, "\n")
		for i := 0; i < len(wl) && i < len(gl); i++ {
			if wl[i] != gl[i] {
				t.Fatalf("%s differs at line %d:\n got  %s\n want %s\n(run go test -update if the change is intended)", path, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%s: %d lines, want %d", path, len(gl), len(wl))
	}
}

// BenchmarkLines parses data (a log, one line per '\n') with p over and
// over on one core and reports lines/s; the parser benchmarks of every
// format share it.
func BenchmarkLines(b *testing.B, p parsers.Parser, data string) {
	lines := strings.Split(strings.TrimSuffix(data, "\n"), "\n")
	dst := make([]parsers.Event, 0, 8)
	b.SetBytes(int64(len(data) / len(lines)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst, _ = p.Parse(lines[i%len(lines)], dst[:0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
