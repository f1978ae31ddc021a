package detect

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/postfix"
)

// refusal is Postfix's line for a recipient refused because client may not relay.
func refusal(at time.Time, client, rcpt string) string {
	return fmt.Sprintf("%s mx1 postfix/smtpd[10]: NOQUEUE: reject: RCPT from unknown[%s]: 554 5.7.1 <%s>: Relay access denied; from=<probe@bulk.example> to=<%s> proto=ESMTP helo=<bulk-sender.example>", at.Format(time.Stamp), client, rcpt, rcpt)
}

func ruleFindings(d *Detector, rule string) []Finding {
	var out []Finding
	for _, f := range d.Findings() {
		if f.Rule == rule {
			out = append(out, f)
		}
	}
	return out
}

func TestRelayProbing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   ProbingConfig
		lines func() []string
		want  string // rule/key/severity/count of the relay-probing findings
		sum   string // in the first finding's summary
	}{{
		name: "refused only: info with attempts and distinct clients",
		lines: func() []string {
			return []string{
				refusal(t0, "203.0.113.1", "a@gmail.test"),
				refusal(t0.Add(time.Minute), "203.0.113.1", "b@gmail.test"),
				refusal(t0.Add(2*time.Minute), "203.0.113.2", "a@gmail.test"),
				refusal(t0.Add(3*time.Minute), "198.51.100.7", "c@yahoo.test"),
				refusal(t0.Add(4*time.Minute), "203.0.113.2", "d@gmail.test"),
			}
		},
		want: "relay-probing/all/info/5",
		sum:  "5 relay attempts from 3 distinct clients",
	}, {
		name: "a prober later accepted for a foreign recipient: critical",
		lines: func() []string {
			return append([]string{
				refusal(t0, "203.0.113.1", "a@gmail.test"),
				refusal(t0.Add(time.Minute), "203.0.113.9", "a@gmail.test"),
			}, msg(t0.Add(time.Hour), "4A1B2C3D01", "203.0.113.1", "", "x@spam.example", "v1@gmail.test", "v2@gmail.test")...)
		},
		want: "relay-probing/203.0.113.1/critical/1 relay-probing/all/info/2",
		sum:  "was refused relaying (1 attempts), and now mx1 accepted it",
	}, {
		name: "refused, then authenticated (a mail client set up without auth first): no critical",
		lines: func() []string {
			return append([]string{refusal(t0, "203.0.113.1", "a@gmail.test")},
				msg(t0.Add(time.Minute), "4A1B2C3D02", "203.0.113.1", "alice", "alice@example.org", "bob@gmail.test")...)
		},
		want: "relay-probing/all/info/1",
	}, {
		name: "accepted after the window: no critical from this rule",
		cfg:  ProbingConfig{Window: time.Hour},
		lines: func() []string {
			return append([]string{refusal(t0, "203.0.113.1", "a@gmail.test")},
				msg(t0.Add(2*time.Hour), "4A1B2C3D03", "203.0.113.1", "", "x@spam.example", "v1@gmail.test")...)
		},
		want: "relay-probing/all/info/1",
	}, {
		name: "bounded: the least recently seen prober is forgotten",
		cfg:  ProbingConfig{MaxClients: 2},
		lines: func() []string {
			return append([]string{
				refusal(t0, "203.0.113.1", "a@gmail.test"),
				refusal(t0.Add(time.Minute), "203.0.113.2", "a@gmail.test"),
				refusal(t0.Add(2*time.Minute), "203.0.113.3", "a@gmail.test"),
			}, msg(t0.Add(time.Hour), "4A1B2C3D04", "203.0.113.1", "", "x@spam.example", "v1@gmail.test")...)
		},
		want: "relay-probing/all/info/3",
	}, {
		name: "a trusted client's delivery is never critical",
		lines: func() []string {
			return append([]string{refusal(t0, "10.0.0.5", "a@gmail.test")},
				msg(t0.Add(time.Minute), "4A1B2C3D05", "10.0.0.5", "", "app@example.org", "v1@gmail.test")...)
		},
		want: "relay-probing/all/info/1",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDetector(t, Config{Probing: tc.cfg, Advice: func(string) *parsers.Advice { return &postfix.Advice }})
			feed(t, d, tc.lines()...)
			fs := ruleFindings(d, RuleRelayProbing)
			if got := keys(fs); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
			if tc.sum != "" && !strings.Contains(fs[0].Summary, tc.sum) {
				t.Errorf("summary %q lacks %q", fs[0].Summary, tc.sum)
			}
			for _, f := range fs {
				if f.NextStep == "" || !strings.Contains(f.NextStep, "smtpd_relay_restrictions") {
					t.Errorf("%s/%s: next step is not Postfix's: %q", f.Rule, f.Key, f.NextStep)
				}
				if f.Severity == SeverityCritical && !strings.Contains(f.Evidence[0], "Relay access denied") {
					t.Errorf("critical evidence does not start with the refusal: %q", f.Evidence)
				}
			}
		})
	}
}

func TestProbingConfigErrors(t *testing.T) {
	for _, c := range []ProbingConfig{{Window: time.Second}, {MaxClients: -1}} {
		if _, err := New(Config{Probing: c}); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}
