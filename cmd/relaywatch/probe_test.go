package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaywatch/relaywatch/detect/probe"
)

// smtpStub is a minimal SMTP server on 127.0.0.1 that answers every RCPT TO
// with rcptReply, or not at all when it is empty. (detect/probe's tests have
// the thorough one.)
func smtpStub(t *testing.T, rcptReply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				c.Write([]byte("220 mx.example.org ESMTP stub\r\n"))
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					reply := "250 ok"
					switch verb := strings.ToUpper(strings.Fields(line + " x")[0]); {
					case verb == "EHLO":
						reply = "250-mx.example.org\r\n250 PIPELINING"
					case verb == "RCPT" && rcptReply == "":
						continue // no reply at all
					case verb == "RCPT":
						reply = rcptReply
					case verb == "QUIT":
						c.Write([]byte("221 bye\r\n"))
						return
					}
					c.Write([]byte(reply + "\r\n"))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestProbeCommand(t *testing.T) {
	closed := smtpStub(t, "554 5.7.1 Relay access denied")
	open := smtpStub(t, "250 2.1.5 Ok")
	partial := smtpStub(t, "250 ok \x1b[31mred")

	t.Run("closed", func(t *testing.T) {
		code, out, errOut := runCmd(t, "", "probe", "--local-domains", "example.org", closed)
		if code != exitOK {
			t.Fatalf("exit %d; stderr %s", code, errOut)
		}
		for _, want := range []string{"VARIANT", "percent-hack-server-name", "RCPT TO:<relaywatch-probe%example.com@mx.example.org>", "554 5.7.1 Relay access denied", "closed: 0 of 17 variants accepted (17 refused, 0 need authentication)"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("open, json", func(t *testing.T) {
		code, out, errOut := runCmd(t, "", "probe", "-o", "json", open)
		if code != exitFindings {
			t.Fatalf("exit %d; stderr %s", code, errOut)
		}
		var res probe.Result
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		if res.Verdict != probe.Open || res.Accepted != 17 || len(res.Attempts) != 17 || res.Attempts[16].Variant.From != "postmaster@example.org" {
			t.Errorf("result %+v", res)
		}
	})
	t.Run("server text escaped", func(t *testing.T) {
		code, out, _ := runCmd(t, "", "probe", partial)
		if code != exitFindings || strings.Contains(out, "\x1b") || !strings.Contains(out, `250 ok \x1b[31mred`) {
			t.Errorf("exit %d, output:\n%s", code, out)
		}
	})
	t.Run("source address", func(t *testing.T) {
		code, out, errOut := runCmd(t, "", "probe", "--source", "127.0.0.1", "-o", "json", closed)
		if code != exitOK || !strings.Contains(out, `"verdict": "closed"`) {
			t.Errorf("exit %d; stderr %s", code, errOut)
		}
	})
	t.Run("port flag", func(t *testing.T) {
		host, port, _ := net.SplitHostPort(closed)
		code, _, errOut := runCmd(t, "", "probe", "--port", port, host)
		if code != exitOK {
			t.Errorf("exit %d; stderr %s", code, errOut)
		}
	})

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	nothing := ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no host", []string{"probe"}, "probe takes one HOST[:PORT], got 0 arguments"},
		{"two hosts", []string{"probe", "a", "b"}, "got 2 arguments"},
		{"bad output", []string{"probe", "-o", "xml", closed}, `--output "xml"`},
		{"bad port", []string{"probe", "--port", "70000", "mx"}, "--port 70000"},
		{"bad ip", []string{"probe", "--ip", "mx", closed}, `--ip "mx"`},
		{"bad source", []string{"probe", "--source", "here", closed}, `--source "here"`},
		{"source not local", []string{"probe", "--timeout", "2s", "--source", "192.0.2.1", closed}, "could not test " + closed + ": connect to"},
		{"bad domain", []string{"probe", "--local-domains", "a b", closed}, `"a b": not a host or domain name`},
		{"nothing listens", []string{"probe", "--timeout", "2s", nothing}, "could not test " + nothing + ": connect to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCmd(t, "", tc.args...)
			if code != exitUsage || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut, tc.want)
			}
		})
	}
}

func TestProbeHelpWarns(t *testing.T) {
	code, out, _ := runCmd(t, "", "probe", "--help")
	if code != exitOK || !strings.Contains(out, "WARNING") || !strings.Contains(out, "Test\nonly servers you run or are allowed to test") {
		t.Errorf("exit %d, help:\n%s", code, out)
	}
}

// TestProbeStopsOnSIGTERM: the binary, waiting for a reply with a long
// timeout, stops at SIGTERM within a second, prints what it had and exits 2.
func TestProbeStopsOnSIGTERM(t *testing.T) {
	if testing.Short() || runtime.GOOS == "windows" {
		t.Skip("runs the binary")
	}
	bin := buildBinary(t, t.TempDir())
	silent := smtpStub(t, "")
	cmd := exec.Command(bin, "probe", "--timeout", "1h", silent)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	took, err := terminate(t, cmd)
	t.Logf("probe stopped %v after SIGTERM: %s", took, strings.TrimSpace(stderr.String()))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
		t.Errorf("exit: %v, want status 2", err)
	}
	if !strings.Contains(stderr.String(), "context canceled") {
		t.Errorf("stderr: %s", stderr.String())
	}
}

// TestConfirmWithProbe: with --confirm-with-probe, analyze probes the server
// when a critical relay finding fires and puts the verdict in the report
// (text and JSON), and watch does it live and exports it on /metrics.
func TestConfirmWithProbe(t *testing.T) {
	open := smtpStub(t, "250 2.1.5 ok")
	sample := filepath.Join("..", "..", "samples", "postfix", "incident.log")
	code, out, errOut := runCmd(t, "", append(append([]string{"analyze", "--confirm-with-probe", open}, sampleArgs...), sample)...)
	if code != exitFindings || !strings.Contains(out, "Confirmed with relaywatch probe "+open+": open") {
		t.Errorf("analyze: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = runCmd(t, "", append(append([]string{"analyze", "--output", "json", "--confirm-with-probe", open}, sampleArgs...), sample)...)
	var rep jsonReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Probe == nil || rep.Probe.Verdict != "open" || len(rep.Probe.Accepted) == 0 {
		t.Errorf("analyze JSON: exit %d, %v, probe %+v", code, err, rep.Probe)
	}
	// No relay finding: no probe.
	code, out, _ = runCmd(t, "", append(append([]string{"analyze", "--confirm-with-probe", open}, sampleArgs...), filepath.Join("..", "..", "samples", "postfix", "normal.log"))...)
	if code != exitOK || strings.Contains(out, "Confirmed with") {
		t.Errorf("normal sample: exit %d\n%s", code, out)
	}
	// Live.
	dir := t.TempDir()
	log := filepath.Join(dir, "mail.log")
	os.WriteFile(log, nil, 0o644)
	alerts := filepath.Join(dir, "alerts.jsonl")
	addr, stop := startWatch(t, nil, "--state-dir", filepath.Join(dir, "state"), "--confirm-with-probe", open, "--alerts-log", alerts, log)
	defer stop()
	waitReady(t, addr)
	data, _ := os.ReadFile(sample)
	os.WriteFile(log, data, 0o644)
	waitUntil(t, 20*time.Second, "the probe's verdict on /metrics", func() bool {
		m := scrape(t, addr)
		return m[`relaywatch_probe_verdict{verdict=open}`] == 1 && m[`relaywatch_probe_runs_total{}`] == 1
	})
	// The verdict reaches the sinks as an update of the alert that called for it.
	waitUntil(t, 10*time.Second, "the update in the alerts log", func() bool {
		data, _ := os.ReadFile(alerts)
		return strings.Contains(string(data), `"transition":"updated"`) && strings.Contains(string(data), "Confirmed with relaywatch probe "+open+": open")
	})
}
