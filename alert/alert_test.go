package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/relaywatch/relaywatch/detect"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func finding(rule, key string, count int, last time.Time) detect.Finding {
	return detect.Finding{Rule: rule, Key: key, Severity: detect.SeverityCritical, Host: "mx1", Summary: "mx1 is relaying mail for strangers",
		Count: count, Recipients: count * 3, FirstSeen: t0, LastSeen: last, Evidence: []string{"line 1", "line 2"}, NextStep: "close it"}
}

func kinds(ts []Transition) string {
	var out []string
	for _, t := range ts {
		out = append(out, fmt.Sprintf("%s %s %d", t.Kind, t.Alert.Key, t.Alert.Count))
	}
	return strings.Join(out, "; ")
}

func TestLifecycleMirrorsEpisodes(t *testing.T) {
	var got []Transition
	m := NewManager(func(tr Transition) { got = append(got, tr) })
	f := finding(detect.RuleForeignToForeign, "203.0.113.66", 1, t0)
	f.Episode = 1
	m.Observe(f)
	m.Observe(f) // duplicate: nothing
	f.Count, f.LastSeen = 4, t0.Add(time.Minute)
	m.Observe(f)
	f.EndedAt = t0.Add(31 * time.Minute)
	m.Observe(f)
	m.Observe(f) // already resolved: nothing
	// The next episode of the same key is a new alert.
	g := finding(detect.RuleForeignToForeign, "203.0.113.66", 1, t0.Add(50*time.Minute))
	g.Episode = 2
	m.Observe(g)
	// An episode whose end was never seen (evicted in detect): the old
	// alert resolves before the new one fires.
	h := g
	h.Episode = 3
	m.Observe(h)
	want := "fired 203.0.113.66 1; updated 203.0.113.66 4; resolved 203.0.113.66 4; fired 203.0.113.66 1; resolved 203.0.113.66 1; fired 203.0.113.66 1"
	if k := kinds(got); k != want {
		t.Errorf("transitions:\n got  %s\n want %s", k, want)
	}
	if r := got[2].Alert.ResolvedAt; !r.Equal(t0.Add(31 * time.Minute)) {
		t.Errorf("resolved at %v, want the episode's end", r)
	}
}

func TestRestoreDoesNotAnnounceAgain(t *testing.T) {
	var first []Transition
	m := NewManager(func(tr Transition) { first = append(first, tr) })
	m.Observe(finding(detect.RuleForeignToForeign, "203.0.113.66", 5, t0))
	saved, _ := json.Marshal(m.Open())

	var after []Transition
	m2 := NewManager(func(tr Transition) { after = append(after, tr) })
	var open []Alert
	if err := json.Unmarshal(saved, &open); err != nil {
		t.Fatal(err)
	}
	m2.Restore(open)
	m2.Observe(finding(detect.RuleForeignToForeign, "203.0.113.66", 5, t0)) // the same lines read again
	if len(after) != 0 {
		t.Errorf("restored alert announced again: %s", kinds(after))
	}
	if fs := m2.Findings(); len(fs) != 1 || fs[0].Count != 5 {
		t.Errorf("findings for detect: %+v", fs)
	}
}

func TestEscapeHostileStrings(t *testing.T) {
	tests := map[string]string{
		"<!channel>":                   "&lt;!channel&gt;",
		"<!here|here>":                 "&lt;!here|here&gt;",
		"<@U123>":                      "&lt;@U123&gt;",
		"<https://evil.example|click>": "&lt;https://evil.example|click&gt;",
		"a & b":                        "a &amp; b",
		"&lt; already":                 "&amp;lt; already",
		"plain.example.org":            "plain.example.org",
		"<<!channel>@evil.example>":    "&lt;&lt;!channel&gt;@evil.example&gt;",
	}
	for in, want := range tests {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

// hostileAlert carries attacker-chosen text in every field a log feeds.
func hostileAlert() Transition {
	return Transition{Kind: Fired, Alert: Alert{Finding: detect.Finding{
		Rule: detect.RuleForeignToForeign, Key: "<!channel>", Severity: detect.SeverityCritical, Host: "<@U123>",
		Summary:  "helo <https://evil.example|click here> relays",
		Evidence: []string{"Nov 24 10:00:00 mx1 postfix/smtpd[1]: NOQUEUE: reject: RCPT from x[1.2.3.4]: 554 <!channel>; helo=<<!here>> ``` break out"},
		NextStep: "block <!everyone>", Count: 3, Recipients: 9, FirstSeen: t0, LastSeen: t0,
	}}}
}

func checkNoRawMarkup(t *testing.T, payload string) {
	t.Helper()
	checkNoRawMarkupFences(t, payload, 2)
}

func checkNoRawMarkupFences(t *testing.T, payload string, fences int) {
	t.Helper()
	for _, raw := range []string{"<!channel>", "<!here>", "<@U123>", "<https://evil.example|click", "<!everyone>"} {
		if strings.Contains(payload, raw) {
			t.Errorf("payload contains raw %q:\n%s", raw, payload)
		}
	}
	if strings.Count(payload, "```") != fences {
		t.Errorf("evidence escaped its code block: %d fences", strings.Count(payload, "```"))
	}
}

// fakeClock records waits instead of sleeping.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}
func (c *fakeClock) waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// runDispatcher sends the transitions through a dispatcher and waits until
// it has worked off its queue.
func runDispatcher(t *testing.T, sink Sink, cfg DispatchConfig, ts ...Transition) *Dispatcher {
	t.Helper()
	d := NewDispatcher(sink, cfg)
	for _, tr := range ts {
		d.Enqueue(tr)
	}
	d.Close()
	done := make(chan struct{})
	go func() { d.Run(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("dispatcher did not finish")
	}
	return d
}

func TestWebhookEscapesAndSends(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	d := runDispatcher(t, NewSlackWebhook(srv.URL+"/services/T000/B000/secret", srv.Client()), DispatchConfig{Clock: &fakeClock{now: t0}}, hostileAlert())
	if st := d.Stats(); st.Sent != 1 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
	var msg struct {
		Text   string            `json:"text"`
		Blocks []json.RawMessage `json:"blocks"`
	}
	if err := json.Unmarshal([]byte(bodies[0]), &msg); err != nil {
		t.Fatal(err)
	}
	if len(msg.Blocks) < 4 || msg.Text == "" {
		t.Errorf("message lacks blocks or fallback text: %s", bodies[0])
	}
	// Decode the JSON so that escapes such as \u003c do not hide raw markup.
	var decoded any
	json.Unmarshal([]byte(bodies[0]), &decoded)
	plain, _ := json.Marshal(decoded)
	checkNoRawMarkup(t, strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(plain)))
}

// fakeSlack is a Slack Web API over httptest: chat.postMessage and
// chat.update, with unique timestamps, and failures on demand.
type fakeSlack struct {
	mu         sync.Mutex
	calls      []url.Values // form of each call, with "method" added
	seq        int
	failures   []int // status codes to answer before succeeding
	hang       bool
	retryAfter string // Retry-After of a 429 (default 7)
}

func (f *fakeSlack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.hang {
		// Read the request, then never answer: the server notices the
		// client giving up only once the body is consumed.
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
		return
	}
	r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.failures) > 0 {
		code := f.failures[0]
		f.failures = f.failures[1:]
		if code == http.StatusTooManyRequests {
			ra := f.retryAfter
			if ra == "" {
				ra = "7"
			}
			w.Header().Set("Retry-After", ra)
		}
		w.WriteHeader(code)
		return
	}
	form := url.Values{}
	for k, v := range r.PostForm {
		form[k] = v
	}
	form.Set("method", strings.TrimPrefix(r.URL.Path, "/"))
	f.calls = append(f.calls, form)
	f.seq++
	ts := form.Get("ts")
	if ts == "" {
		ts = fmt.Sprintf("1700000000.%06d", f.seq)
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":%q}`, form.Get("channel"), ts)
}

func TestBotUpdatesInPlaceAndRepliesInThread(t *testing.T) {
	fs := &fakeSlack{}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	bot := NewSlackBot("xoxb-secret", "#mail-alerts", srv.URL+"/", srv.Client())
	a := hostileAlert()
	up := a
	up.Kind, up.Alert.Count = Updated, 30
	res := up
	res.Kind, res.Alert.ResolvedAt = Resolved, t0.Add(time.Hour)
	d := runDispatcher(t, bot, DispatchConfig{Clock: &fakeClock{now: t0}}, a, up, res)
	if st := d.Stats(); st.Sent != 3 {
		t.Fatalf("stats %+v", st)
	}
	var methods []string
	for _, c := range fs.calls {
		methods = append(methods, c.Get("method")+" thread="+c.Get("thread_ts"))
	}
	want := []string{
		"chat.postMessage thread=",
		"chat.update thread=", "chat.postMessage thread=1700000000.000001",
		"chat.update thread=", "chat.postMessage thread=1700000000.000001",
	}
	if diff := cmp.Diff(want, methods); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if fs.calls[1].Get("ts") != "1700000000.000001" || fs.calls[1].Get("channel") != "#mail-alerts" {
		t.Errorf("update does not target the first message: %v", fs.calls[1])
	}
	if !strings.Contains(fs.calls[2].Get("text"), "now 30 messages") || !strings.Contains(fs.calls[4].Get("text"), "resolved") {
		t.Errorf("thread replies: %q, %q", fs.calls[2].Get("text"), fs.calls[4].Get("text"))
	}
	if !strings.Contains(fs.calls[3].Get("blocks"), "RESOLVED") {
		t.Errorf("the message was not marked resolved: %s", fs.calls[3].Get("blocks"))
	}
	for _, c := range fs.calls {
		if c.Get("blocks") != "" {
			checkNoRawMarkup(t, c.Get("blocks"))
		}
		checkNoRawMarkupFences(t, c.Get("text"), 0)
	}
}

func TestRetryAfterAndServerErrors(t *testing.T) {
	fs := &fakeSlack{failures: []int{http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway}}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	clock := &fakeClock{now: t0}
	d := runDispatcher(t, NewSlackBot("xoxb-secret", "C1", srv.URL+"/", srv.Client()), DispatchConfig{Clock: clock, BaseBackoff: time.Second}, hostileAlert())
	st := d.Stats()
	if st.Sent != 1 || st.Retried != 3 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	w := clock.waits()
	if len(w) != 3 || w[0] != 7*time.Second {
		t.Fatalf("waits %v: want Retry-After's 7s first, then two backoffs", w)
	}
	// The second and third attempts back off 2s and 4s, ±25 %.
	if w[1] < 1500*time.Millisecond || w[1] > 2500*time.Millisecond || w[2] < 3*time.Second || w[2] > 5*time.Second {
		t.Errorf("backoffs %v, want about 2s then 4s with jitter", w[1:])
	}
}

func TestPermanentFailureIsNotRetried(t *testing.T) {
	fs := &fakeSlack{failures: []int{http.StatusNotFound}}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	var errText string
	sink := NewSlackWebhook(srv.URL+"/services/T/B/the-secret-path", srv.Client())
	if err := sink.Send(context.Background(), []Transition{hostileAlert()}); err != nil {
		errText = err.Error()
	}
	if strings.Contains(errText, "the-secret-path") {
		t.Errorf("error shows the webhook URL: %s", errText)
	}
	fs.failures = []int{http.StatusNotFound}
	d := runDispatcher(t, sink, DispatchConfig{Clock: &fakeClock{now: t0}}, hostileAlert())
	if st := d.Stats(); st.Failed != 1 || st.Retried != 0 || st.Dropped != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestHangingServerTimesOutAndGivesUp(t *testing.T) {
	fs := &fakeSlack{hang: true}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	defer srv.CloseClientConnections()
	d := runDispatcher(t, NewSlackWebhook(srv.URL, srv.Client()), DispatchConfig{Clock: &fakeClock{now: t0}, Timeout: 50 * time.Millisecond, MaxAttempts: 3}, hostileAlert())
	if st := d.Stats(); st.Failed != 1 || st.Retried != 2 || st.Dropped != 1 || st.Sent != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestBurstIsGroupedIntoFewMessages(t *testing.T) {
	fs := &fakeSlack{}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	clock := &fakeClock{now: t0}
	var ts []Transition
	for i := 0; i < 1000; i++ {
		tr := hostileAlert()
		tr.Alert.Key = fmt.Sprintf("198.18.%d.%d", i/256, i%256)
		ts = append(ts, tr)
	}
	d := runDispatcher(t, NewSlackBot("xoxb", "C1", srv.URL+"/", srv.Client()), DispatchConfig{Clock: clock, MaxGroup: 50}, ts...)
	if st := d.Stats(); st.Sent != 1000 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	if n := len(fs.calls); n > 20 {
		t.Errorf("%d messages for 1,000 alerts of one rule, want at most 20", n)
	}
	if !strings.Contains(fs.calls[0].Get("blocks"), "and 40 more") {
		t.Errorf("a group message does not cap its list: %.300s", fs.calls[0].Get("blocks"))
	}
	// About one message per second after a burst of three.
	var waited time.Duration
	for _, w := range clock.waits() {
		waited += w
	}
	if waited < 16*time.Second {
		t.Errorf("waited %v between %d messages, want about 1s each", waited, len(fs.calls))
	}
}

func TestQueueIsBoundedAndNeverBlocks(t *testing.T) {
	d := NewDispatcher(NewJSONLog(io.Discard), DispatchConfig{QueueSize: 10})
	for i := 0; i < 100; i++ {
		d.Enqueue(hostileAlert()) // nobody runs the dispatcher: must not block
	}
	if st := d.Stats(); st.Dropped != 90 || st.Queued != 10 {
		t.Errorf("stats %+v", st)
	}
}

func TestAlertmanagerPayload(t *testing.T) {
	var mu sync.Mutex
	var posts [][]amAlert
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v2/alerts" {
			http.NotFound(w, r)
			return
		}
		var as []amAlert
		json.NewDecoder(r.Body).Decode(&as)
		mu.Lock()
		posts = append(posts, as)
		mu.Unlock()
	}))
	defer srv.Close()
	clock := &fakeClock{now: t0}
	am := NewAlertmanager(srv.URL, "mx1", time.Minute, srv.Client(), clock)
	a := hostileAlert()
	b := hostileAlert()
	b.Alert.Key = "203.0.113.77"
	if err := am.Send(context.Background(), []Transition{a, b}); err != nil {
		t.Fatal(err)
	}
	res := a
	res.Kind = Resolved
	am.Send(context.Background(), []Transition{res})
	res2 := b
	res2.Kind = Resolved
	am.Send(context.Background(), []Transition{res2})
	if len(posts) != 3 {
		t.Fatalf("%d posts", len(posts))
	}
	first := posts[0][0]
	wantLabels := map[string]string{"alertname": "RelaywatchFinding", "rule": detect.RuleForeignToForeign, "severity": "critical", "instance": "mx1"}
	if diff := cmp.Diff(wantLabels, first.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if !first.EndsAt.After(t0) || !strings.Contains(first.Annotations["description"], "2 open") || first.Annotations["evidence"] == "" {
		t.Errorf("firing alert: %+v", first)
	}
	if !strings.Contains(posts[1][0].Annotations["description"], "1 open") || !posts[1][0].EndsAt.After(t0) {
		t.Errorf("one key resolved, the other still open: %+v", posts[1][0])
	}
	last := posts[2][0]
	if !last.EndsAt.Equal(t0) || last.Labels["severity"] != "critical" {
		t.Errorf("resolution: endsAt %v labels %v", last.EndsAt, last.Labels)
	}
}
