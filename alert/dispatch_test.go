package alert

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaywatch/relaywatch/detect"
)

func TestRetryAfterIsCappedAtTheMaximumBackoff(t *testing.T) {
	for _, sink := range []string{"bot", "webhook"} {
		t.Run(sink, func(t *testing.T) {
			fs := &fakeSlack{failures: []int{http.StatusTooManyRequests}, retryAfter: "3600"}
			srv := httptest.NewServer(fs)
			defer srv.Close()
			clock := &fakeClock{now: t0}
			var s Sink = NewSlackBot("xoxb-secret", "C1", srv.URL+"/", srv.Client())
			if sink == "webhook" {
				s = NewSlackWebhook(srv.URL+"/services/T/B/secret", srv.Client())
			}
			d := runDispatcher(t, s, DispatchConfig{Clock: clock, MaxBackoff: 2 * time.Minute}, hostileAlert())
			if st := d.Stats(); st.Sent != 1 || st.Dropped != 0 || st.Failures[ReasonRateLimited] != 1 {
				t.Fatalf("stats %+v", st)
			}
			if w := clock.waits(); len(w) != 1 || w[0] != 2*time.Minute {
				t.Errorf("waits %v: want the maximum backoff (2m), not Retry-After's hour", w)
			}
		})
	}
}

// recordingSink records what it was sent, as "kind key" per transition.
type recordingSink struct {
	mu   sync.Mutex
	got  []string
	sent [][]Transition
}

func (r *recordingSink) Name() string { return "recording" }
func (r *recordingSink) Send(_ context.Context, batch []Transition) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range batch {
		r.got = append(r.got, string(t.Kind)+" "+t.Alert.Key)
	}
	r.sent = append(r.sent, batch)
	return nil
}

func TestTransitionsOfOneAlertStayInOrder(t *testing.T) {
	tr := func(k Kind, key string) Transition {
		return Transition{Kind: k, Alert: Alert{Finding: finding(detect.RuleForeignToForeign, key, 1, t0)}}
	}
	rec := &recordingSink{}
	runDispatcher(t, rec, DispatchConfig{Clock: &fakeClock{now: t0}, MinInterval: -1},
		tr(Fired, "A"), tr(Resolved, "A"), tr(Fired, "A"), tr(Fired, "B"), tr(Resolved, "B"), tr(Fired, "C"))
	var ofA, ofB []string
	for _, g := range rec.got {
		switch {
		case strings.HasSuffix(g, " A"):
			ofA = append(ofA, g)
		case strings.HasSuffix(g, " B"):
			ofB = append(ofB, g)
		}
	}
	if got := strings.Join(ofA, ", "); got != "fired A, resolved A, fired A" {
		t.Errorf("A reached the sink as %s", got)
	}
	if got := strings.Join(ofB, ", "); got != "fired B, resolved B" {
		t.Errorf("B reached the sink as %s", got)
	}
	// Grouping still works where it keeps each alert's order: the first
	// fires of A, B and C go together.
	if len(rec.sent[0]) != 3 {
		t.Errorf("first batch %d transitions, want the fires of A, B and C together", len(rec.sent[0]))
	}
}

func TestSinkFailureIsLoggedOnceWithItsReasonAndCounted(t *testing.T) {
	fs := &fakeSlack{failures: []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	var mu sync.Mutex
	var logs []string
	logf := func(m string) { mu.Lock(); logs = append(logs, m); mu.Unlock() }
	sink := NewSlackWebhook(srv.URL+"/services/T/B/the-secret-path", srv.Client())
	d := runDispatcher(t, sink, DispatchConfig{Clock: &fakeClock{now: t0}, Log: logf}, hostileAlert(), hostileAlert())
	st := d.Stats()
	if st.Sent != 2 || st.Failures[ReasonServer] != 3 {
		t.Errorf("stats %+v", st)
	}
	if len(logs) != 2 || !strings.Contains(logs[0], "failing, will retry: server_error") || !strings.Contains(logs[1], "delivering again") {
		t.Errorf("logs %q, want one failure with its reason, then the recovery", logs)
	}
	for _, l := range logs {
		if strings.Contains(l, "the-secret-path") {
			t.Errorf("a log shows the webhook URL: %s", l)
		}
	}
}

func TestFullQueueIsLoggedOnce(t *testing.T) {
	var logs []string
	d := NewDispatcher(&recordingSink{}, DispatchConfig{QueueSize: 2, Log: func(m string) { logs = append(logs, m) }})
	for i := 0; i < 5; i++ {
		d.Enqueue(hostileAlert())
	}
	if st := d.Stats(); st.Dropped != 3 || len(logs) != 1 {
		t.Errorf("dropped %d, logs %q", st.Dropped, logs)
	}
}

func TestAlertmanagerRetryAfterAndReason(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls == 1 {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, "slow down\x1b[2J")
			return
		}
	}))
	defer srv.Close()
	clock := &fakeClock{now: t0}
	var logs []string
	d := runDispatcher(t, NewAlertmanager(srv.URL, "mx1", time.Minute, srv.Client(), clock),
		DispatchConfig{Clock: clock, MinInterval: -1, Log: func(m string) { logs = append(logs, m) }}, hostileAlert())
	if st := d.Stats(); st.Sent != 1 || st.Failures[ReasonRateLimited] != 1 {
		t.Errorf("stats %+v", st)
	}
	if w := clock.waits(); len(w) != 1 || w[0] != 2*time.Minute {
		t.Errorf("waits %v", w)
	}
	if len(logs) == 0 || strings.Contains(logs[0], "\x1b") {
		t.Errorf("logs %q: want the failure, without control characters", logs)
	}
}

func TestNetworkFailureLogHasNoSecret(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	var logs []string
	sink := NewSlackWebhook(url+"/services/T/B/the-secret-path", nil)
	d := runDispatcher(t, sink, DispatchConfig{Clock: &fakeClock{now: t0}, MaxAttempts: 2, Log: func(m string) { logs = append(logs, m) }}, hostileAlert())
	if st := d.Stats(); st.Failures[ReasonNetwork] != 2 || st.Dropped != 1 {
		t.Errorf("stats %+v", st)
	}
	if len(logs) != 2 {
		t.Errorf("logs %q: want the failure once, then the drop", logs)
	}
	for _, l := range logs {
		if strings.Contains(l, "the-secret-path") {
			t.Errorf("a log shows the webhook URL: %s", l)
		}
	}
}

// TestMinSeverityKeepsInfoOffTheSink: a sink that pages people (Slack)
// does not get info alerts (relay-probing shows on every Internet-facing
// server), and gets warnings and worse as before.
func TestMinSeverityKeepsInfoOffTheSink(t *testing.T) {
	tr := func(key string, sev detect.Severity) Transition {
		f := finding(detect.RuleForeignToForeign, key, 1, t0)
		f.Severity = sev
		return Transition{Kind: Fired, Alert: Alert{Finding: f}}
	}
	rec := &recordingSink{}
	runDispatcher(t, rec, DispatchConfig{Clock: &fakeClock{now: t0}, MinInterval: -1, MinSeverity: detect.SeverityWarning},
		tr("info", detect.SeverityInfo), tr("warn", detect.SeverityWarning), tr("crit", detect.SeverityCritical))
	if got := strings.Join(rec.got, ", "); got != "fired warn, fired crit" {
		t.Errorf("the sink got %s", got)
	}
}
