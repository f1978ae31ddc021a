package detect

import (
	"strings"
	"testing"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/exim"
	"github.com/relaywatch/relaywatch/parsers/postfix"
)

func TestRelayTrickForms(t *testing.T) {
	for _, tc := range []struct{ addr, form, target string }{
		{"user%victim.example@example.org", trickPercent, "victim.example"},
		{"user%Victim.Example@example.org", trickPercent, "victim.example"},
		{"@hop.example:user@victim.example", trickSourceRoute, "victim.example"},
		{"victim.example!user@example.org", trickBangPath, "victim.example"},
		{`"user@victim.example"@example.org`, trickQuoted, "victim.example"},
		{"user@victim.example", "", ""},
		{`"john doe"@example.org`, "", ""},
		{"root", "", ""},
		{"!user@example.org", "", ""},
		{"@nocolon.example", "", ""},
	} {
		form, target := relayTrick(tc.addr)
		if form != tc.form || target != tc.target {
			t.Errorf("%s: got %q %q, want %q %q", tc.addr, form, target, tc.form, tc.target)
		}
	}
}

func TestRelayTrickAccepted(t *testing.T) {
	ts := t0.Format(time.Stamp)
	pf := func(qid, client, user, to, orig, status string) []string {
		auth := ""
		if user != "" {
			auth = ", sasl_method=PLAIN, sasl_username=" + user
		}
		o := ""
		if orig != "" {
			o = ", orig_to=<" + orig + ">"
		}
		return []string{
			ts + " mx1 postfix/smtpd[10]: " + qid + ": client=unknown[" + client + "]" + auth,
			ts + " mx1 postfix/qmgr[12]: " + qid + ": from=<x@spam.example>, size=10, nrcpt=1 (queue active)",
			ts + " mx1 postfix/smtp[14]: " + qid + ": to=<" + to + ">" + o + ", relay=mx.victim.example[198.51.100.1]:25, delay=0.2, delays=0/0/0.1/0.1, dsn=2.0.0, status=" + status + " (250 2.0.0 Ok)",
		}
	}
	for _, tc := range []struct {
		name  string
		lines []string
		exim  bool
		want  string
		sum   string
	}{{
		name:  "Postfix allow_percent_hack: delivered to the victim",
		lines: pf("5A1B2C3D01", "203.0.113.9", "", "u@victim.example", "u%victim.example@example.org", "sent"),
		want:  "relay-trick-accepted/203.0.113.9/critical/1",
		sum:   "percent hack, first u%victim.example@example.org",
	}, {
		name:  "accepted, then deferred: still critical",
		lines: pf("5A1B2C3D02", "203.0.113.9", "", "u@victim.example", "u%victim.example@example.org", "deferred"),
		want:  "relay-trick-accepted/203.0.113.9/critical/1",
	}, {
		name:  "an authenticated user's percent address is not a finding",
		lines: pf("5A1B2C3D03", "203.0.113.9", "alice", "u@victim.example", "u%victim.example@example.org", "sent"),
		want:  "",
	}, {
		name:  "an ordinary forward is not a trick",
		lines: pf("5A1B2C3D04", "203.0.113.9", "", "alice@gmail.test", "alice@example.org", "sent"),
		want:  "",
	}, {
		name: "Exim percent_hack_domains (lab log): accepted, bounced unrouteable",
		exim: true,
		lines: []string{
			"2026-11-24 09:06:34 1xVmTy-0005FJ-12 <= winner474@winner-notice.example H=([127.0.0.77]) [127.0.0.77] P=esmtp S=3373 id=20261124090634.020162@vm for john2290@outlook.test kim1848%gmail.test@example.org",
			"2026-11-24 09:06:34 1xVmTy-0005FJ-12 ** kim1848@gmail.test <kim1848%gmail.test@example.org> F=<winner474@winner-notice.example>: Unrouteable address",
		},
		want: "relay-trick-accepted/127.0.0.77/critical/1",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var p parsers.Parser = postfix.New(parsers.Options{Year: 2026, Location: time.UTC})
			adv := &postfix.Advice
			if tc.exim {
				p, adv = exim.New(parsers.Options{Location: time.UTC}), &exim.Advice
			}
			cfg := Config{Advice: func(string) *parsers.Advice { return adv }}
			if tc.exim {
				// The lab trusts only 127.0.0.1 (README).
				pol, err := NewPolicy([]string{"example.org"}, []string{"127.0.0.1/32"}, nil)
				if err != nil {
					t.Fatal(err)
				}
				cfg.Policy = pol
			}
			d := newDetector(t, cfg)
			for _, l := range tc.lines {
				evs, r := p.Parse(l, nil)
				if r != parsers.Parsed {
					t.Fatalf("%v: %s", r, l)
				}
				for i := range evs {
					d.Handle(&evs[i])
				}
			}
			fs := ruleFindings(d, RuleRelayTrick)
			if got := keys(fs); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if len(fs) == 0 {
				return
			}
			if tc.sum != "" && !strings.Contains(fs[0].Summary, tc.sum) {
				t.Errorf("summary %q lacks %q", fs[0].Summary, tc.sum)
			}
			if want := map[bool]string{false: "allow_percent_hack", true: "percent_hack_domains"}[tc.exim]; !strings.Contains(fs[0].NextStep, want) {
				t.Errorf("next step lacks %q: %s", want, fs[0].NextStep)
			}
		})
	}
}
