package detect

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/postfix"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// msg returns the Postfix lines of one message: accepted from client (with
// an optional SASL user), queued with sender from, delivered to each
// recipient (into a mailbox for example.org, by smtp otherwise), removed.
func msg(at time.Time, qid, client, user, from string, rcpts ...string) []string {
	ts := at.Format(time.Stamp)
	auth := ""
	if user != "" {
		auth = ", sasl_method=PLAIN, sasl_username=" + user
	}
	lines := []string{
		fmt.Sprintf("%s mx1 postfix/smtpd[10]: %s: client=unknown[%s]%s", ts, qid, client, auth),
		fmt.Sprintf("%s mx1 postfix/cleanup[11]: %s: message-id=<%s@x>", ts, qid, qid),
		fmt.Sprintf("%s mx1 postfix/qmgr[12]: %s: from=<%s>, size=1000, nrcpt=%d (queue active)", ts, qid, from, len(rcpts)),
	}
	for _, r := range rcpts {
		if strings.HasSuffix(r, "@example.org") {
			lines = append(lines, fmt.Sprintf("%s mx1 postfix/virtual[13]: %s: to=<%s>, relay=virtual, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered to maildir)", ts, qid, r))
		} else {
			lines = append(lines, fmt.Sprintf("%s mx1 postfix/smtp[14]: %s: to=<%s>, relay=mx.%s[198.51.100.1]:25, delay=0.2, delays=0/0/0.1/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok)", ts, qid, r, Domain(r)))
		}
	}
	return append(lines, fmt.Sprintf("%s mx1 postfix/qmgr[12]: %s: removed", ts, qid))
}

func newDetector(t *testing.T, cfg Config) *Detector {
	t.Helper()
	if cfg.Policy == nil {
		p, err := NewPolicy([]string{"example.org"}, []string{"127.0.0.0/8", "10.0.0.0/8"}, []string{"192.0.2.50"})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Policy = p
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func feed(t *testing.T, d *Detector, lines ...string) {
	t.Helper()
	p := postfix.New(parsers.Options{Year: 2026, Location: time.UTC})
	for _, l := range lines {
		evs, r := p.Parse(l, nil)
		if r == parsers.Malformed || r == parsers.Unrecognized {
			t.Fatalf("test line does not parse (%v): %s", r, l)
		}
		for i := range evs {
			d.Handle(&evs[i])
		}
	}
}

func keys(fs []Finding) string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s/%s/%s/%d", f.Rule, f.Key, f.Severity, f.Count))
	}
	return strings.Join(out, " ")
}

func TestRelayRules(t *testing.T) {
	percentHack := []string{
		t0.Format(time.Stamp) + " mx1 postfix/smtpd[10]: 7F3A0C1E01: client=unknown[203.0.113.9]",
		t0.Format(time.Stamp) + " mx1 postfix/qmgr[12]: 7F3A0C1E01: from=<x@spam.example>, size=10, nrcpt=1 (queue active)",
		t0.Format(time.Stamp) + " mx1 postfix/smtp[14]: 7F3A0C1E01: to=<u@victim.example>, orig_to=<u%victim.example@example.org>, relay=mx.victim.example[198.51.100.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
	}
	viaFilter := func(client, from, rcpt string) []string {
		ts := t0.Format(time.Stamp)
		agent := "postfix/smtp[14]: 7F3A0C1F02: to=<" + rcpt + ">, relay=mx.x[198.51.100.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)"
		if strings.HasSuffix(rcpt, "@example.org") {
			agent = "postfix/virtual[13]: 7F3A0C1F02: to=<" + rcpt + ">, relay=virtual, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (delivered to maildir)"
		}
		return []string{
			ts + " mx1 postfix/smtpd[10]: 7F3A0C1F01: client=unknown[" + client + "]",
			ts + " mx1 postfix/qmgr[12]: 7F3A0C1F01: from=<" + from + ">, size=10, nrcpt=1 (queue active)",
			ts + " mx1 postfix/10025/smtpd[20]: 7F3A0C1F02: client=localhost[127.0.0.1]",
			ts + " mx1 postfix/qmgr[12]: 7F3A0C1F02: from=<" + from + ">, size=12, nrcpt=1 (queue active)",
			ts + " mx1 postfix/smtp[15]: 7F3A0C1F01: to=<" + rcpt + ">, relay=127.0.0.1[127.0.0.1]:10024, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 7F3A0C1F02)",
			ts + " mx1 postfix/qmgr[12]: 7F3A0C1F01: removed",
			ts + " mx1 " + agent,
			ts + " mx1 postfix/qmgr[12]: 7F3A0C1F02: removed",
		}
	}
	tests := []struct {
		name  string
		lines []string
		want  string
	}{
		{"open relay", msg(t0, "7F3A0C1D01", "203.0.113.5", "", "spam@bulk.example", "a@gmail.test", "b@yahoo.test"),
			"foreign-to-foreign/203.0.113.5/critical/1 unknown-relaying-client/203.0.113.5/critical/1"},
		{"forged local sender", msg(t0, "7F3A0C1D01", "203.0.113.5", "", "postmaster@example.org", "a@gmail.test"),
			"unknown-relaying-client/203.0.113.5/critical/1"},
		{"null sender relayed", msg(t0, "7F3A0C1D01", "203.0.113.5", "", "", "a@gmail.test"),
			"foreign-to-foreign/203.0.113.5/critical/1 unknown-relaying-client/203.0.113.5/critical/1"},
		{"authenticated", msg(t0, "7F3A0C1D01", "203.0.113.5", "alice@example.org", "alice@example.org", "a@gmail.test"), ""},
		{"trusted network", msg(t0, "7F3A0C1D01", "10.1.2.3", "", "app@example.org", "a@gmail.test"), ""},
		{"known client", msg(t0, "7F3A0C1D01", "192.0.2.50", "", "crm@partner.test", "a@gmail.test"), ""},
		{"inbound", msg(t0, "7F3A0C1D01", "203.0.113.5", "", "news@partner.test", "bob@example.org"), ""},
		{"percent hack", percentHack, "foreign-to-foreign/203.0.113.9/critical/1 relay-trick-accepted/203.0.113.9/critical/1 unknown-relaying-client/203.0.113.9/critical/1"},
		{"inbound through a content filter", viaFilter("203.0.113.7", "news@partner.test", "bob@example.org"), ""},
		{"relay through a content filter counts once", viaFilter("203.0.113.7", "spam@bulk.example", "v@gmail.test"),
			"foreign-to-foreign/203.0.113.7/critical/1 unknown-relaying-client/203.0.113.7/critical/1"},
		{"queue id reused by a trusted client", append(msg(t0, "7F3A0C1D01", "203.0.113.5", "", "news@partner.test", "bob@example.org"),
			msg(t0.Add(time.Minute), "7F3A0C1D01", "10.0.0.1", "", "app@example.org", "a@gmail.test")...), ""},
		{"delivery of a message the log did not show", []string{
			t0.Format(time.Stamp) + " mx1 postfix/smtp[14]: 7F3A0C2001: to=<a@gmail.test>, relay=mx[198.51.100.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)"}, ""},
		{"bounce generated by the server", []string{
			t0.Format(time.Stamp) + " mx1 postfix/bounce[16]: 7F3A0C1D01: sender non-delivery notification: 7F3A0C2109",
			t0.Format(time.Stamp) + " mx1 postfix/qmgr[12]: 7F3A0C2109: from=<>, size=10, nrcpt=1 (queue active)",
			t0.Format(time.Stamp) + " mx1 postfix/smtp[14]: 7F3A0C2109: to=<someone@gmail.test>, relay=mx[198.51.100.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDetector(t, Config{})
			feed(t, d, tt.lines...)
			if got := keys(d.Findings()); got != tt.want {
				t.Errorf("findings:\n got  %s\n want %s", got, tt.want)
			}
		})
	}
}

func TestFindingCarriesEvidenceAndCounts(t *testing.T) {
	d := newDetector(t, Config{})
	var lines []string
	for i := 0; i < 10; i++ {
		lines = append(lines, msg(t0.Add(time.Duration(i)*time.Second), fmt.Sprintf("Q%04d", i), "203.0.113.5", "", "spam@bulk.example", "a@gmail.test", "b@yahoo.test", "c@example.org")...)
	}
	feed(t, d, lines...)
	fs := d.Findings()
	if len(fs) != 2 {
		t.Fatalf("findings %s", keys(fs))
	}
	f := fs[0]
	if f.Rule != RuleForeignToForeign || f.Count != 10 || f.Recipients != 20 {
		t.Errorf("%s count %d recipients %d, want foreign-to-foreign 10 20", f.Rule, f.Count, f.Recipients)
	}
	if !f.FirstSeen.Equal(t0) || !f.LastSeen.Equal(t0.Add(9*time.Second)) {
		t.Errorf("seen %v .. %v", f.FirstSeen, f.LastSeen)
	}
	if len(f.Evidence) < 3 || len(f.Evidence) > MaxEvidence || !strings.Contains(f.Evidence[0], "client=unknown[203.0.113.5]") {
		t.Errorf("evidence %q", f.Evidence)
	}
	if f.NextStep == "" || !strings.Contains(f.Summary, "mx1") {
		t.Errorf("summary %q next step %q", f.Summary, f.NextStep)
	}
	if st := d.Stats(); st.RelayedByStranger != 20 || st.Deliveries[DeliveryLocal][parsers.StatusSent] != 10 {
		t.Errorf("stats %+v", st)
	}
}

func TestMinRelayed(t *testing.T) {
	d := newDetector(t, Config{MinRelayed: 2})
	feed(t, d, msg(t0, "7F3A0C1D01", "203.0.113.5", "", "spam@bulk.example", "a@gmail.test")...)
	if fs := d.Findings(); len(fs) != 0 {
		t.Errorf("one message with --min-relayed 2: %s", keys(fs))
	}
	feed(t, d, msg(t0.Add(time.Second), "7F3A0C1D02", "203.0.113.5", "", "spam@bulk.example", "a@gmail.test")...)
	if fs := d.Findings(); len(fs) != 2 {
		t.Errorf("two messages with --min-relayed 2: %s", keys(fs))
	}
}

func TestLearnsLocalDomains(t *testing.T) {
	p, _ := NewPolicy(nil, DefaultTrustedNetworks, nil)
	d := newDetector(t, Config{Policy: p})
	// A local delivery teaches example.org; the next message from outside
	// to an example.org address delivered by smtp (a backend) is inbound.
	feed(t, d, msg(t0, "7F3A0C1D01", "203.0.113.5", "", "news@partner.test", "bob@example.org")...)
	feed(t, d,
		t0.Format(time.Stamp)+" mx1 postfix/smtpd[10]: 7F3A0C1D02: client=unknown[203.0.113.5]",
		t0.Format(time.Stamp)+" mx1 postfix/qmgr[12]: 7F3A0C1D02: from=<news@partner.test>, size=10, nrcpt=1 (queue active)",
		t0.Format(time.Stamp)+" mx1 postfix/smtp[14]: 7F3A0C1D02: to=<carol@example.org>, relay=backend[10.0.0.2]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
	)
	if got := strings.Join(d.Policy().LearnedLocalDomains(), ","); got != "example.org" {
		t.Errorf("learned %q", got)
	}
	if fs := d.Findings(); len(fs) != 0 {
		t.Errorf("findings %s", keys(fs))
	}
	if n := d.Stats().Deliveries[DeliveryInbound][parsers.StatusSent]; n != 1 {
		t.Errorf("inbound deliveries %d, want 1", n)
	}
}

func TestMemoryIsBounded(t *testing.T) {
	d := newDetector(t, Config{MaxMessages: 100, MessageTTL: time.Hour, MaxFindings: 10})
	p := postfix.New(parsers.Options{Year: 2026, Location: time.UTC})
	// 1,000 messages that are never removed, each from another stranger.
	for i := 0; i < 1000; i++ {
		ts := t0.Add(time.Duration(i) * time.Second).Format(time.Stamp)
		for _, l := range []string{
			fmt.Sprintf("%s mx1 postfix/smtpd[10]: M%05dXX: client=unknown[198.18.%d.%d]", ts, i, i/256, i%256),
			fmt.Sprintf("%s mx1 postfix/qmgr[12]: M%05dXX: from=<s%d@spam.example>, size=1, nrcpt=1 (queue active)", ts, i, i),
			fmt.Sprintf("%s mx1 postfix/smtp[14]: M%05dXX: to=<v%d@gmail.test>, relay=mx[198.51.100.1]:25, delay=1, delays=0/0/0/1, dsn=4.4.1, status=deferred (connect timed out)", ts, i, i),
		} {
			evs, _ := p.Parse(l, nil)
			d.Handle(&evs[0])
		}
	}
	st := d.Stats()
	if d.MessagesInFlight() > 100 || st.MessagesEvicted != 900 {
		t.Errorf("in flight %d, evicted %d", d.MessagesInFlight(), st.MessagesEvicted)
	}
	if len(d.Findings()) != 10 || st.FindingsEvicted != 1990 { // two rules per message
		t.Errorf("findings %d (cap 10), evicted %d", len(d.Findings()), st.FindingsEvicted)
	}
	// Hours later (the clock steps once enough lines agree) every
	// remembered message has expired.
	for i := 0; i < DefaultClockConfirm; i++ {
		feed(t, d, t0.Add(3*time.Hour).Format(time.Stamp)+" mx1 postfix/smtpd[10]: connect from unknown[192.0.2.1]")
	}
	if d.MessagesInFlight() != 0 || d.Stats().MessagesExpired != 100 {
		t.Errorf("after the TTL: in flight %d, expired %d", d.MessagesInFlight(), d.Stats().MessagesExpired)
	}
}

func TestNewRelayerWarnings(t *testing.T) {
	b := NewBaseline()
	d := newDetector(t, Config{WarnNewRelayers: true, Baseline: b, LearnPeriod: time.Hour})
	// During the learn period alice relays: learned silently.
	feed(t, d, msg(t0, "7F3A0C1D01", "203.0.113.5", "alice@example.org", "alice@example.org", "a@gmail.test")...)
	// After it, alice again (known) and bob (new), and a trusted host (new).
	later := t0.Add(2 * time.Hour)
	feed(t, d, msg(later, "7F3A0C1D02", "203.0.113.5", "alice@example.org", "alice@example.org", "a@gmail.test")...)
	feed(t, d, msg(later, "7F3A0C1D03", "203.0.113.6", "bob@example.org", "bob@example.org", "a@gmail.test")...)
	feed(t, d, msg(later, "7F3A0C1D04", "10.9.9.9", "", "app@example.org", "a@gmail.test", "b@gmail.test")...)
	got := keys(d.Findings())
	want := "unknown-relaying-client/client:10.9.9.9/warning/1 unknown-relaying-client/user:bob@example.org/warning/1"
	if got != want {
		t.Errorf("findings:\n got  %s\n want %s", got, want)
	}
	if len(b.Relayers) != 3 {
		t.Errorf("baseline relayers %v", b.Relayers)
	}
}

func TestBaselineFileRoundTrip(t *testing.T) {
	path := t.TempDir() + "/baseline.json"
	b, err := LoadBaseline(path)
	if err != nil || len(b.Relayers) != 0 {
		t.Fatalf("missing file: %v %v", b, err)
	}
	b.seen("user:alice", t0)
	b.MergeLocalDomains([]string{"example.org", "example.net"})
	if err := b.Save(path); err != nil {
		t.Fatal(err)
	}
	c, err := LoadBaseline(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Relayers["user:alice"] == nil || strings.Join(c.LocalDomains, ",") != "example.net,example.org" || !c.FirstEvent.Equal(t0) {
		t.Errorf("round trip: %+v", c)
	}
	if err := WriteFileAtomic(t.TempDir()+"/no/such/dir/x", []byte("x")); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

func TestPolicy(t *testing.T) {
	if _, err := NewPolicy(nil, []string{"10.0.0.0/33"}, nil); err == nil {
		t.Error("bad CIDR accepted")
	}
	if _, err := NewPolicy(nil, nil, []string{"not-an-ip"}); err == nil {
		t.Error("bad known client accepted")
	}
	if _, err := NewPolicy([]string{"user@example.org"}, nil, nil); err == nil {
		t.Error("address accepted as a domain")
	}
	p, err := NewPolicy([]string{"Example.org", ".corp.example"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]bool{"example.org": true, "mail.corp.example": true, "corp.example": false, "example.net": false, "": false} {
		if p.IsLocalDomain(d) != want {
			t.Errorf("IsLocalDomain(%q) = %v", d, !want)
		}
	}
	if Domain("User@Example.ORG") != "example.org" || Domain("root") != "" || Domain("a@b.example.") != "b.example" {
		t.Error("Domain")
	}
}
