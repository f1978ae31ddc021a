package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/relaywatch/relaywatch/detect"
)

// postfixMessage writes the Postfix lines of one message from client with
// sender from to rcpt (delivered by smtp, or into a mailbox for
// example.org).
func postfixMessage(b *strings.Builder, at time.Time, qid, client, from, rcpt string) {
	ts := at.Format(time.Stamp)
	fmt.Fprintf(b, "%s mx1 postfix/smtpd[1]: %s: client=unknown[%s]\n", ts, qid, client)
	fmt.Fprintf(b, "%s mx1 postfix/qmgr[2]: %s: from=<%s>, size=100, nrcpt=1 (queue active)\n", ts, qid, from)
	if strings.HasSuffix(rcpt, "@example.org") {
		fmt.Fprintf(b, "%s mx1 postfix/virtual[3]: %s: to=<%s>, relay=virtual, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered to maildir)\n", ts, qid, rcpt)
	} else {
		fmt.Fprintf(b, "%s mx1 postfix/smtp[3]: %s: to=<%s>, relay=mx[192.0.2.9]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)\n", ts, qid, rcpt)
	}
	fmt.Fprintf(b, "%s mx1 postfix/qmgr[2]: %s: removed\n", ts, qid)
}

var monday = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// abuserDays returns Monday's log (an abuser relays n messages among
// ordinary mail) and Wednesday's (ordinary mail, then the abuser is back
// with two messages).
func abuserDays(n int) (string, string) {
	var mon, wed strings.Builder
	qid := 0
	next := func() string { qid++; return fmt.Sprintf("%010X", qid) }
	for i := 0; i < n; i++ {
		at := monday.Add(time.Duration(i) * time.Second)
		postfixMessage(&mon, at, next(), "203.0.113.66", "x@spam.example", "v@victim.example")
		postfixMessage(&mon, at, next(), "10.1.1.1", "a@example.org", "b@example.org")
	}
	// Monday goes on quietly for an hour: the episode ends.
	for m := 5; m <= 60; m += 5 {
		postfixMessage(&mon, monday.Add(time.Duration(m)*time.Minute), next(), "10.1.1.1", "a@example.org", "b@example.org")
	}
	wednesday := monday.Add(48 * time.Hour)
	for i := 0; i < 3; i++ {
		postfixMessage(&wed, wednesday.Add(time.Duration(i)*time.Second), next(), "10.1.1.1", "a@example.org", "b@example.org")
	}
	for i := 0; i < 2; i++ {
		postfixMessage(&wed, wednesday.Add(time.Minute+time.Duration(i)*time.Second), next(), "203.0.113.66", "x@spam.example", "v@victim.example")
	}
	return mon.String(), wed.String()
}

// transitionsOf reads an alerts log as "kind count episode" per line, for
// one rule and key.
func transitionsOf(t *testing.T, path, rule, key string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if l == "" {
			continue
		}
		var tr struct {
			Transition string `json:"transition"`
			Alert      struct {
				Rule, Key string
				Count     int
				Episode   int
			} `json:"alert"`
		}
		if err := json.Unmarshal([]byte(l), &tr); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		if tr.Alert.Rule == rule && tr.Alert.Key == key {
			out = append(out, fmt.Sprintf("%s %d #%d", tr.Transition, tr.Alert.Count, tr.Alert.Episode))
		}
	}
	return out
}

func TestReturningAbuserIsAlertedAgainInAnalyze(t *testing.T) {
	dir := t.TempDir()
	mon, wed := abuserDays(40)
	os.WriteFile(filepath.Join(dir, "mail.log.1"), []byte(mon), 0o644)
	os.WriteFile(filepath.Join(dir, "mail.log"), []byte(wed), 0o644)
	logPath := filepath.Join(dir, "alerts.jsonl")
	var out, errOut bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	args := append(append([]string{"analyze", "--alerts-log", logPath, "--local-domains", "example.org", "--trusted-networks", "10.0.0.0/8"}, sampleArgs...),
		filepath.Join(dir, "mail.log.1"), filepath.Join(dir, "mail.log"))
	if code := run(context.Background(), e, args); code != exitFindings {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	got := strings.Join(transitionsOf(t, logPath, "foreign-to-foreign", "203.0.113.66"), ", ")
	// Monday: fired at the first message, updated as it doubled, resolved
	// 30 minutes after the last; Wednesday: fired again at once.
	want := "fired 1 #0, updated 2 #0, updated 4 #0, updated 8 #0, updated 16 #0, updated 32 #0, resolved 40 #0, fired 1 #1, updated 2 #1"
	if got != want {
		t.Errorf("transitions:\n got  %s\n want %s", got, want)
	}
}

func TestReturningAbuserIsAlertedAgainLive(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "mail.log")
	os.WriteFile(log, nil, 0o644)
	alertsLog := filepath.Join(dir, "alerts.jsonl")
	addr, stop := startWatch(t, nil, "--state-dir", filepath.Join(dir, "state"), "--local-domains", "example.org",
		"--trusted-networks", "10.0.0.0/8", "--alerts-log", alertsLog, "--instance", "mail", log)
	waitReady(t, addr)
	mon, wed := abuserDays(40)
	appendTo := func(s string) {
		f, _ := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0o644)
		f.WriteString(s)
		f.Close()
	}
	appendTo(mon)
	active := `relaywatch_alerts_active{rule=foreign-to-foreign,severity=critical}`
	waitUntil(t, 10*time.Second, "Monday's alert to resolve", func() bool {
		return len(transitionsOf(t, alertsLog, "foreign-to-foreign", "203.0.113.66")) == 7
	})
	if n := scrape(t, addr)[active]; n != 0 {
		t.Errorf("after Monday: %v active", n)
	}
	appendTo(wed)
	waitUntil(t, 10*time.Second, "Wednesday's alert", func() bool { return scrape(t, addr)[active] == 1 })
	got := transitionsOf(t, alertsLog, "foreign-to-foreign", "203.0.113.66")
	if got[6] != "resolved 40 #0" || got[7] != "fired 1 #1" {
		t.Errorf("transitions %v", got)
	}
	if code := stop(); code != exitOK {
		t.Errorf("exit %d", code)
	}
}

// startAlerting starts the alert machinery from flags, as watch does.
func startAlerting(t *testing.T, e *env, args ...string) *alerting {
	t.Helper()
	o := &watchOptions{}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	a, err := o.alerts.start(context.Background(), e, false)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func burstFinding(i int) detect.Finding {
	return detect.Finding{Rule: detect.RuleForeignToForeign, Key: fmt.Sprintf("198.18.%d.%d", i/250, i%250), Severity: detect.SeverityCritical,
		Count: 1, FirstSeen: monday, LastSeen: monday, Evidence: []string{"a line"}}
}

func TestAlertsLogTakesABurstOf20000(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable) // Slack is down meanwhile
	}))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	e := &env{stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string {
		if k == envSlackWebhook {
			return srv.URL + "/hook"
		}
		return ""
	}}
	a := startAlerting(t, e, "--alerts-log", path, "--alert-drain-timeout", "10ms")
	for i := 0; i < 10000; i++ {
		f := burstFinding(i)
		a.observe(f)
		f.EndedAt = monday.Add(30 * time.Minute)
		a.observe(f)
	}
	a.stop(e)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(data, []byte("\n")); n != 20000 {
		t.Errorf("%d transitions in the alerts log, want 20,000", n)
	}
}

func TestAlertmanagerIsNotLimitedToSlacksRate(t *testing.T) {
	var mu sync.Mutex
	posts := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		posts++
		mu.Unlock()
	}))
	defer srv.Close()
	e := &env{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	a := startAlerting(t, e, "--alertmanager", srv.URL, "--alertmanager-refresh", "1h")
	defer a.stop(e)
	// 29 fires that cannot be grouped (nor merged): each its own rule and
	// key.
	for i := 1; i < 30; i++ {
		f := burstFinding(i)
		f.Rule = fmt.Sprintf("rule-%d", i)
		a.observe(f)
	}
	start := time.Now()
	waitUntil(t, 10*time.Second, "the updates to reach Alertmanager", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return posts >= 29
	})
	t.Logf("29 transitions reached Alertmanager in %v", time.Since(start))
}

func TestSinkURLsAreCheckedAtStart(t *testing.T) {
	for _, tt := range []struct {
		webhook string
		args    []string
		want    string
	}{
		{webhook: "hooks.slack.com/services/T/B/SECRET", want: "must start with https://"},
		{webhook: "https:///services/T/B/SECRET", want: "has no host"},
		{args: []string{"--alertmanager", "localhost:9093"}, want: "--alertmanager"},
		{args: []string{"--alertmanager", "ftp://am:9093"}, want: "must start with https://"},
	} {
		var errOut bytes.Buffer
		e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &errOut, getenv: func(k string) string {
			if k == envSlackWebhook {
				return tt.webhook
			}
			return ""
		}}
		args := append(append([]string{"analyze", "--progress", "never"}, tt.args...), filepath.Join("..", "..", "samples", "postfix", "normal.log"))
		if code := run(context.Background(), e, args); code != exitUsage {
			t.Errorf("%v %q: exit %d, want usage error", tt.args, tt.webhook, code)
		}
		if !strings.Contains(errOut.String(), tt.want) || strings.Contains(errOut.String(), "SECRET") {
			t.Errorf("%v %q: %s", tt.args, tt.webhook, errOut.String())
		}
	}
}

// fakeWebhook is a Slack incoming webhook that can be down.
type fakeWebhook struct {
	mu    sync.Mutex
	down  bool
	posts []string
}

func (f *fakeWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	f.posts = append(f.posts, string(b))
	w.Write([]byte("ok"))
}

func (f *fakeWebhook) all() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.posts, "\n")
}

func TestSlackDownRestartSlackBack(t *testing.T) {
	hook := &fakeWebhook{down: true}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	dir := t.TempDir()
	log := filepath.Join(dir, "mail.log")
	os.WriteFile(log, nil, 0o644)
	alertsLog := filepath.Join(dir, "alerts.jsonl")
	watch := func() (context.CancelFunc, chan int, *syncBuffer) {
		stderr := newSyncBuffer()
		e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: stderr, getenv: func(k string) string {
			if k == envSlackWebhook {
				return srv.URL + "/services/T/B/secret"
			}
			return ""
		}}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, e, []string{"watch", "--mta-config", "none", "--state-dir", filepath.Join(dir, "state"), "--listen", "127.0.0.1:0",
				"--rescan", "100ms", "--year", "2026", "--timezone", "UTC", "--local-domains", "example.org",
				"--trusted-networks", "10.0.0.0/8", "--alerts-log", alertsLog, "--instance", "mail",
				"--alert-drain-timeout", "200ms", "--slack-update-interval", "0", log}) // every update: counted below
		}()
		waitReady(t, metricsAddr(t, stderr))
		return cancel, done, stderr
	}
	cancel, done, stderr := watch()
	mon, _ := abuserDays(5)
	f, _ := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0o644)
	f.WriteString(mon[:strings.Index(mon, "09:05:00")]) // the burst, not the quiet hour after it
	f.Close()
	waitUntil(t, 10*time.Second, "the alerts", func() bool {
		return len(transitionsOf(t, alertsLog, "foreign-to-foreign", "203.0.113.66")) > 0
	})
	waitUntil(t, 10*time.Second, "Slack's failure to be logged", func() bool {
		return strings.Contains(stderr.String(), "slack-webhook: failing, will retry: server_error")
	})
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if hook.all() != "" {
		t.Fatal("Slack took posts while down")
	}

	// Slack is back; relaywatch restarts and the logs stay quiet.
	hook.mu.Lock()
	hook.down = false
	hook.mu.Unlock()
	cancel, done, stderr = watch()
	waitUntil(t, 10*time.Second, "the open alerts to reach Slack", func() bool {
		all := hook.all()
		return strings.Contains(all, "203.0.113.66") && strings.Contains(all, "foreign-to-foreign") && strings.Contains(all, "unknown-relaying-client")
	})
	// The abuser goes on: its counts go on from where they were, in the
	// same episode (no "now 2 messages" after 5, no second fire).
	var more strings.Builder
	for i := 0; i < 5; i++ {
		postfixMessage(&more, monday.Add(time.Minute+time.Duration(i)*time.Second), fmt.Sprintf("MORE%06d", i), "203.0.113.66", "x@spam.example", "v@victim.example")
	}
	f, _ = os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0o644)
	f.WriteString(more.String())
	f.Close()
	waitUntil(t, 10*time.Second, "the growth after the restart", func() bool {
		got := transitionsOf(t, alertsLog, "foreign-to-foreign", "203.0.113.66")
		return got[len(got)-1] == "updated 8 #0"
	})
	if got := strings.Join(transitionsOf(t, alertsLog, "foreign-to-foreign", "203.0.113.66"), ", "); got != "fired 1 #0, updated 2 #0, updated 4 #0, updated 8 #0" {
		t.Errorf("transitions across the restart: %s", got)
	}
	waitUntil(t, 10*time.Second, "the updates to reach Slack (about one post a second)", func() bool {
		hook.mu.Lock()
		defer hook.mu.Unlock()
		n := 0
		for _, p := range hook.posts {
			if strings.Contains(p, "(updated)") {
				n++
			}
		}
		return n == 2
	})
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	// And a third start sends nothing again.
	before := hook.all()
	cancel, done, _ = watch()
	cancel() // stopping drains the queues: whatever it had re-sent would be sent now
	<-done
	if hook.all() != before {
		t.Error("delivered alerts were sent again after another restart")
	}
}

// hostileText is what attackers write into logs: terminal escapes that clear
// the screen and paint "ALL CLEAR", a C1 CSI, a bidi override, mentions,
// links and backticks.
const hostileText = "\x1b[2J\x1b[H\x1b]0;owned\a\x1b[32mALL CLEAR \u009b31m \u202egnp.exe <!channel> <https://evil.example|x> ````"

func TestHostileTextThroughEverySink(t *testing.T) {
	hook := &fakeWebhook{}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	var amBodies []string
	var amMu sync.Mutex
	am := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		amMu.Lock()
		amBodies = append(amBodies, string(b))
		amMu.Unlock()
	}))
	defer am.Close()
	dir := t.TempDir()
	var b strings.Builder
	for i := 0; i < 3; i++ {
		postfixMessage(&b, monday.Add(time.Duration(i)*time.Second), fmt.Sprintf("H%09d", i), "203.0.113.66", "x"+hostileText+"@spam.example", "v@victim.example")
	}
	logPath := filepath.Join(dir, "mail.log")
	os.WriteFile(logPath, []byte(b.String()), 0o644)
	alertsLog := filepath.Join(dir, "alerts.jsonl")
	var out, errOut bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(k string) string {
		if k == envSlackWebhook {
			return srv.URL + "/hook"
		}
		return ""
	}}
	args := append(append([]string{"analyze", "--alerts-log", alertsLog, "--alertmanager", am.URL}, sampleArgs...), logPath)
	if code := run(context.Background(), e, args); code != exitFindings {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	report := out.String()
	if !strings.Contains(report, `\e[2J\e[H\e]0;owned\x07\e[32mALL CLEAR \u009b31m \u202egnp.exe`) {
		t.Errorf("the report does not show the escapes:\n%s", report)
	}
	// The JSON report too.
	out.Reset()
	args = append(append([]string{"analyze", "-o", "json"}, sampleArgs...), logPath)
	if code := run(context.Background(), e, args); code != exitFindings {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	jsonReport := out.String()
	var parsed map[string]any
	if err := json.Unmarshal([]byte(jsonReport), &parsed); err != nil {
		t.Fatalf("JSON report: %v", err)
	}
	data, _ := os.ReadFile(alertsLog)
	amMu.Lock()
	am0 := strings.Join(amBodies, "\n")
	amMu.Unlock()
	for name, text := range map[string]string{"report": report, "JSON report": jsonReport, "stderr": errOut.String(), "alerts log": string(data), "Slack": hook.all(), "Alertmanager": am0} {
		if text == "" && name != "stderr" {
			t.Errorf("%s got nothing", name)
		}
		for _, r := range text {
			if (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r < 0xa0) || r == 0x202e {
				t.Errorf("%s carries control character %U", name, r)
				break
			}
		}
	}
	var ams []struct{ Annotations map[string]string }
	json.Unmarshal([]byte(amBodies[0]), &ams)
	for _, a := range ams {
		for k, v := range a.Annotations {
			if strings.Contains(v, "<!channel>") || strings.Contains(v, "<https") || strings.Contains(v, "`") {
				t.Errorf("Alertmanager annotation %s is not safe for Slack templates: %q", k, v)
			}
		}
	}
}

func TestSixThousandAbusersThenANewOne(t *testing.T) {
	path := relayLog(t, 6000) // 6,000 addresses relaying one message each
	var b strings.Builder
	postfixMessage(&b, time.Date(2026, 11, 24, 11, 40, 0, 0, time.UTC), "NEWABUSER1", "203.0.113.200", "x@spam.example", "v@victim.example")
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	f.WriteString(b.String())
	f.Close()
	alertsLog := analyzeToAlertsLog(t, path)
	if got := transitionsOf(t, alertsLog, "foreign-to-foreign", "203.0.113.200"); len(got) == 0 || got[0] != "fired 1 #0" {
		t.Errorf("the new abuser: %v", got)
	}
}

func TestOneLineADayAheadResolvesNothing(t *testing.T) {
	var b strings.Builder
	at := monday
	for i := 0; i < 30; i++ {
		postfixMessage(&b, at, fmt.Sprintf("INC%06d", i), "203.0.113.66", "x@spam.example", "v@victim.example")
		if i == 10 {
			// One host in the central syslog has a clock a day ahead.
			fmt.Fprintf(&b, "%s mx9 postfix/smtpd[1]: connect from unknown[192.0.2.1]\n", at.Add(24*time.Hour).Format(time.Stamp))
		}
		if i == 20 {
			// And one logs late: a relay dated two hours back.
			postfixMessage(&b, at.Add(-2*time.Hour), "LATE000001", "203.0.113.77", "x@spam.example", "v@victim.example")
		}
		at = at.Add(30 * time.Second)
	}
	path := filepath.Join(t.TempDir(), "mail.log")
	os.WriteFile(path, []byte(b.String()), 0o644)
	alertsLog := analyzeToAlertsLog(t, path)
	data, _ := os.ReadFile(alertsLog)
	if bytes.Contains(data, []byte(`"resolved"`)) {
		t.Errorf("an alert resolved during the incident:\n%s", data)
	}
	if got := strings.Join(transitionsOf(t, alertsLog, "foreign-to-foreign", "203.0.113.66"), ", "); got != "fired 1 #0, updated 2 #0, updated 4 #0, updated 8 #0, updated 16 #0" {
		t.Errorf("the incident: %s", got)
	}
	if got := transitionsOf(t, alertsLog, "foreign-to-foreign", "203.0.113.77"); len(got) != 1 || got[0] != "fired 1 #0" {
		t.Errorf("the late relay: %v", got)
	}
}

// analyzeToAlertsLog runs analyze on path, which must have findings, and
// returns its alerts log.
func analyzeToAlertsLog(t *testing.T, path string) string {
	t.Helper()
	alertsLog := filepath.Join(t.TempDir(), "alerts.jsonl")
	var errOut bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &errOut, getenv: func(string) string { return "" }}
	args := append(append([]string{"analyze", "--alerts-log", alertsLog}, sampleArgs...), path)
	if code := run(context.Background(), e, args); code != exitFindings {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	return alertsLog
}
