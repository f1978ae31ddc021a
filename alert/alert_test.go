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

// hostile is attacker-written text: mentions, links, backticks that would
// close a code block or span (four of them: a zero-width space after the
// first only breaks three), terminal escapes that clear the screen and
// paint "ALL CLEAR", a C1 CSI, a bidi override.
const hostile = "<!channel> <https://evil.example|click> https://evil.example/x ```` `x` \x1b[2J\x1b[H\x1b]0;owned\a\x1b[32mALL CLEAR \u009b31m \u202egnp.exe"

// hostileAlert carries attacker-chosen text in every field a log feeds.
func hostileAlert() Transition {
	return Transition{Kind: Fired, Alert: Alert{Finding: detect.Finding{
		Rule: detect.RuleForeignToForeign, Key: "`<!channel>` " + hostile, Severity: detect.SeverityCritical, Host: "<@U123>\x1b[2J",
		Summary:  "helo <https://evil.example|click here> relays " + hostile,
		Evidence: []string{"Nov 24 10:00:00 mx1 postfix/smtpd[1]: NOQUEUE: reject: RCPT from x[1.2.3.4]: 554 <!channel>; helo=<<!here>> ``` break out", "Subject: " + hostile},
		NextStep: "block <!everyone> " + hostile, Count: 3, Recipients: 9, FirstSeen: t0, LastSeen: t0,
	}}}
}

// checkSlackPayload checks a Slack message (its blocks as JSON, and its
// text): no mention, link, code fence or control character in any mrkdwn
// or plain text, every code span closed where it opened, every mrkdwn
// object verbatim, and the evidence in a rich_text preformatted block (taken
// literally by Slack), without control characters.
func checkSlackPayload(t *testing.T, blocksJSON, text string) {
	t.Helper()
	var markup, literal []string
	if text != "" {
		markup = append(markup, text)
	}
	if blocksJSON != "" {
		var blocks any
		if err := json.Unmarshal([]byte(blocksJSON), &blocks); err != nil {
			t.Fatalf("blocks: %v: %s", err, blocksJSON)
		}
		var walk func(v any, inPre bool)
		walk = func(v any, inPre bool) {
			switch v := v.(type) {
			case []any:
				for _, e := range v {
					walk(e, inPre)
				}
			case map[string]any:
				typ, _ := v["type"].(string)
				switch typ {
				case "mrkdwn":
					if v["verbatim"] != true {
						t.Errorf("mrkdwn not verbatim: %v", v)
					}
					markup = append(markup, v["text"].(string))
				case "plain_text":
					markup = append(markup, v["text"].(string))
				case "text":
					if inPre {
						literal = append(literal, v["text"].(string))
					} else {
						markup = append(markup, v["text"].(string))
					}
				}
				for k, e := range v {
					if k != "text" || typ == "section" || typ == "header" {
						walk(e, inPre || typ == "rich_text_preformatted")
					}
				}
			}
		}
		walk(blocks, false)
	}
	for _, m := range markup {
		for _, raw := range []string{"<!", "<@", "<#", "<http", "```"} {
			if strings.Contains(m, raw) {
				t.Errorf("markup contains raw %q: %q", raw, m)
			}
		}
		if strings.Count(m, "`")%2 != 0 {
			t.Errorf("a code span can be closed early: %q", m)
		}
		checkNoControl(t, m)
	}
	for _, l := range literal {
		checkNoControl(t, l)
	}
	if blocksJSON != "" && strings.Contains(blocksJSON, "Subject") && len(literal) == 0 {
		t.Errorf("evidence not in a rich_text preformatted block: %s", blocksJSON)
	}
}

// checkNoControl fails if s holds a character a terminal or Slack would act
// on (C0 but newline, DEL, C1, bidi overrides).
func checkNoControl(t *testing.T, s string) {
	t.Helper()
	for _, r := range s {
		if (r < 0x20 && r != '\n') || (r >= 0x7f && r < 0xa0) || (r >= 0x202a && r <= 0x202e) {
			t.Errorf("control character %U in %q", r, s)
			return
		}
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
	blocks, _ := json.Marshal(msg.Blocks)
	checkSlackPayload(t, string(blocks), msg.Text)
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
	updateErr  string // Slack's error for every chat.update, if set
	channelID  string // the channel ID answered (default: the channel asked for)
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
	w.Header().Set("Content-Type", "application/json")
	if f.updateErr != "" && form.Get("method") == "chat.update" {
		fmt.Fprintf(w, `{"ok":false,"error":%q}`, f.updateErr)
		return
	}
	f.seq++
	ts := form.Get("ts")
	if ts == "" {
		ts = fmt.Sprintf("1700000000.%06d", f.seq)
	}
	channel := form.Get("channel")
	if f.channelID != "" {
		channel = f.channelID
	}
	fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":%q}`, channel, ts)
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
	// One at a time, as a dispatcher that keeps up sends them (one that is
	// behind merges the update into the queued fire).
	for _, tr := range []Transition{a, up, res} {
		if err := bot.Send(context.Background(), []Transition{tr}); err != nil {
			t.Fatalf("%s: %v", tr.Kind, err)
		}
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
		checkSlackPayload(t, c.Get("blocks"), c.Get("text"))
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

// TestOneClientManyRulesIsOneReadableMessage: the fires of several rules
// for one client go as one message that names each rule in plain words,
// with the client's hostile key escaped.
func TestOneClientManyRulesIsOneReadableMessage(t *testing.T) {
	var batch []Transition
	for _, rule := range []string{detect.RuleUnknownRelayingClient, detect.RuleForeignToForeign, detect.RuleRelayProbing} {
		x := hostileAlert()
		x.Alert.Rule = rule
		batch = append(batch, x)
	}
	b, fallback := blocks(batch)
	js, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	checkSlackPayload(t, string(js), fallback)
	for _, want := range []string{"3 alerts:", "is relaying mail for strangers", "a client that may not relay is relaying", "now relaying through",
		"`" + detect.RuleRelayProbing + "`"} {
		if !strings.Contains(string(js), want) {
			t.Errorf("the message lacks %q: %.600s", want, js)
		}
	}
	if !strings.Contains(fallback, "and 2 more alerts") {
		t.Errorf("fallback %q", fallback)
	}
}

// TestGroupMessagesKeepCodeSpansAndSeverities: a host name with a backtick
// (a central syslog's hostname is the sender's to choose) cannot close the
// code spans of a mixed group, and a group of one rule whose alerts differ
// in severity says each one's.
func TestGroupMessagesKeepCodeSpansAndSeverities(t *testing.T) {
	mixedRules := []Transition{hostileAlert(), hostileAlert()}
	mixedRules[1].Alert.Rule = detect.RuleUnknownRelayingClient
	for i := range mixedRules {
		mixedRules[i].Alert.Host = "mx`1 *pwned*"
	}
	oneRule := []Transition{hostileAlert(), hostileAlert()}
	oneRule[1].Alert.Key, oneRule[1].Alert.Severity = "user:alice", detect.SeverityWarning
	for _, batch := range [][]Transition{mixedRules, oneRule} {
		b, fallback := blocks(batch)
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		checkSlackPayload(t, string(js), fallback)
	}
	if got := groupList(oneRule); !strings.Contains(got, "• WARNING `user:alice`") || !strings.Contains(got, "• CRITICAL `") {
		t.Errorf("a group of mixed severities does not say each one's:\n%s", got)
	}
}
