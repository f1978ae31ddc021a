package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/relaywatch/relaywatch/alert"
	"github.com/relaywatch/relaywatch/parsers/source"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }
func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}
func (b *syncBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

var listenRE = regexp.MustCompile(`serving /metrics.* addr=(\S+)`)

// waitUntil polls cond (the state of a server or a file, not the passing of
// time) until it holds.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scrape fetches /metrics and parses it with Prometheus' text parser.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	out := map[string]float64{}
	for name, fam := range fams {
		for _, m := range fam.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			out[name+"{"+strings.Join(labels, ",")+"}"] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return out
}

// metricsAddr waits for watch to say where it serves /metrics.
func metricsAddr(t *testing.T, stderr *syncBuffer) string {
	t.Helper()
	var addr string
	deadline := time.Now().Add(10 * time.Second)
	for addr == "" {
		if m := listenRE.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for the HTTP server; stderr:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return addr
}

// waitReady waits until /readyz says every file is followed.
func waitReady(t *testing.T, addr string) {
	t.Helper()
	waitUntil(t, 10*time.Second, "readiness", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// buildBinary builds relaywatch once per test run, for tests that run it as
// a process (the dir argument is kept for the callers' sake).
func buildBinary(t *testing.T, _ string) string {
	t.Helper()
	binaryOnce.Do(func() {
		binaryPath = filepath.Join(testBinDir, "relaywatch")
		if out, err := exec.Command("go", "build", "-o", binaryPath, ".").CombinedOutput(); err != nil {
			binaryErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

// startProcess runs the binary with args and waits for its HTTP server.
func startProcess(t *testing.T, bin string, args ...string) (*exec.Cmd, string, *syncBuffer) {
	t.Helper()
	errOut := newSyncBuffer()
	cmd := exec.Command(bin, args...)
	cmd.Stderr = errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, metricsAddr(t, errOut), errOut
}

func TestWatchFollowsAlertsServesMetricsAndStopsCleanly(t *testing.T) {
	// nxadm/tail keeps one process-wide inotify tracker (and its fsnotify
	// reader) for all tailers, by design; everything else must be gone.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/nxadm/tail/watch.(*InotifyTracker).run"),
		goleak.IgnoreAnyFunction("github.com/fsnotify/fsnotify.(*Watcher).readEvents"),
		goleak.IgnoreAnyFunction("github.com/fsnotify/fsnotify.(*inotify).readEvents")) // fsnotify >= 1.8
	defer http.DefaultClient.CloseIdleConnections() // the scrapes' keep-alive connections
	dir := t.TempDir()
	log := filepath.Join(dir, "mail.log")
	os.WriteFile(log, nil, 0o644)
	alerts := filepath.Join(dir, "alerts.jsonl")
	stderr := newSyncBuffer()
	e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: stderr, getenv: func(string) string { return "" }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, e, []string{"watch", "--mta-config", "none", "--state-dir", filepath.Join(dir, "state"), "--listen", "127.0.0.1:0",
			"--state-interval", "200ms", "--rescan", "100ms", "--year", "2026", "--timezone", "UTC",
			"--trusted-networks", "127.0.0.1/32", "--alerts-log", alerts, "--instance", "mail", log})
	}()
	addr := metricsAddr(t, stderr)
	waitReady(t, addr)

	// Append the incident, measuring how long the first finding takes.
	sample, _ := os.ReadFile(filepath.Join("..", "..", "samples", "postfix", "incident.log"))
	burst := bytes.Index(sample, []byte("client=unknown[127.0.0.66]"))
	cut := bytes.LastIndexByte(sample[:burst], '\n') + 1
	f, _ := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0o644)
	f.Write(sample[:cut])
	f.Sync()
	waitUntil(t, 10*time.Second, "the quiet part", func() bool {
		return scrape(t, addr)[`relaywatch_file_offset_bytes{file=`+log+`}`] == float64(cut)
	})
	start := time.Now()
	f.Write(sample[cut:])
	f.Close()
	var latency time.Duration
	waitUntil(t, 10*time.Second, "the first alert", func() bool {
		data, _ := os.ReadFile(alerts)
		if bytes.Contains(data, []byte(`"fired"`)) {
			latency = time.Since(start)
			return true
		}
		return false
	})
	// Reported, not asserted: speed goals live in measurements, and this
	// machine is shared (the end-to-end run asserts its 5 s budget).
	t.Logf("latency from the burst's first line to its first alert: %v", latency)
	waitUntil(t, 10*time.Second, "every line", func() bool {
		return scrape(t, addr)[`relaywatch_file_offset_bytes{file=`+log+`}`] == float64(len(sample))
	})
	m := scrape(t, addr)
	for series, want := range map[string]float64{
		`relaywatch_lines_total{format=postfix,result=parsed}`:                     2404,
		`relaywatch_alerts_active{rule=foreign-to-foreign,severity=critical}`:      2,
		`relaywatch_alerts_active{rule=unknown-relaying-client,severity=critical}`: 2,
		`relaywatch_file_behind_bytes{file=` + log + `}`:                           0,
	} {
		if m[series] != want {
			t.Errorf("%s = %v, want %v", series, m[series], want)
		}
	}
	for series := range m {
		if strings.Contains(series, "127.0.0.66") {
			t.Errorf("series %s carries log content", series)
		}
	}

	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("watch did not stop after cancellation")
	}
	var st watchState
	data, err := os.ReadFile(filepath.Join(dir, "state", "state.json"))
	if err != nil || json.Unmarshal(data, &st) != nil {
		t.Fatalf("state: %v", err)
	}
	positions, _, err := source.LoadPositions(filepath.Join(dir, "state", "positions.json"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := alert.OpenStore(filepath.Join(dir, "state", alertStoreFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := positions[log]; !ok || p.Offset != int64(len(sample)) || len(store.Open()) != 10 { // the six of the relaying, three of relay-probing, one relay-trick-accepted
		t.Errorf("state: position %+v, %d open alerts", p, len(store.Open()))
	}
	store.Close()
}

// TestWatchSurvivesKill9 runs watch as a process, kills it with SIGKILL in
// the middle of the incident, and restarts it: no line is lost and no alert
// fires twice.
func TestWatchSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	log := filepath.Join(dir, "mail.log")
	os.WriteFile(log, nil, 0o644)
	alerts := filepath.Join(dir, "alerts.jsonl")
	state := filepath.Join(dir, "state")
	start := func() (*exec.Cmd, string, *syncBuffer) {
		return startProcess(t, bin, "watch", "--mta-config", "none", "--state-dir", state, "--listen", "127.0.0.1:0", "--state-interval", "100ms",
			"--rescan", "100ms", "--year", "2026", "--timezone", "UTC", "--trusted-networks", "127.0.0.1/32",
			"--alerts-log", alerts, "--instance", "mail", log)
	}
	sample, _ := os.ReadFile(filepath.Join("..", "..", "samples", "postfix", "incident.log"))
	lines := bytes.SplitAfter(sample, []byte("\n"))
	half := len(lines) * 6 / 10 // inside the burst

	cmd, addr, _ := start()
	waitReady(t, addr) // a first start reads from the end: write only once the file is followed
	f, _ := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0o644)
	f.Write(bytes.Join(lines[:half], nil))
	halfSize := len(bytes.Join(lines[:half], nil))
	waitUntil(t, 10*time.Second, "the first half", func() bool {
		return scrape(t, addr)[`relaywatch_file_offset_bytes{file=`+log+`}`] == float64(halfSize)
	})
	// Wait for a state save that covers part of it, then kill -9.
	waitUntil(t, 10*time.Second, "a state save", func() bool { return scrape(t, addr)[`relaywatch_state_saves_total{result=ok}`] >= 2 })
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	f.Write(bytes.Join(lines[half:], nil))
	f.Close()
	cmd, addr, errOut := start()
	waitUntil(t, 15*time.Second, "every line after the restart", func() bool {
		return scrape(t, addr)[`relaywatch_file_offset_bytes{file=`+log+`}`] == float64(len(sample))
	})
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("SIGTERM: %v\n%s", err, errOut.String())
	}

	// Every alert fired exactly once over both runs.
	fired := firedAlerts(t, alerts)
	if len(fired) != 10 { // the six of the relaying, three of relay-probing, one relay-trick-accepted
		t.Errorf("alerts fired: %v, want the ten of the incident", fired)
	}
	for k, n := range fired {
		if n != 1 {
			t.Errorf("%s fired %d times", k, n)
		}
	}
}

func TestWatchUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"watch", "--state-dir", t.TempDir()}, "nothing to watch"},
		{[]string{"watch", "x.log"}, "--state-dir is required"},
		{[]string{"watch", "--state-dir", t.TempDir(), "--listen", "256.0.0.1:99999", "x.log"}, "--listen"},
		{[]string{"watch", "--state-dir", t.TempDir(), "--slack-update-interval", "-1m", "x.log"}, "--slack-update-interval -1m0s: must not be negative"},
	} {
		code, _, errOut := runCmd(t, "", tt.args...)
		if code != exitUsage || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d %q, want 2 and %q", tt.args, code, errOut, tt.want)
		}
	}
}

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(bad, []byte("local-domains:\n  - example.org\ntrusted-networks: [127.0.0.0/8, 10.0.0.0/33]\nspike-factor: lots\nfrobnicate: 1\nlocal-domains: [x]\nlisten: [a, b]\n"), 0o644)
	code, _, errOut := runCmd(t, "", "check-config", bad)
	if code != exitUsage {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{
		"line 4: spike-factor", `line 5: unknown setting "frobnicate"`, `line 6: "local-domains" is set twice`,
		"line 7: listen takes one value", "line 3: ", "10.0.0.0/33",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("check-config output lacks %q:\n%s", want, errOut)
		}
	}
	good := filepath.Join(dir, "good.yml")
	os.WriteFile(good, []byte("# sidecar\nlocal-domains: [example.org, example.net]\nstate-dir: "+dir+"\nfiles:\n  - /var/log/mail.log\nspike-window: 5m\nwarn-new-relayers: true\n"), 0o644)
	if code, out, errOut := runCmd(t, "", "check-config", good); code != exitOK || !strings.Contains(out, "ok") {
		t.Errorf("good config: exit %d %s %s", code, out, errOut)
	}
	// The config applies to analyze too, and the command line wins.
	cfg := filepath.Join(dir, "analyze.yml")
	os.WriteFile(cfg, []byte("trusted-networks: [127.0.0.0/8]\noutput: json\nyear: 2026\ntimezone: UTC\n"), 0o644)
	code, out, _ := runCmd(t, "", "analyze", "--config", cfg, "--trusted-networks", "127.0.0.1/32", "--progress", "never", filepath.Join("..", "..", "samples", "postfix", "incident.log"))
	if code != exitFindings || !strings.HasPrefix(out, "{") {
		t.Errorf("analyze --config: exit %d, output %.40q (want JSON from the config and findings from the command line's trusted networks)", code, out)
	}
	code, _, errOut = runCmd(t, "", "analyze", "--config", bad, "x.log")
	if code != exitUsage || !strings.Contains(errOut, "line 5") {
		t.Errorf("analyze with a bad config: exit %d %s", code, errOut)
	}
}

// startWatch runs watch in-process and returns its metrics address and a
// stop function that returns the exit status.
func startWatch(t *testing.T, stdin io.Reader, args ...string) (string, func() int) {
	t.Helper()
	stderr := newSyncBuffer()
	e := &env{stdin: stdin, stdout: io.Discard, stderr: stderr, getenv: func(string) string { return "" }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	full := append([]string{"watch", "--mta-config", "none", "--listen", "127.0.0.1:0", "--state-interval", "100ms", "--rescan", "100ms",
		"--year", "2026", "--timezone", "UTC", "--trusted-networks", "127.0.0.1/32"}, args...)
	go func() { done <- run(ctx, e, full) }()
	addr := metricsAddr(t, stderr)
	return addr, func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(15 * time.Second):
			t.Fatal("watch did not stop")
			return -1
		}
	}
}

func TestWatchStdin(t *testing.T) {
	sample, _ := os.ReadFile(filepath.Join("..", "..", "samples", "exim", "incident.log"))
	addr, stop := startWatch(t, bytes.NewReader(sample), "--state-dir", t.TempDir(), "-")
	defer stop()
	waitUntil(t, 10*time.Second, "the incident from stdin", func() bool {
		m := scrape(t, addr)
		return m[`relaywatch_lines_total{format=exim,result=parsed}`] == 2048 && m[`relaywatch_alerts_active{rule=foreign-to-foreign,severity=critical}`] == 2
	})
}

// TestWatchReadsTheRestOfAFileRotatedWhileDown stops watch, appends to the
// log, rotates it, writes a new one, and restarts: the lines appended while
// down are read from the rotated file, then the new file from its start.
func TestWatchReadsTheRestOfAFileRotatedWhileDown(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "mail.log")
	state := filepath.Join(dir, "state")
	sample, _ := os.ReadFile(filepath.Join("..", "..", "samples", "postfix", "normal.log"))
	lines := bytes.SplitAfter(sample, []byte("\n"))
	a, b, c := bytes.Join(lines[:200], nil), bytes.Join(lines[200:400], nil), bytes.Join(lines[400:], nil)
	os.WriteFile(log, nil, 0o644)

	// --from-start: part one may be written before the file is first opened.
	addr, stop := startWatch(t, nil, "--state-dir", state, "--from-start", log)
	f, _ := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0o644)
	f.Write(a)
	waitUntil(t, 10*time.Second, "part one", func() bool {
		return scrape(t, addr)[`relaywatch_file_offset_bytes{file=`+log+`}`] == float64(len(a))
	})
	if code := stop(); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	f.Write(b) // while down
	f.Close()
	os.Rename(log, log+".1")
	os.WriteFile(log, c, 0o644)

	addr, stop = startWatch(t, nil, "--state-dir", state, log)
	defer stop()
	total := float64(len(lines) - 1) // the last element after the final newline is empty
	waitUntil(t, 10*time.Second, "parts two and three", func() bool {
		m := scrape(t, addr)
		n := m[`relaywatch_lines_total{format=postfix,result=parsed}`] + m[`relaywatch_lines_total{format=postfix,result=irrelevant}`]
		return n == total-200 && m[`relaywatch_file_offset_bytes{file=`+log+`}`] == float64(len(c))
	})
}

// TestWatchReloadsPolicyOnSIGHUP starts watch with a config that trusts all
// of loopback (the lab's abusers look trusted), then narrows the trusted
// networks in the file and sends SIGHUP: the same traffic now raises the
// open-relay findings.
func TestWatchReloadsPolicyOnSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	log := filepath.Join(dir, "mail.log")
	os.WriteFile(log, nil, 0o644)
	cfg := filepath.Join(dir, "relaywatch.yml")
	os.WriteFile(cfg, []byte("trusted-networks: [127.0.0.0/8]\nyear: 2026\ntimezone: UTC\n"), 0o644)
	alerts := filepath.Join(dir, "alerts.jsonl")
	cmd, addr, errOut := startProcess(t, bin, "watch", "--mta-config", "none", "--config", cfg, "--state-dir", filepath.Join(dir, "state"), "--listen", "127.0.0.1:0",
		"--rescan", "100ms", "--alerts-log", alerts, log)
	defer cmd.Process.Kill()
	waitReady(t, addr)
	sample, _ := os.ReadFile(filepath.Join("..", "..", "samples", "postfix", "incident.log"))
	f, _ := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0o644)
	defer f.Close()
	f.Write(sample)
	waitUntil(t, 10*time.Second, "the first pass", func() bool {
		return scrape(t, addr)[`relaywatch_file_offset_bytes{file=`+log+`}`] == float64(len(sample))
	})
	if m := scrape(t, addr); m[`relaywatch_alerts_fired_total{rule=foreign-to-foreign,severity=critical}`] != 0 {
		t.Fatalf("with all of loopback trusted, foreign-to-foreign fired")
	}
	os.WriteFile(cfg, []byte("trusted-networks: [127.0.0.1/32]\nyear: 2026\ntimezone: UTC\n"), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, 10*time.Second, "the reload", func() bool { return strings.Contains(errOut.String(), "reloaded") })
	f.Write(sample)
	waitUntil(t, 10*time.Second, "foreign-to-foreign after the reload", func() bool {
		return scrape(t, addr)[`relaywatch_alerts_fired_total{rule=foreign-to-foreign,severity=critical}`] == 2
	})
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("SIGTERM: %v\n%s", err, errOut.String())
	}
}

// TestCheckConfigRunsTheStartChecks: check-config runs the very checks
// watch (or analyze, with --for) runs at start, names each problem with the
// line of its setting, in line order, and one file serves both commands.
func TestCheckConfigRunsTheStartChecks(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "both.yml")
	os.WriteFile(cfg, []byte("# one file for the sidecar and the nightly report\n"+
		"output: json\n"+ // analyze's
		"state-interval: -1s\n"+
		"rescan: 0s\n"+
		"listen: 9792\n"+
		"local-domains: [example.org]\n"+
		"fail-on: sometimes\n"+ // analyze's, wrong: only --for analyze says so
		"state-dir: "+dir+"\n"), 0o644)
	code, _, errOut := runCmd(t, "", "check-config", cfg)
	if code != exitUsage {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(errOut), "\n") {
		if strings.HasPrefix(l, cfg+":line") {
			got = append(got, strings.TrimPrefix(l, cfg+":"))
		}
	}
	want := []string{"line 3: state-interval", "line 4: rescan", "line 5: listen"}
	if len(got) != len(want) {
		t.Fatalf("check-config said:\n%s\nwant %d problems %v", errOut, len(want), want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d: %q, want %q...", i, got[i], want[i])
		}
	}
	// watch refuses to start on the same file, with the same words.
	code, _, errOut = runCmd(t, "", "watch", "--config", cfg, "mail.log")
	if code != exitUsage || !strings.Contains(errOut, "--state-interval -1s: must be positive") {
		t.Errorf("watch --config: exit %d %s", code, errOut)
	}
	// For analyze, the watch settings are accepted and analyze's own checked.
	code, _, errOut = runCmd(t, "", "check-config", "--for", "analyze", cfg)
	if code != exitUsage || !strings.Contains(errOut, "line 7: fail-on") || strings.Contains(errOut, "state-interval") {
		t.Errorf("check-config --for analyze: exit %d %s", code, errOut)
	}
}
