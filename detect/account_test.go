package detect

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/postfix"
)

// accountFeeder sends an authenticated user's messages straight to a
// detector as events.
type accountFeeder struct {
	d   *Detector
	seq int
}

// hour sends n single-recipient messages from user, logged in from
// clients (round robin), to domains (round robin), over the hour at start.
func (f *accountFeeder) hour(start time.Time, user string, n int, clients, domains []string) {
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * time.Hour / time.Duration(n))
		f.seq++
		qid := fmt.Sprintf("%010X", f.seq)
		events := []parsers.Event{
			{Time: at, Host: "mx1", Program: "postfix/submission/smtpd", Kind: parsers.KindAccept, QueueID: qid, ClientIP: clients[i%len(clients)], ClientName: "unknown", AuthUser: user},
			{Time: at, Host: "mx1", Program: "postfix/qmgr", Kind: parsers.KindQueued, QueueID: qid, From: user + "@example.org", FromSet: true},
			{Time: at, Host: "mx1", Program: "postfix/smtp", Kind: parsers.KindDelivery, QueueID: qid, To: fmt.Sprintf("r%d@%s", f.seq, domains[i%len(domains)]), Status: parsers.StatusSent, Relay: "mx[198.51.100.1]:25", Line: "delivery " + qid},
			{Time: at, Host: "mx1", Program: "postfix/qmgr", Kind: parsers.KindRemoved, QueueID: qid},
		}
		for i := range events {
			f.d.Handle(&events[i])
		}
	}
}

func domainsN(n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, fmt.Sprintf("d%d.test", i))
	}
	return out
}

func authFailures(t *testing.T, d *Detector, at time.Time, user string, n int) {
	var lines []string
	for i := 0; i < n; i++ {
		lines = append(lines, fmt.Sprintf("%s mx1 postfix/submission/smtpd[20]: warning: unknown[203.0.113.%d]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=%s", at.Add(time.Duration(i)*time.Second).Format(time.Stamp), 50+i, user))
	}
	feed(t, d, lines...)
}

func TestCompromisedAccount(t *testing.T) {
	home := []string{"192.0.2.10"}
	usual := []string{"gmail.test", "example.net", "partner.test"}
	for _, tc := range []struct {
		name string
		cfg  AccountConfig
		base *Baseline
		run  func(t *testing.T, d *Detector, f *accountFeeder)
		want string
		sum  string
	}{{
		name: "a steady user is never flagged, whatever its failed logins",
		run: func(t *testing.T, d *Detector, f *accountFeeder) {
			authFailures(t, d, t0, "alice", 3)
			for h := 0; h < 48; h++ {
				f.hour(t0.Add(time.Duration(h)*time.Hour), "alice", 20+h%3*10, home, usual)
			}
		},
		want: "",
	}, {
		name: "volume and recipient domains jump: warning",
		run: func(t *testing.T, d *Detector, f *accountFeeder) {
			for h := 0; h < 24; h++ {
				f.hour(t0.Add(time.Duration(h)*time.Hour), "alice", 20, home, usual)
			}
			f.hour(t0.Add(24*time.Hour), "alice", 400, home, domainsN(120))
		},
		want: "compromised-account/user:alice/warning/400",
		sum:  "400 outbound deliveries (baseline 20.0), 120 recipient domains",
	}, {
		name: "the jump after a burst of failed logins: critical",
		run: func(t *testing.T, d *Detector, f *accountFeeder) {
			for h := 0; h < 24; h++ {
				f.hour(t0.Add(time.Duration(h)*time.Hour), "alice", 20, home, usual)
			}
			authFailures(t, d, t0.Add(23*time.Hour+50*time.Minute), "alice", 8)
			f.hour(t0.Add(24*time.Hour), "alice", 400, home, domainsN(120))
		},
		want: "compromised-account/user:alice/critical/400",
		sum:  "after a burst of 8 failed logins",
	}, {
		name: "guessing all day long (two an hour) is no burst: the jump stays a warning",
		run: func(t *testing.T, d *Detector, f *accountFeeder) {
			for h := 0; h < 24; h++ {
				authFailures(t, d, t0.Add(time.Duration(h)*time.Hour+time.Minute), "alice", 1)
				authFailures(t, d, t0.Add(time.Duration(h)*time.Hour+31*time.Minute), "alice", 1)
				f.hour(t0.Add(time.Duration(h)*time.Hour), "alice", 20, home, usual)
			}
			f.hour(t0.Add(24*time.Hour), "alice", 400, home, domainsN(120))
		},
		want: "compromised-account/user:alice/warning/400",
	}, {
		name: "logins from many networks: warning",
		run: func(t *testing.T, d *Detector, f *accountFeeder) {
			for h := 0; h < 24; h++ {
				f.hour(t0.Add(time.Duration(h)*time.Hour), "alice", 20, home, usual)
			}
			f.hour(t0.Add(24*time.Hour), "alice", 20, []string{"198.51.100.1", "203.0.113.1", "192.0.2.200", "100.64.1.1", "2001:db8:1::1", "2001:db8:1::2"}, usual)
		},
		want: "compromised-account/user:alice/warning/20",
		sum:  "logins from 5 networks",
	}, {
		name: "a placeholder for an unnamed login is not a user",
		run: func(t *testing.T, d *Detector, f *accountFeeder) {
			for h := 0; h < 24; h++ {
				f.hour(t0.Add(time.Duration(h)*time.Hour), "(authenticated)", 20, home, usual)
			}
			f.hour(t0.Add(24*time.Hour), "(authenticated)", 400, home, domainsN(120))
		},
		want: "",
	}, {
		name: "a busy sender at the start of a batch is not a jump",
		run: func(t *testing.T, d *Detector, f *accountFeeder) {
			for h := 0; h < 3; h++ {
				f.hour(t0.Add(time.Duration(h)*time.Hour), "newsletter", 500, home, domainsN(200))
			}
		},
		want: "",
	}, {
		name: "the baseline file knows a busy user",
		base: &Baseline{Version: 1, Relayers: map[string]*RelayerRecord{}, Accounts: map[string]*AccountRecord{
			"alice": {Mean: AccountMeasures{Outbound: 300, Domains: 100, Networks: 1}, Windows: 100},
		}},
		run: func(t *testing.T, d *Detector, f *accountFeeder) {
			f.hour(t0, "alice", 1, home, usual)
			f.hour(t0.Add(time.Hour), "alice", 400, home, domainsN(120))
		},
		want: "",
	}, {
		name: "bounded: users beyond MaxUsers are forgotten, and a forgotten user starts over",
		cfg:  AccountConfig{MaxUsers: 2},
		run: func(t *testing.T, d *Detector, f *accountFeeder) {
			for i := 0; i < 50; i++ {
				authFailures(t, d, t0, fmt.Sprintf("guess%d", i), 1)
			}
			if n := d.account.users.len(); n != 2 {
				t.Errorf("%d users kept, want 2", n)
			}
		},
		want: "",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDetector(t, Config{Account: tc.cfg, Baseline: tc.base, Advice: func(string) *parsers.Advice { return &postfix.Advice }})
			f := &accountFeeder{d: d}
			tc.run(t, d, f)
			fs := ruleFindings(d, RuleCompromisedAccount)
			if got := keys(fs); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if len(fs) == 0 {
				return
			}
			if !strings.Contains(fs[0].Summary, tc.sum) {
				t.Errorf("summary %q lacks %q", fs[0].Summary, tc.sum)
			}
			if !strings.Contains(fs[0].NextStep, "Lock the account alice") || !strings.Contains(fs[0].NextStep, "alice@example.org") {
				t.Errorf("next step: %s", fs[0].NextStep)
			}
			if fs[0].Severity == SeverityCritical && !strings.Contains(fs[0].Evidence[0], "authentication failed") {
				t.Errorf("critical evidence lacks the failed login: %q", fs[0].Evidence)
			}
		})
	}
}

func TestAccountBaselineSaved(t *testing.T) {
	b := NewBaseline()
	d := newDetector(t, Config{Baseline: b})
	f := &accountFeeder{d: d}
	for h := 0; h < 5; h++ {
		f.hour(t0.Add(time.Duration(h)*time.Hour), "alice", 20, []string{"192.0.2.10"}, []string{"gmail.test"})
	}
	r, ok := b.Accounts["alice"]
	if !ok || r.Windows != 4 || r.Mean.Outbound != 20 {
		t.Fatalf("baseline record %+v", r)
	}
}
