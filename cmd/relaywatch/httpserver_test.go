package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestConnLimiterEvictsTheOldestWaitingConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, limited := newHTTPServer(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }))
	go srv.Serve(limited)
	defer srv.Close()
	cl := limited.(*connLimiter)
	// Twice the limit of connections that never send a request.
	var idle []net.Conn
	for i := 0; i < 2*httpMaxConns; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	waitUntil(t, 10*time.Second, "the idle connections to be accepted", func() bool { return cl.open() == httpMaxConns })
	// The oldest were closed by the server.
	idle[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle[0].Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the oldest idle connection: %v, want closed by the server", err)
	}
	// A scraper still gets its answer.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatalf("scrape at the limit: %v", err)
	}
	resp.Body.Close()
	if cl.open() > httpMaxConns {
		t.Errorf("%d connections open, limit %d", cl.open(), httpMaxConns)
	}
}

// TestWatchAnswersUnderTwentyThousandIdleConnections opens as many idle
// keep-alive connections to watch's HTTP port as this process may hold
// (20,000, or 200 fewer than the file descriptor limit when that is lower:
// 19,800 here) to watch, a separate process allowed half as many
// descriptors: /metrics still answers, state saves still succeed, and watch
// holds few descriptors.
func TestWatchAnswersUnderTwentyThousandIdleConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = lim.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	n := 20000
	if max := int(lim.Cur) - 200; max < n {
		n = max
	}
	t.Logf("opening %d idle connections (file descriptor limit %d)", n, lim.Cur)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	log := filepath.Join(dir, "mail.log")
	os.WriteFile(log, nil, 0o644)
	// watch runs with half the descriptors its clients have (sh's ulimit
	// lowers the hard limit too: Go raises the soft one to it at start), so
	// that holding every idle connection would exhaust them.
	cmd, addr, errOut := startProcess(t, "/bin/sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, n/2), bin,
		"watch", "--state-dir", filepath.Join(dir, "state"), "--listen", "127.0.0.1:0",
		"--state-interval", "100ms", "--year", "2026", "--timezone", "UTC", log)
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	waitReady(t, addr)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	d := net.Dialer{Timeout: time.Second}
	failed, inARow := 0, 0
	for i := 0; i < n && inARow < 10; i++ {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			failed++ // the backlog is full: the server no longer accepts
			inARow++
			continue
		}
		inARow = 0
		// A request, whose answer is never read: a keep-alive connection
		// left idle (without an idle timeout, held forever).
		c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: relaywatch\r\n\r\n"))
		conns = append(conns, c)
	}
	t.Logf("%d connections made, %d dials failed", len(conns), failed)
	// Scrape with a timeout: without a connection limit the server stops
	// accepting, and a scrape would wait for ever.
	defer func(old time.Duration) { http.DefaultClient.Timeout = old }(http.DefaultClient.Timeout)
	http.DefaultClient.Timeout = 10 * time.Second
	before := scrape(t, addr)[`relaywatch_state_saves_total{result=ok}`]
	start := time.Now()
	waitUntil(t, 10*time.Second, "state saves under the idle connections", func() bool {
		return scrape(t, addr)[`relaywatch_state_saves_total{result=ok}`] >= before+3
	})
	t.Logf("/metrics answered and 3 state saves happened in %v", time.Since(start))
	if m := scrape(t, addr); m[`relaywatch_state_saves_total{result=failed}`] != 0 {
		t.Errorf("state saves failed: %v\n%s", m[`relaywatch_state_saves_total{result=failed}`], errOut.String())
	}
	if fds := openFiles(cmd.Process.Pid); fds > 4*httpMaxConns {
		t.Errorf("watch holds %d file descriptors", fds)
	} else {
		t.Logf("watch holds %d file descriptors", fds)
	}
}

func openFiles(pid int) int {
	entries, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	return len(entries)
}
