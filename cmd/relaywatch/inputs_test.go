package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sampleLines returns a sample's lines, each with its newline.
func sampleLines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func appendTo(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(bytes.Join(lines, nil)); err != nil {
		t.Fatal(err)
	}
}

// linesRead sums relaywatch_lines_total over every format and result.
func linesRead(m map[string]float64) float64 {
	n := 0.0
	for k, v := range m {
		if strings.HasPrefix(k, "relaywatch_lines_total{") {
			n += v
		}
	}
	return n
}

// firedAlerts counts "fired" transitions in an alerts log by rule and key.
func firedAlerts(t *testing.T, path string) map[string]int {
	t.Helper()
	fired := map[string]int{}
	f, err := os.Open(path)
	if err != nil {
		return fired
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var tr struct {
			Transition string `json:"transition"`
			Alert      struct{ Rule, Key string }
		}
		json.Unmarshal(sc.Bytes(), &tr)
		if tr.Transition == "fired" {
			fired[tr.Alert.Rule+" "+tr.Alert.Key]++
		}
	}
	return fired
}

// TestWatchGlobOverRotations follows mail.log* (as the README suggests for
// analyze) while the incident is written across rename rotations with a
// compressed member: every line is read once and no alert fires twice.
func TestWatchGlobOverRotations(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "mail.log")
	alerts := filepath.Join(dir, "alerts.jsonl")
	lines := sampleLines(t, filepath.Join("..", "..", "samples", "postfix", "incident.log"))
	os.WriteFile(log+".1", []byte("history: not read on a first start\n"), 0o644)
	os.WriteFile(log, nil, 0o644)
	addr, stop := startWatch(t, nil, "--state-dir", filepath.Join(dir, "state"), "--alerts-log", alerts, "--instance", "mail", log+"*")
	defer stop()
	waitReady(t, addr)
	parts := [][2]int{{0, len(lines) / 3}, {len(lines) / 3, 2 * len(lines) / 3}, {2 * len(lines) / 3, len(lines)}}
	for i, p := range parts {
		appendTo(t, log, lines[p[0]:p[1]])
		waitUntil(t, 10*time.Second, fmt.Sprintf("part %d", i+1), func() bool { return linesRead(scrape(t, addr)) == float64(p[1]) })
		if i == len(parts)-1 {
			break
		}
		// logrotate with delaycompress: mail.log.1 → mail.log.2.gz, mail.log → mail.log.1
		if data, err := os.ReadFile(log + ".1"); err == nil {
			f, _ := os.Create(log + ".2.gz")
			zw := gzip.NewWriter(f)
			zw.Write(data)
			zw.Close()
			f.Close()
			os.Remove(log + ".1")
		}
		os.Rename(log, log+".1")
		os.WriteFile(log, nil, 0o644)
	}
	time.Sleep(time.Second) // rescans see the rotated names
	if n := linesRead(scrape(t, addr)); n != float64(len(lines)) {
		t.Errorf("read %v lines, want %d", n, len(lines))
	}
	fired := firedAlerts(t, alerts)
	if len(fired) == 0 {
		t.Fatal("no alert fired")
	}
	for k, n := range fired {
		if n != 1 {
			t.Errorf("%s fired %d times", k, n)
		}
	}
}

// TestWatchLongLineOnStdin: a 300 KiB line on stdin is counted as too long
// and the lines after it are analyzed.
func TestWatchLongLineOnStdin(t *testing.T) {
	lines := sampleLines(t, filepath.Join("..", "..", "samples", "exim", "incident.log"))
	var in bytes.Buffer
	in.Write(bytes.Join(lines[:10], nil))
	in.WriteString(strings.Repeat("x", 300<<10) + "\n")
	in.Write(bytes.Join(lines[10:], nil))
	addr, stop := startWatch(t, &in, "--state-dir", t.TempDir(), "-")
	defer stop()
	waitUntil(t, 10*time.Second, "the lines after the long one", func() bool {
		m := scrape(t, addr)
		return m[`relaywatch_lines_total{format=exim,result=too_long}`] == 1 && linesRead(m) == float64(len(lines)+1) &&
			m[`relaywatch_input_lines_total{file=-}`] == float64(len(lines))
	})
}

// TestWatchDropsTheSeriesOfARemovedFile: a file that a glob no longer
// matches disappears from /metrics (Exchange's hourly tracking logs would
// otherwise pile up series and trip the no-lines alert every hour).
func TestWatchDropsTheSeriesOfARemovedFile(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "MSGTRK2026112407-1.LOG"), filepath.Join(dir, "MSGTRK2026112408-1.LOG")
	os.WriteFile(a, nil, 0o644)
	os.WriteFile(b, nil, 0o644)
	addr, stop := startWatch(t, nil, "--state-dir", filepath.Join(dir, "state"), filepath.Join(dir, "MSGTRK*.LOG"))
	defer stop()
	waitReady(t, addr)
	appendTo(t, a, [][]byte{[]byte("#Software: Microsoft Exchange Server\n")})
	waitUntil(t, 10*time.Second, "both files' series", func() bool {
		m := scrape(t, addr)
		_, okA := m[`relaywatch_file_last_line_age_seconds{file=`+a+`}`]
		_, okB := m[`relaywatch_file_last_line_age_seconds{file=`+b+`}`]
		return okA && okB
	})
	os.Remove(a)
	waitUntil(t, 10*time.Second, "the removed file's series to go", func() bool {
		for k := range scrape(t, addr) {
			if strings.Contains(k, "file="+a) {
				return false
			}
		}
		return true
	})
}

// runAs returns the command prefix that runs a process as an unprivileged
// user when the tests run as root (root reads every file, so an unreadable
// file can only be tested as someone else).
func runAs(t *testing.T) []string {
	if os.Geteuid() != 0 {
		return nil
	}
	p, err := exec.LookPath("setpriv")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("setpriv (util-linux) is needed to test unreadable files as root")
		}
		t.Skip("running as root without setpriv: cannot make a file unreadable")
	}
	return []string{p, "--reuid=65534", "--regid=65534", "--clear-groups", "--"}
}

// TestWatchUnreadableFiles: a file unreadable at start, and a rotation to
// an unreadable file (logrotate's create 0600 root root), are reported on
// stderr and in /metrics, and followed from their first line once readable:
// no line is lost.
func TestWatchUnreadableFiles(t *testing.T) {
	if testing.Short() || runtime.GOOS == "windows" {
		t.Skip("runs the binary as another user")
	}
	prefix := runAs(t)
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755) // t.TempDir's parent is private
	os.Chmod(dir, 0o777)
	bin := buildBinary(t, dir)
	log := filepath.Join(dir, "mail.log")
	state := filepath.Join(dir, "state")
	os.Mkdir(state, 0o777)
	os.Chmod(state, 0o777) // beyond the umask: the state is written as nobody
	lines := sampleLines(t, filepath.Join("..", "..", "samples", "postfix", "normal.log"))
	owner := func(path string) {
		if prefix == nil {
			return
		}
		os.Chown(path, 0, 0) // the test runs as root: the file is root's
	}
	appendTo(t, log, lines[:100])
	os.Chmod(log, 0o600)
	owner(log)
	args := append(prefix, bin, "watch", "--mta-config", "none", "--state-dir", state, "--listen", "127.0.0.1:0", "--rescan", "100ms", "--poll-interval", "50ms",
		"--year", "2026", "--timezone", "UTC", log)
	cmd, addr, errOut := startProcess(t, args[0], args[1:]...)
	defer cmd.Process.Kill()
	waitReady(t, addr)
	key := `{file=` + log + `}`
	waitUntil(t, 10*time.Second, "the problem on stderr and in /metrics", func() bool {
		m := scrape(t, addr)
		return strings.Contains(errOut.String(), "cannot read file") && m[`relaywatch_input_up`+key] == 0 &&
			m[`relaywatch_input_errors_total{file=`+log+`,reason=permission}`] >= 1
	})
	os.Chmod(log, 0o644)
	waitUntil(t, 10*time.Second, "the file once readable", func() bool {
		m := scrape(t, addr)
		return m[`relaywatch_input_up`+key] == 1 && m[`relaywatch_input_lines_total`+key] == 100
	})
	// Rotation to an unreadable file.
	appendTo(t, log, lines[100:200])
	// logrotate's create 0600 root root: the new file appears unreadable.
	next := log + ".new"
	appendTo(t, next, lines[200:300])
	os.Chmod(next, 0o600)
	owner(next)
	os.Rename(log, log+".1")
	os.Rename(next, log)
	waitUntil(t, 10*time.Second, "the rest of the old file and the new problem", func() bool {
		m := scrape(t, addr)
		return m[`relaywatch_input_lines_total`+key] == 200 && m[`relaywatch_input_up`+key] == 0
	})
	os.Chmod(log, 0o644)
	appendTo(t, log, lines[300:400])
	waitUntil(t, 10*time.Second, "every line of the new file", func() bool {
		return scrape(t, addr)[`relaywatch_input_lines_total`+key] == 400
	})
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("SIGTERM: %v\n%s", err, errOut.String())
	}
}

// TestWatchFIFOInGlobAndSIGHUP: a FIFO matched by the glob (nobody writes
// to it) neither blocks the other files nor a SIGHUP; SIGTERM stops watch
// within a second.
func TestWatchFIFOInGlobAndSIGHUP(t *testing.T) {
	if testing.Short() || runtime.GOOS == "windows" {
		t.Skip("runs the binary")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	if err := syscall.Mkfifo(filepath.Join(dir, "a.log"), 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	b := filepath.Join(dir, "b.log")
	os.WriteFile(b, nil, 0o644)
	cfg := filepath.Join(dir, "relaywatch.yml")
	os.WriteFile(cfg, []byte("year: 2026\ntimezone: UTC\n"), 0o644)
	cmd, addr, errOut := startProcess(t, bin, "watch", "--mta-config", "none", "--config", cfg, "--state-dir", filepath.Join(dir, "state"), "--listen", "127.0.0.1:0",
		"--rescan", "100ms", filepath.Join(dir, "*.log"))
	defer cmd.Process.Kill()
	waitReady(t, addr)
	lines := sampleLines(t, filepath.Join("..", "..", "samples", "postfix", "normal.log"))
	appendTo(t, b, lines[:50])
	waitUntil(t, 10*time.Second, "lines before SIGHUP", func() bool { return linesRead(scrape(t, addr)) == 50 })
	cmd.Process.Signal(syscall.SIGHUP)
	appendTo(t, b, lines[50:100])
	waitUntil(t, 10*time.Second, "lines after SIGHUP", func() bool { return linesRead(scrape(t, addr)) == 100 })
	waitUntil(t, 10*time.Second, "the reload", func() bool { return strings.Contains(errOut.String(), "reloaded") })
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Logf("watch stopped %v after SIGTERM", time.Since(start))
		if err != nil {
			t.Errorf("SIGTERM: %v\n%s", err, errOut.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("watch did not stop after SIGTERM\n%s", errOut.String())
	}
}

// TestAnalyzeStopsOnSIGTERM: analyze of an endless input (/dev/zero: one
// endless line) or of a FIFO that nobody opens stops at SIGTERM.
func TestAnalyzeStopsOnSIGTERM(t *testing.T) {
	if testing.Short() || runtime.GOOS == "windows" {
		t.Skip("runs the binary")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	for _, input := range []string{"/dev/zero", fifo} {
		t.Run(filepath.Base(input), func(t *testing.T) {
			cmd := exec.Command(bin, "analyze", "--progress", "never", input)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond)
			took, _ := terminate(t, cmd)
			t.Logf("analyze %s stopped %v after SIGTERM: %s", input, took, strings.TrimSpace(stderr.String()))
		})
	}
}

// terminate sends SIGTERM to a started command and waits for it to exit
// (the test fails after 5 s): how long it took and the exit error. The
// requirement is a second; the bound leaves room for a loaded machine.
func terminate(t *testing.T, cmd *exec.Cmd) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return time.Since(start), err
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s did not stop after SIGTERM", cmd.Path)
		return 0, nil
	}
}

// TestAnalyzeRotatedSetAgreesOnAFormat: the oldest member of a rotated set
// starts with another program's line that looks like Exim's format; it is
// read as Postfix like the rest of the set (and says so), and the verdicts
// are those of the same log without that line. A member that really is
// another MTA's log keeps its own format.
func TestAnalyzeRotatedSetAgreesOnAFormat(t *testing.T) {
	lines := sampleLines(t, filepath.Join("..", "..", "samples", "postfix", "incident.log"))
	third := len(lines) / 3
	dir := t.TempDir()
	write := func(name string, gz bool, parts ...[]byte) string {
		t.Helper()
		var buf bytes.Buffer
		for _, p := range parts {
			buf.Write(p)
		}
		data := buf.Bytes()
		if gz {
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			zw.Write(data)
			zw.Close()
			data = z.Bytes()
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stray := []byte("2026-11-24 03:00:01 rejected 3 addresses from the nightly list\n")
	write("mail.log.2.gz", true, stray, bytes.Join(lines[:third], nil))
	write("mail.log.1", false, bytes.Join(lines[third:2*third], nil))
	write("mail.log", false, bytes.Join(lines[2*third:], nil))
	args := []string{"analyze", "--output", "json", "--year", "2026", "--trusted-networks", "127.0.0.1/32", "--progress", "never"}
	type report struct {
		Inputs []struct {
			Name, Format, Note string
			Lines              map[string]uint64
		}
		Findings []struct{ Rule, Key, Severity string }
	}
	analyze := func(paths ...string) report {
		t.Helper()
		_, out, errOut := runCmd(t, "", append(args, paths...)...)
		var r report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v: %s", err, errOut)
		}
		return r
	}
	got := analyze(filepath.Join(dir, "mail.log*"))
	if len(got.Inputs) != 3 || got.Inputs[0].Format != "postfix" || !strings.Contains(got.Inputs[0].Note, "like the rest of its rotated set") ||
		!strings.Contains(got.Inputs[0].Note, "looked like exim") || got.Inputs[1].Note != "" {
		t.Fatalf("inputs %+v: want the oldest read as postfix, with a note", got.Inputs)
	}
	if n := got.Inputs[0].Lines["unrecognized"] + got.Inputs[0].Lines["malformed"]; n != 1 {
		t.Errorf("lines %v: want the stray line alone not read", got.Inputs[0].Lines)
	}
	want := analyze(filepath.Join("..", "..", "samples", "postfix", "incident.log"))
	if fmt.Sprint(got.Findings) != fmt.Sprint(want.Findings) {
		t.Errorf("findings over the rotated set:\n%v\nwant those of the log itself:\n%v", got.Findings, want.Findings)
	}

	// The MTA changed: the oldest member is Exim's and stays so.
	exim, err := os.ReadFile(filepath.Join("..", "..", "samples", "exim", "normal.log"))
	if err != nil {
		t.Fatal(err)
	}
	write("mail.log.2.gz", true, exim)
	got = analyze(filepath.Join(dir, "mail.log*"))
	if got.Inputs[0].Format != "exim" || got.Inputs[0].Note != "" {
		t.Errorf("an Exim member of the set: %+v, want it read as exim", got.Inputs[0])
	}
}
