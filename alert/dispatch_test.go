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

	"github.com/google/go-cmp/cmp"

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
	if got := strings.Join(rec.got, ", "); got != "fired crit, fired warn" {
		t.Errorf("the sink got %s, want the critical first and no info", got)
	}
}

// tr makes a transition of rule's alert for key with count messages and the
// given severity, in episode 1.
func tr(k Kind, rule, key string, count int, sev detect.Severity) Transition {
	f := finding(rule, key, count, t0)
	f.Severity, f.Episode = sev, 1
	return Transition{Kind: k, Alert: Alert{Finding: f}}
}

// TestQueuedUpdatesAreMerged: a sink that is behind (Slack at one message a
// second during an attack) gets an alert's latest state once, not every
// doubling it went through; a resolution replaces a queued update, follows
// a queued fire, and nothing of another episode is merged.
func TestQueuedUpdatesAreMerged(t *testing.T) {
	crit := detect.SeverityCritical
	f2f := detect.RuleForeignToForeign
	later := tr(Updated, f2f, "B", 3, crit)
	later.Alert.Episode = 2
	tests := []struct {
		name   string
		in     []Transition
		want   string // what the sink got, "kind key count" in order
		merged uint64
	}{
		{"updates fold into the queued fire",
			[]Transition{tr(Fired, f2f, "A", 1, crit), tr(Updated, f2f, "A", 2, crit), tr(Updated, f2f, "A", 4, crit)},
			"fired A 4", 2},
		{"a fire still queued is followed by its resolution",
			[]Transition{tr(Fired, f2f, "A", 1, crit), tr(Updated, f2f, "A", 8, crit), tr(Resolved, f2f, "A", 8, crit)},
			"fired A 8; resolved A 8", 1},
		{"a resolution replaces a queued update",
			[]Transition{tr(Updated, f2f, "A", 2, crit), tr(Updated, f2f, "A", 4, crit), tr(Resolved, f2f, "A", 4, crit)},
			"resolved A 4", 2},
		{"another episode is not merged",
			[]Transition{tr(Updated, f2f, "B", 2, crit), later},
			"updated B 2; updated B 3", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recordingSink{}
			d := runDispatcher(t, rec, DispatchConfig{Clock: &fakeClock{now: t0}, MinInterval: -1}, tc.in...)
			var got []string
			for _, b := range rec.sent {
				for _, x := range b {
					got = append(got, fmt.Sprintf("%s %s %d", x.Kind, x.Alert.Key, x.Alert.Count))
				}
			}
			if g := strings.Join(got, "; "); g != tc.want {
				t.Errorf("the sink got %q, want %q", g, tc.want)
			}
			if st := d.Stats(); st.Merged != tc.merged || st.Dropped != 0 {
				t.Errorf("stats %+v, want %d merged", st, tc.merged)
			}
		})
	}
}

// TestNewAlertsGoFirst: while Slack is behind with updates and
// resolutions, a new alert is the next message, the worst first, and it
// carries every rule that caught the same client; the head of the queue
// still goes after a few new alerts jumped it.
func TestNewAlertsGoFirst(t *testing.T) {
	crit, warn := detect.SeverityCritical, detect.SeverityWarning
	in := []Transition{
		tr(Updated, detect.RuleOutboundSpike, "all", 40, warn),
		tr(Resolved, detect.RuleForeignToForeign, "old", 9, crit),
		tr(Fired, detect.RuleOutboundSpike, "client:X", 30, warn),
		tr(Fired, detect.RuleUnknownRelayingClient, "X", 30, crit),
		tr(Fired, detect.RuleForeignToForeign, "X", 30, crit),
		tr(Fired, detect.RuleRelayProbing, "X", 30, crit),
	}
	rec := &recordingSink{}
	runDispatcher(t, rec, DispatchConfig{Clock: &fakeClock{now: t0}, MinInterval: -1}, in...)
	var first []string
	for _, x := range rec.sent[0] {
		first = append(first, x.Alert.Rule+" "+x.Alert.Key)
	}
	want := []string{detect.RuleUnknownRelayingClient + " X", detect.RuleForeignToForeign + " X", detect.RuleRelayProbing + " X"}
	if diff := cmp.Diff(want, first); diff != "" {
		t.Errorf("first message (-want +got):\n%s", diff)
	}
	if len(rec.sent) != 4 || rec.sent[1][0].Alert.Key != "client:X" {
		t.Errorf("then %s, want the warning fire, then the update and the resolution", kinds(flatten(rec.sent[1:])))
	}

	// Starvation: a resolution queued before a stream of new alerts goes
	// after at most maxLeaps of them.
	in = []Transition{tr(Resolved, detect.RuleForeignToForeign, "old", 9, crit)}
	for i := 0; i < 3*maxLeaps; i++ {
		in = append(in, tr(Fired, fmt.Sprintf("rule%d", i), fmt.Sprintf("k%d", i), 1, crit))
	}
	rec = &recordingSink{}
	runDispatcher(t, rec, DispatchConfig{Clock: &fakeClock{now: t0}, MinInterval: -1}, in...)
	for i, b := range rec.sent {
		if b[0].Kind == Resolved {
			if i > maxLeaps {
				t.Errorf("the resolution went as message %d, want at most %d new alerts ahead of it", i+1, maxLeaps)
			}
			return
		}
	}
	t.Error("the resolution was never sent")
}

// TestAlertGrowingPastMinSeverityIsAnnouncedAsNew: an info alert kept off
// Slack that becomes a warning reaches Slack as fired (Slack never heard of
// it before); the resolution of one that never reached it is not sent.
func TestAlertGrowingPastMinSeverityIsAnnouncedAsNew(t *testing.T) {
	info, warn := detect.SeverityInfo, detect.SeverityWarning
	rec := &recordingSink{}
	runDispatcher(t, rec, DispatchConfig{Clock: &fakeClock{now: t0}, MinInterval: -1, MinSeverity: warn},
		tr(Fired, detect.RuleOutboundSpike, "grows", 1, info),
		tr(Fired, detect.RuleOutboundSpike, "stays", 1, info),
		tr(Updated, detect.RuleOutboundSpike, "grows", 50, warn),
		tr(Resolved, detect.RuleOutboundSpike, "stays", 1, info),
		tr(Resolved, detect.RuleOutboundSpike, "grows", 50, warn),
	)
	if got := strings.Join(rec.got, ", "); got != "fired grows, resolved grows" {
		t.Errorf("the sink got %s", got)
	}

	// An alert that resolved below the minimum is forgotten, so the
	// bound on those remembered holds only open ones: after more than
	// maxUnshown others came and went, one that grows still goes as new.
	in := []Transition{tr(Fired, detect.RuleCompromisedAccount, "user:victim", 1, info)}
	for i := 0; i < maxUnshown+1; i++ {
		key := fmt.Sprintf("scanner%d", i)
		in = append(in, tr(Fired, detect.RuleRelayProbing, key, 1, info), tr(Resolved, detect.RuleRelayProbing, key, 1, info))
	}
	in = append(in, tr(Updated, detect.RuleCompromisedAccount, "user:victim", 9, warn), tr(Resolved, detect.RuleCompromisedAccount, "user:victim", 9, warn))
	rec = &recordingSink{}
	runDispatcher(t, rec, DispatchConfig{Clock: &fakeClock{now: t0}, MinInterval: -1, MinSeverity: warn}, in...)
	if got := strings.Join(rec.got, ", "); got != "fired user:victim, resolved user:victim" {
		t.Errorf("the sink got %s", got)
	}
}

func flatten(bs [][]Transition) []Transition {
	var out []Transition
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// manualClock is a clock whose time moves only when the test says so.
type manualClock struct {
	mu    sync.Mutex
	now   time.Time
	moved chan struct{} // closed and replaced at each advance
}

func newManualClock() *manualClock { return &manualClock{now: t0, moved: make(chan struct{})} }

func (c *manualClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *manualClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	until := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		now, moved := c.now, c.moved
		c.mu.Unlock()
		if !now.Before(until) {
			return nil
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	close(c.moved)
	c.moved = make(chan struct{})
	c.mu.Unlock()
}

// TestUpdatesOfOneAlertAreHeldForTheInterval: while an attack doubles an
// alert's count every few seconds, Slack gets one update per interval with
// the latest count; a new alert and a rise in severity are not held.
func TestUpdatesOfOneAlertAreHeldForTheInterval(t *testing.T) {
	crit, warn := detect.SeverityCritical, detect.SeverityWarning
	f2f := detect.RuleForeignToForeign
	clock := newManualClock()
	rec := &recordingSink{}
	d := NewDispatcher(rec, DispatchConfig{Clock: clock, MinInterval: -1, UpdateInterval: 5 * time.Minute})
	done := make(chan struct{})
	go func() { d.Run(context.Background()); close(done) }()
	got := func(n int) []string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			rec.mu.Lock()
			g := append([]string(nil), rec.got...)
			rec.mu.Unlock()
			if len(g) >= n || time.Now().After(deadline) {
				return g
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	d.Enqueue(tr(Fired, f2f, "A", 1, crit))
	got(1)
	d.Enqueue(tr(Updated, f2f, "A", 2, crit))
	d.Enqueue(tr(Updated, f2f, "A", 4, crit))
	d.Enqueue(tr(Fired, f2f, "C", 1, crit)) // new: not held
	d.Enqueue(tr(Fired, f2f, "W", 1, warn))
	got(3)
	d.Enqueue(tr(Updated, f2f, "W", 2, crit)) // a rise: not held
	want := "fired A, fired C, fired W, updated W"
	if g := strings.Join(got(4), ", "); g != want {
		t.Fatalf("before the interval the sink got %s, want %s", g, want)
	}
	time.Sleep(50 * time.Millisecond) // A's update must still be held
	if g := got(4); len(g) != 4 {
		t.Fatalf("A's update went before the interval: %v", g)
	}
	clock.advance(5 * time.Minute)
	g := got(5)
	if len(g) != 5 || g[4] != "updated A" {
		t.Fatalf("after the interval the sink got %v, want A's update", g)
	}
	rec.mu.Lock()
	last := rec.sent[len(rec.sent)-1][0]
	rec.mu.Unlock()
	if last.Alert.Count != 4 {
		t.Errorf("A's update shows %d messages, want the latest (4)", last.Alert.Count)
	}
	// A resolution or a rise in severity merged into a held update is not
	// held: it goes at once.
	d.Enqueue(tr(Updated, f2f, "A", 8, crit))
	d.Enqueue(tr(Fired, f2f, "D", 1, crit))
	got(6)
	d.Enqueue(tr(Updated, f2f, "D", 2, crit))
	time.Sleep(50 * time.Millisecond) // A's and D's updates held
	d.Enqueue(tr(Resolved, f2f, "A", 8, crit))
	if g := got(7); len(g) != 7 || g[6] != "resolved A" {
		t.Fatalf("a resolution waited behind its held update: %v", g)
	}
	// What is still held at Close is left (the next start sends what a
	// sink missed), not flushed a second apart.
	d.Close()
	<-done
	if g := got(8); len(g) != 7 {
		t.Errorf("the sink got %v at Close, want D's held update left", g)
	}
	if st := d.Stats(); st.Merged != 2 || st.Dropped != 1 || st.Queued != 0 {
		t.Errorf("stats %+v, want 2 merged and the held update dropped", st)
	}
}

// TestHeldUpdatesDoNotHideANewAlert: however many updates are held, a new
// alert queued behind them goes at once.
func TestHeldUpdatesDoNotHideANewAlert(t *testing.T) {
	crit := detect.SeverityCritical
	clock := newManualClock()
	rec := &recordingSink{}
	d := NewDispatcher(rec, DispatchConfig{Clock: clock, MinInterval: -1, UpdateInterval: 5 * time.Minute, MaxGroup: 1000})
	done := make(chan struct{})
	go func() { d.Run(context.Background()); close(done) }()
	defer func() { d.Close(); <-done }()
	const n = 700
	for i := 0; i < n; i++ {
		d.Enqueue(tr(Fired, detect.RuleForeignToForeign, fmt.Sprintf("k%d", i), 1, crit))
	}
	sent := func() int {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.got)
	}
	waitFor := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for sent() < want && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got := sent(); got != want {
			t.Fatalf("the sink got %d transitions, want %d", got, want)
		}
	}
	waitFor(n)
	for i := 0; i < n; i++ {
		d.Enqueue(tr(Updated, detect.RuleForeignToForeign, fmt.Sprintf("k%d", i), 2, crit)) // all held
	}
	d.Enqueue(tr(Fired, detect.RuleBlocklisted, "spamhaus", 1, crit))
	waitFor(n + 1)
	if st := d.Stats(); st.Queued != n {
		t.Errorf("stats %+v, want the %d updates still held", st, n)
	}
}
