package probe

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestConfirm(t *testing.T) {
	srv := newFakeServer(t, serverConf{rcpt: func(from, to string) string {
		if from == "postmaster@example.org" {
			return "250 Ok"
		}
		return "554 5.7.1 Relay access denied"
	}})
	c := Confirm(context.Background(), quick(srv.addr()))
	if c.Verdict != Open || c.Summary != "open relay: 1 of 17 variants accepted" || !cmp.Equal(c.Accepted, []string{"forged-local-sender"}) || c.At.IsZero() {
		t.Errorf("%+v", c)
	}
	srv.ln.Close()
	c = Confirm(context.Background(), quick(srv.addr()))
	if c.Verdict != Untested || !strings.HasPrefix(c.Summary, "could not test: connect to") {
		t.Errorf("%+v", c)
	}
}

// TestConfirmer: concurrent callers share one probe, and its result is
// reused until the TTL has passed.
func TestConfirmer(t *testing.T) {
	srv := newFakeServer(t, serverConf{})
	c := NewConfirmer(quick(srv.addr()), time.Hour)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	c.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var wg sync.WaitGroup
	results := make([]Confirmation, 5)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, ok := c.Confirm(context.Background())
			if !ok {
				t.Error("no result")
			}
			results[i] = r
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r.Verdict != Closed {
			t.Errorf("%+v", r)
		}
	}
	if srv.connections() != 1 {
		t.Errorf("%d connections for 5 concurrent confirmations, want 1", srv.connections())
	}
	if r, _ := c.Confirm(context.Background()); r.Verdict != Closed || srv.connections() != 1 {
		t.Errorf("within the TTL: %+v, %d connections", r, srv.connections())
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	if _, ok := c.Confirm(context.Background()); !ok || srv.connections() != 2 {
		t.Errorf("after the TTL: %d connections, want 2", srv.connections())
	}
}

func TestConfirmerCancelled(t *testing.T) {
	srv := newFakeServer(t, serverConf{fault: func(n int, cmd string) (string, bool, bool) {
		return "", false, strings.HasPrefix(cmd, "RCPT")
	}})
	c := NewConfirmer(Config{Addr: srv.addr(), Timeout: time.Hour}, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if r, ok := c.Confirm(ctx); ok || r.Verdict != Untested {
		t.Errorf("cancelled: %+v, %v", r, ok)
	}
}
