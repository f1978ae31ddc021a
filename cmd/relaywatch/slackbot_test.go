package main

import (
	"context"
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

	"github.com/relaywatch/relaywatch/alert"
)

// slackCall is one call to the fake Slack Web API.
type slackCall struct {
	method, channel, ts, threadTS, text, blocks string
	answered                                    string // the ts answered
}

// fakeSlackAPI speaks the part of Slack's Web API the bot uses:
// chat.postMessage answers ok with a new ts and the channel's ID (as Slack
// does when asked for "#name"), chat.update answers ok.
type fakeSlackAPI struct {
	mu    sync.Mutex
	calls []slackCall
	seq   int
}

const fakeChannelID = "C0MAIL01"

func (f *fakeSlackAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	c := slackCall{method: strings.TrimPrefix(r.URL.Path, "/"), channel: r.PostForm.Get("channel"), ts: r.PostForm.Get("ts"),
		threadTS: r.PostForm.Get("thread_ts"), text: r.PostForm.Get("text"), blocks: r.PostForm.Get("blocks")}
	c.answered = c.ts
	if c.method == "chat.postMessage" {
		f.seq++
		c.answered = fmt.Sprintf("1764000000.%06d", f.seq)
	}
	f.calls = append(f.calls, c)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":%q}`, fakeChannelID, c.answered)
}

func (f *fakeSlackAPI) since(n int) []slackCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]slackCall(nil), f.calls[n:]...)
}

func TestSlackBotEditsItsMessageAfterARestart(t *testing.T) {
	api := &fakeSlackAPI{}
	srv := httptest.NewServer(api)
	defer srv.Close()
	dir := t.TempDir()
	log := filepath.Join(dir, "mail.log")
	os.WriteFile(log, nil, 0o644)
	alertsLog := filepath.Join(dir, "alerts.jsonl")
	watch := func() (context.CancelFunc, chan int, string) {
		stderr := newSyncBuffer()
		e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: stderr, getenv: func(k string) string {
			if k == envSlackToken {
				return "xoxb-test-secret"
			}
			return ""
		}}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, e, []string{"watch", "--mta-config", "none", "--state-dir", filepath.Join(dir, "state"), "--listen", "127.0.0.1:0",
				"--rescan", "100ms", "--year", "2026", "--timezone", "UTC", "--local-domains", "example.org",
				"--trusted-networks", "10.0.0.0/8", "--alerts-log", alertsLog, "--instance", "mail",
				"--slack-channel", "#mail-alerts", "--slack-api-url", srv.URL + "/", "--alert-drain-timeout", "5s",
				"--slack-update-interval", "0", log})
		}()
		addr := metricsAddr(t, stderr)
		waitReady(t, addr)
		return cancel, done, addr
	}
	appendLog := func(s string) {
		f, _ := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0o644)
		f.WriteString(s)
		f.Close()
	}
	stop := func(cancel context.CancelFunc, done chan int) {
		cancel()
		if code := <-done; code != exitOK {
			t.Fatalf("exit %d", code)
		}
	}

	// The first process posts the abuser's alerts.
	cancel, done, _ := watch()
	mon, _ := abuserDays(5)
	quiet := strings.Index(mon, "09:05:00")
	appendLog(mon[:quiet])
	waitUntil(t, 10*time.Second, "the alerts", func() bool {
		got := transitionsOf(t, alertsLog, "foreign-to-foreign", "203.0.113.66")
		return len(got) > 0 && got[len(got)-1] == "updated 4 #0"
	})
	// Stopping drains the queue: Slack has everything.
	stop(cancel, done)
	first := map[string]bool{} // the first process's messages
	for _, c := range api.since(0) {
		if c.method == "chat.postMessage" && c.threadTS == "" {
			if c.channel != "#mail-alerts" {
				t.Errorf("posted to %q", c.channel)
			}
			first[c.answered] = true
		}
	}
	if len(first) == 0 {
		t.Fatal("nothing posted")
	}
	journal, _ := os.ReadFile(filepath.Join(dir, "state", "alerts.journal"))
	if !strings.Contains(string(journal), `"ts":"1764000000.000001"`) {
		t.Fatalf("the journal does not hold the message:\n%s", journal)
	}

	// Restarted (an upgrade, an OOM kill), it sees the abuser go on: the
	// old message is edited and the news replied in its thread.
	n := len(api.since(0))
	cancel, done, addr := watch()
	var more strings.Builder
	for i := 0; i < 5; i++ {
		postfixMessage(&more, monday.Add(time.Minute+time.Duration(i)*time.Second), fmt.Sprintf("MORE%06d", i), "203.0.113.66", "x@spam.example", "v@victim.example")
	}
	appendLog(more.String())
	edited := func(what string) func() bool {
		return func() bool {
			for _, c := range api.since(n) {
				if c.method == "chat.update" && strings.Contains(c.blocks, what) {
					return true
				}
			}
			return false
		}
	}
	waitUntil(t, 10*time.Second, "the edit after the restart", edited("8 messages"))
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(metrics), "1764000000") || strings.Contains(string(metrics), fakeChannelID) {
		t.Errorf("a message's ts or channel is in the metrics")
	}
	// The abuser stops; an hour of quiet mail resolves the alerts.
	appendLog(mon[quiet:])
	waitUntil(t, 10*time.Second, "the resolution", edited("RESOLVED"))
	stop(cancel, done)
	second := api.since(n)
	updates, replies := 0, 0
	for _, c := range second {
		switch {
		case c.method == "chat.update":
			updates++
			if !first[c.ts] || c.channel != fakeChannelID {
				t.Errorf("the second process edited %s in %s, not a message of the first", c.ts, c.channel)
			}
		case c.method == "chat.postMessage" && first[c.threadTS] && c.channel == fakeChannelID:
			replies++
		default:
			t.Errorf("the second process posted a new message (or elsewhere): %+v", c)
		}
	}
	t.Logf("first process: %d calls, %d messages; second: %d edits and %d thread replies, no new message", n, len(first), updates, replies)
	if updates == 0 || replies != updates {
		t.Errorf("%d edits, %d thread replies after the restart", updates, replies)
	}
	if last := second[len(second)-1]; !strings.Contains(last.text, "resolved") {
		t.Errorf("the last reply: %q", last.text)
	}

	// Resolved and delivered: the journal forgets the messages.
	st, err := alert.OpenStore(filepath.Join(dir, "state", "alerts.journal"), []string{"slack-bot"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if posts := st.Posts("slack-bot"); len(posts) != 0 || st.Len() != 0 {
		t.Errorf("after the resolution the journal holds %d alerts, messages %+v", st.Len(), posts)
	}
}
