package main

import (
	"container/list"
	"net"
	"net/http"
	"sync"
	"time"
)

// Limits of the sidecar's HTTP server (/metrics, /healthz, /readyz). Its
// clients are a few scrapers and probes; anyone else who can reach the port
// must not be able to starve them, or the process (file descriptors are
// what state saves need too).
const (
	httpReadHeaderTimeout = 5 * time.Second
	httpReadTimeout       = 10 * time.Second
	// httpWriteTimeout bounds writing a response: /metrics of a sidecar
	// with 10,000 findings takes milliseconds.
	httpWriteTimeout = 30 * time.Second
	httpIdleTimeout  = 60 * time.Second
	httpMaxHeader    = 16 << 10
	// httpMaxConns bounds the connections held open at once.
	httpMaxConns = 128
)

// newHTTPServer returns the sidecar's HTTP server for handler, with read,
// write and idle timeouts and a header limit, and ln wrapped so that at
// most httpMaxConns connections are open at once. Serve it with
// srv.Serve(limited).
func newHTTPServer(ln net.Listener, handler http.Handler) (srv *http.Server, limited net.Listener) {
	cl := newConnLimiter(ln, httpMaxConns)
	srv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    httpMaxHeader,
		ConnState:         cl.connState,
	}
	return srv, cl
}

// connLimiter is a net.Listener that keeps at most max connections open.
// When a new connection arrives at the limit, the connection that has been
// waiting the longest without a request in progress (new, or idle between
// keep-alive requests) is closed to make room; only when every connection
// is busy with a request is the new one refused. So idle connections, however
// many an attacker opens, cannot keep a scraper out, and never cost more than
// max file descriptors. (golang.org/x/net/netutil.LimitListener instead
// stops accepting at the limit: one scraper would wait behind idle attackers.)
type connLimiter struct {
	net.Listener
	max int

	mu    sync.Mutex
	conns map[net.Conn]*list.Element // every open connection; the element is in waiting, or nil
	wait  *list.List                 // connections without a request in progress, oldest first
}

func newConnLimiter(ln net.Listener, max int) *connLimiter {
	return &connLimiter{Listener: ln, max: max, conns: map[net.Conn]*list.Element{}, wait: list.New()}
}

// Accept implements net.Listener.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		var evict net.Conn
		if len(l.conns) >= l.max {
			if front := l.wait.Front(); front != nil {
				evict = front.Value.(net.Conn)
				l.wait.Remove(front)
				delete(l.conns, evict)
			}
		}
		full := len(l.conns) >= l.max
		if !full {
			l.conns[c] = l.wait.PushBack(c)
		}
		l.mu.Unlock()
		if evict != nil {
			evict.Close()
		}
		if full {
			c.Close() // every connection is serving a request
			continue
		}
		return c, nil
	}
}

// connState follows the server's view of each connection
// (http.Server.ConnState).
func (l *connLimiter) connState(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.conns[c]
	if !ok {
		return // evicted, or refused
	}
	switch s {
	case http.StateActive:
		if el != nil {
			l.wait.Remove(el)
			l.conns[c] = nil
		}
	case http.StateIdle:
		if el == nil {
			l.conns[c] = l.wait.PushBack(c)
		}
	case http.StateClosed, http.StateHijacked:
		if el != nil {
			l.wait.Remove(el)
		}
		delete(l.conns, c)
	}
}

// open is the number of connections held open.
func (l *connLimiter) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}
