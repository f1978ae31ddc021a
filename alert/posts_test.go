package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/relaywatch/relaywatch/detect"
)

const botSink = "slack-bot"

// callsOf lists Slack calls as "method channel ts thread_ts".
func callsOf(fs *fakeSlack) []string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var out []string
	for _, c := range fs.calls {
		out = append(out, strings.TrimSpace(fmt.Sprintf("%s %s ts=%s thread=%s", c.Get("method"), c.Get("channel"), c.Get("ts"), c.Get("thread_ts"))))
	}
	return out
}

// botWithStore opens the journal at path and a bot that keeps its messages
// in it, as watch does at start.
func botWithStore(t *testing.T, path, apiURL string) (*SlackBot, *Store) {
	t.Helper()
	st, err := OpenStore(path, []string{botSink, "alertmanager"})
	if err != nil {
		t.Fatal(err)
	}
	bot := NewSlackBot("xoxb-secret", "#mail-alerts", apiURL, nil)
	bot.Restore(st.Posts(botSink), st)
	return bot, st
}

// deliver records, sends and notes the delivery of a batch, as the
// manager, the dispatcher and OnDelivered do.
func deliver(t *testing.T, bot *SlackBot, st *Store, batch ...Transition) {
	t.Helper()
	for _, tr := range batch {
		st.Record(tr)
	}
	if err := bot.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	st.Delivered(botSink, batch)
}

func TestBotMessagesSurviveARestart(t *testing.T) {
	fs := &fakeSlack{channelID: "C0MAIL01"}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "alerts.journal")
	bot, st := botWithStore(t, path, srv.URL+"/")
	a := Transition{Kind: Fired, Alert: Alert{Finding: finding(detect.RuleForeignToForeign, "198.51.100.1", 1, t0)}}
	b := Transition{Kind: Fired, Alert: Alert{Finding: finding(detect.RuleForeignToForeign, "198.51.100.2", 1, t0)}}
	deliver(t, bot, st, a, b) // one message lists both
	if err := st.Save(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	data, _ := os.ReadFile(path)
	ref, _ := json.Marshal(postRefs{botSink: {To: "#mail-alerts", Channel: "C0MAIL01", TS: "1700000000.000001", N: 1}})
	if !strings.Contains(string(data), `"posts":`+string(ref)) {
		t.Fatalf("the journal does not say where B was posted:\n%s", data)
	}
	t.Logf("a bot message costs %d bytes per alert line in the journal", len(`,"posts":`)+len(ref))

	// A new process: B grows, then both resolve.
	bot, st = botWithStore(t, path, srv.URL+"/")
	upB := b
	upB.Kind, upB.Alert.Count = Updated, 9
	deliver(t, bot, st, upB)
	resA, resB := a, upB
	resA.Kind, resA.Alert.ResolvedAt = Resolved, t0.Add(time.Hour)
	resB.Kind, resB.Alert.ResolvedAt = Resolved, t0.Add(time.Hour)
	st.Delivered("alertmanager", []Transition{a, upB})
	deliver(t, bot, st, resA)
	deliver(t, bot, st, resB)
	// The bot took the resolutions: its message is dropped, though the
	// alerts stay until Alertmanager takes them too.
	if posts := st.Posts(botSink); len(posts) != 0 || st.Len() != 2 {
		t.Errorf("after the resolutions: %d alerts, messages %+v", st.Len(), posts)
	}
	st.Delivered("alertmanager", []Transition{resA, resB})
	want := []string{
		"chat.postMessage #mail-alerts ts= thread=",
		// After the restart: the first message is edited, by its
		// channel's ID, and the news replied in its thread.
		"chat.update C0MAIL01 ts=1700000000.000001 thread=", "chat.postMessage C0MAIL01 ts= thread=1700000000.000001",
		"chat.update C0MAIL01 ts=1700000000.000001 thread=", "chat.postMessage C0MAIL01 ts= thread=1700000000.000001",
		"chat.update C0MAIL01 ts=1700000000.000001 thread=", "chat.postMessage C0MAIL01 ts= thread=1700000000.000001",
	}
	if diff := cmp.Diff(want, callsOf(fs)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	fs.mu.Lock()
	edit, last := fs.calls[1].Get("blocks"), fs.calls[5].Get("blocks")
	fs.mu.Unlock()
	if !strings.Contains(edit, "198.51.100.1") || !strings.Contains(edit, "198.51.100.2") || !strings.Contains(edit, "9 messages") {
		t.Errorf("the edited message does not list both alerts with B's new count: %s", edit)
	}
	if !strings.Contains(last, "RESOLVED") {
		t.Errorf("the message was not marked resolved: %s", last)
	}
	if err := st.Save(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	// Both resolved and the bot was told: nothing of them is left once
	// the journal is compacted (as every start does).
	st, err := OpenStore(path, []string{botSink, "alertmanager"})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	data, _ = os.ReadFile(path)
	if st.Len() != 0 || strings.Contains(string(data), "1700000000.000001") {
		t.Errorf("the journal still holds the message of resolved alerts:\n%s", data)
	}
}

func TestBotPostsAnewWhenItsMessageIsGone(t *testing.T) {
	fs := &fakeSlack{channelID: "C0MAIL01"}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "alerts.journal")
	bot, st := botWithStore(t, path, srv.URL+"/")
	defer st.Close()
	a := Transition{Kind: Fired, Alert: Alert{Finding: finding(detect.RuleForeignToForeign, "198.51.100.1", 1, t0)}}
	deliver(t, bot, st, a)
	// Someone deleted the message.
	fs.mu.Lock()
	fs.updateErr = "message_not_found"
	fs.mu.Unlock()
	up := a
	up.Kind, up.Alert.Count = Updated, 4
	deliver(t, bot, st, up)
	fs.mu.Lock()
	fs.updateErr = ""
	fs.mu.Unlock()
	up.Alert.Count = 8
	deliver(t, bot, st, up)
	want := []string{
		"chat.postMessage #mail-alerts ts= thread=",
		"chat.update C0MAIL01 ts=1700000000.000001 thread=",
		"chat.postMessage #mail-alerts ts= thread=", // a new message
		"chat.update C0MAIL01 ts=1700000000.000002 thread=", "chat.postMessage C0MAIL01 ts= thread=1700000000.000002",
	}
	if diff := cmp.Diff(want, callsOf(fs)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if posts := st.Posts(botSink); len(posts) != 1 || posts[0].TS != "1700000000.000002" {
		t.Errorf("the journal's messages: %+v", posts)
	}
}

func TestBotMessagesAreBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.journal")
	st, err := OpenStore(path, []string{botSink})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// An attacker makes 6,000 alerts (keys are theirs to choose), each
	// posted on its own.
	n := maxTracked + 1000
	for i := 0; i < n; i++ {
		a := Alert{Finding: finding(detect.RuleForeignToForeign, fmt.Sprintf("198.18.%d.%d", i/250, i%250), 1, t0)}
		st.Record(Transition{Kind: Fired, Alert: a})
		st.SetPost(botSink, PostRef{To: "#mail-alerts", Channel: "C0MAIL01", TS: fmt.Sprintf("1700000000.%06d", i)}, []Alert{a})
	}
	bot := NewSlackBot("xoxb-secret", "#mail-alerts", "http://127.0.0.1:1/", nil)
	bot.Restore(st.Posts(botSink), st)
	posts := st.Posts(botSink)
	if len(posts) != maxTracked || len(bot.posts) != maxTracked {
		t.Fatalf("%d messages in the journal, %d in memory, want %d", len(posts), len(bot.posts), maxTracked)
	}
	if posts[0].TS != "1700000000.001000" {
		t.Errorf("the oldest kept is %s, want the newest %d", posts[0].TS, maxTracked)
	}
	if err := st.Save(); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	t.Logf("%d alerts, %d messages kept: journal %d bytes", n, maxTracked, fi.Size())
}

// journalLine is the journal line of an open alert with key, whose entry's
// "posts" is posts (raw JSON).
func journalLine(t testing.TB, key, posts string) string {
	a := Alert{Finding: finding(detect.RuleForeignToForeign, key, 1, t0)}
	b, err := json.Marshal(storeRecord{ID: a.ID(), Entry: &storeEntry{Alert: a, Open: true,
		Delivered: map[string]Mark{botSink: {Kind: Fired, Count: 1}}}})
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(b), "}}") + `,"posts":` + posts + "}}"
}

const goodRef = `{"slack-bot":{"to":"#mail-alerts","channel":"C0MAIL01","ts":"1700000000.000001"}}`

// hostileBotEntries are bot entries of alert A, each with the call the
// next update of A makes: an edit of the message it names, or a new post.
var hostileBotEntries = []struct {
	name, posts, want string
}{
	{"valid", goodRef, "chat.update C0MAIL01 ts=1700000000.000001 thread="},
	{"not an object", `5`, "new"},
	{"a string", `{"slack-bot":"1700000000.000001"}`, "new"},
	{"ts of another type", `{"slack-bot":{"to":"#mail-alerts","channel":"C0MAIL01","ts":1700000000.000001}}`, "new"},
	{"parameters in ts", `{"slack-bot":{"to":"#mail-alerts","channel":"C0MAIL01","ts":"1700000000.000001&channel=C0EVIL"}}`, "new"},
	{"path in ts", `{"slack-bot":{"to":"#mail-alerts","channel":"C0MAIL01","ts":"../../api/admin"}}`, "new"},
	{"empty ts", `{"slack-bot":{"to":"#mail-alerts","channel":"C0MAIL01","ts":""}}`, "new"},
	{"control characters", `{"slack-bot":{"to":"#mail-alerts","channel":"C0MAIL01\u0000","ts":"1700000000.000001\n"}}`, "new"},
	{"a channel neither configured nor an ID", `{"slack-bot":{"to":"#mail-alerts","channel":"#elsewhere","ts":"1700000000.000001"}}`, "new"},
	{"posted to another channel", `{"slack-bot":{"to":"#old-alerts","channel":"C0OLD001","ts":"1700000000.000001"}}`, "new"},
	{"no to", `{"slack-bot":{"channel":"C0MAIL01","ts":"1700000000.000001"}}`, "new"},
	{"negative place", `{"slack-bot":{"to":"#mail-alerts","channel":"C0MAIL01","ts":"1700000000.000001","n":-1}}`, "new"},
	{"huge place", `{"slack-bot":{"to":"#mail-alerts","channel":"C0MAIL01","ts":"1700000000.000001","n":1e12}}`, "new"},
	{"another sink's", `{"slack-evil":{"to":"#mail-alerts","channel":"C0MAIL01","ts":"1700000000.000001"}}`, "new"},
	{"null", `null`, "new"},
	{"a huge ts", `{"slack-bot":{"to":"#mail-alerts","channel":"C0MAIL01","ts":"` + strings.Repeat("1", 5000) + `.1"}}`, "new"},
}

func TestHostileBotEntriesInTheJournal(t *testing.T) {
	for _, tt := range hostileBotEntries {
		t.Run(tt.name, func(t *testing.T) {
			fs := &fakeSlack{channelID: "C0MAIL01"}
			srv := httptest.NewServer(fs)
			defer srv.Close()
			path := filepath.Join(t.TempDir(), "alerts.journal")
			// A's entry, then B's: a bad entry must not cost the lines
			// after it.
			journal := journalLine(t, "198.51.100.1", tt.posts) + "\n" + journalLine(t, "198.51.100.2", goodRef) + "\n"
			os.WriteFile(path, []byte(journal), 0o640)
			bot, st := botWithStore(t, path, srv.URL+"/")
			defer st.Close()
			if got := len(st.Open()); got != 2 {
				t.Fatalf("%d open alerts, want 2", got)
			}
			up := Transition{Kind: Updated, Alert: Alert{Finding: finding(detect.RuleForeignToForeign, "198.51.100.1", 5, t0)}}
			deliver(t, bot, st, up)
			calls := callsOf(fs)
			want := tt.want
			if want == "new" {
				want = "chat.postMessage #mail-alerts ts= thread="
			}
			if calls[0] != want {
				t.Errorf("the update went %q, want %q", calls[0], want)
			}
		})
	}
}

func TestAJournalLineOfAnotherAlertIsDropped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.journal")
	// The line says it is A's, its alert is B: which message shows which
	// alert cannot be trusted, and nothing of it is kept.
	line := strings.Replace(journalLine(t, "198.51.100.2", goodRef), `"id":"foreign-to-foreign 198.51.100.2"`, `"id":"foreign-to-foreign 198.51.100.1"`, 1)
	os.WriteFile(path, []byte(line+"\n"), 0o640)
	st, err := OpenStore(path, []string{botSink})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Len() != 0 || len(st.Posts(botSink)) != 0 {
		t.Errorf("kept %v, %+v", st.Open(), st.Posts(botSink))
	}
}

// FuzzStoreJournal reads any journal: it never fails or panics, and the
// bot's messages it gives back are usable (a valid timestamp, the
// configured channel or an ID, each alert in one message), and stay so
// through a compaction.
func FuzzStoreJournal(f *testing.F) {
	for _, tt := range hostileBotEntries {
		f.Add([]byte(journalLine(f, "198.51.100.1", tt.posts) + "\n" + journalLine(f, "198.51.100.2", goodRef) + "\n"))
	}
	f.Add([]byte(journalLine(f, "A", goodRef) + "\n" + journalLine(f, "B", goodRef) + "\n{\"id\":\"foreign-to-foreign A\"}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "alerts.journal")
		os.WriteFile(path, data, 0o640)
		st, err := OpenStore(path, []string{botSink})
		if err != nil {
			t.Fatal(err)
		}
		posts := st.Posts(botSink)
		seen := map[string]bool{}
		for _, p := range posts {
			if !(PostRef{To: p.To, Channel: p.Channel, TS: p.TS}).valid() || len(p.Alerts) == 0 {
				t.Fatalf("unusable message %+v", p)
			}
			for _, a := range p.Alerts {
				if seen[a.ID()] {
					t.Fatalf("%q in two messages", a.ID())
				}
				seen[a.ID()] = true
			}
		}
		bot := NewSlackBot("xoxb-secret", "#mail-alerts", "http://127.0.0.1:1/", nil)
		bot.Restore(posts, st)
		for id, p := range bot.posts {
			if !tsPattern.MatchString(p.ts) || (p.channel != "#mail-alerts" && !channelIDPattern.MatchString(p.channel)) {
				t.Fatalf("%q is shown by %q in %q", id, p.ts, p.channel)
			}
			found := false
			for _, a := range p.alerts {
				found = found || a.ID() == id
			}
			if !found {
				t.Fatalf("%q is mapped to a message that does not show it", id)
			}
		}
		after := st.Posts(botSink)
		if err := st.Save(); err != nil {
			t.Fatal(err)
		}
		st.Close()
		st, err = OpenStore(path, []string{botSink})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if diff := cmp.Diff(len(after), len(st.Posts(botSink))); diff != "" {
			t.Errorf("messages changed through a compaction (-before +after):\n%s", diff)
		}
	})
}
