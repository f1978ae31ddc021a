package detect

import (
	"fmt"
	"testing"
	"time"
)

func TestOneIncidentPerRelayingClient(t *testing.T) {
	d := newDetector(t, Config{})
	// Quiet history for "all": a trusted app sends a little every window.
	for w := 0; w < 3; w++ {
		feed(t, d, msg(t0.Add(time.Duration(w)*10*time.Minute), fmt.Sprintf("1A2B3C%02X01", w), "10.0.0.5", "", "app@example.org", "x@partner.test")...)
	}
	burst := t0.Add(30 * time.Minute)
	// The abuser: 30 messages to 3 recipients each, one recipient deferred
	// then sent, one bounced; the same recipient in every message.
	for i := 0; i < 30; i++ {
		qid := fmt.Sprintf("2B3C4D%04X", i)
		ts := burst.Add(time.Duration(i) * time.Second).Format(time.Stamp)
		feed(t, d,
			ts+" mx1 postfix/smtpd[10]: "+qid+": client=unknown[203.0.113.99]",
			ts+" mx1 postfix/qmgr[12]: "+qid+": from=<spam@bulk.example>, size=10, nrcpt=3 (queue active)",
			ts+" mx1 postfix/smtp[14]: "+qid+": to=<same@gmail.test>, relay=mx[198.51.100.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
			ts+" mx1 postfix/smtp[14]: "+qid+": to=<r"+fmt.Sprint(i)+"@yahoo.test>, relay=mx[198.51.100.2]:25, delay=1, delays=0/0/0/1, dsn=4.7.1, status=deferred (451 later)",
			ts+" mx1 postfix/smtp[14]: "+qid+": to=<r"+fmt.Sprint(i)+"@yahoo.test>, relay=mx[198.51.100.2]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
			ts+" mx1 postfix/smtp[14]: "+qid+": to=<b"+fmt.Sprint(i)+"@aol.test>, relay=mx[198.51.100.3]:25, delay=1, delays=0/0/0/1, dsn=5.1.1, status=bounced (550 no)",
		)
	}
	d.Flush()
	ins := d.Incidents()
	if len(ins) != 1 {
		t.Fatalf("%d incidents, want 1: %+v", len(ins), ins)
	}
	in := ins[0]
	if in.Client != "203.0.113.99" || in.Severity != SeverityCritical || in.Name != "unknown[203.0.113.99]" {
		t.Errorf("incident %s %s %q", in.Client, in.Severity, in.Name)
	}
	if in.Messages != 30 || in.Recipients != 61 || in.Attempts != (Attempts{Sent: 60, Deferred: 30, Bounced: 30}) {
		t.Errorf("messages %d, recipients %d, attempts %+v; want 30, 61, {60 30 30}", in.Messages, in.Recipients, in.Attempts)
	}
	got := map[string]bool{}
	for _, f := range in.Findings {
		got[f.Rule+"/"+f.Key] = true
	}
	for _, want := range []string{"foreign-to-foreign/203.0.113.99", "unknown-relaying-client/203.0.113.99", "outbound-spike/all", "outbound-spike/client:203.0.113.99", "outbound-spike/sender-domain:bulk.example"} {
		if !got[want] {
			t.Errorf("incident lacks %s; has %v", want, in.Findings)
		}
	}
	// The findings themselves stay, with their rule ids and severities.
	if n := len(d.Findings()); n != len(in.Findings) {
		t.Errorf("%d findings, %d in the incident", n, len(in.Findings))
	}
}

func TestSpikeOfTrustedTrafficIsNoIncident(t *testing.T) {
	d := newDetector(t, Config{})
	for w := 0; w < 3; w++ {
		feed(t, d, msg(t0.Add(time.Duration(w)*10*time.Minute), fmt.Sprintf("3C4D5E%02X01", w), "10.0.0.5", "", "app@example.org", "x@partner.test")...)
	}
	for i := 0; i < 60; i++ {
		feed(t, d, msg(t0.Add(30*time.Minute+time.Duration(i)*time.Second), fmt.Sprintf("4D5E6F%04X", i), "10.0.0.5", "", "app@example.org", "x@partner.test")...)
	}
	// One stranger relays a single message during the trusted spike.
	feed(t, d, msg(t0.Add(31*time.Minute), "5E6F7A0001", "203.0.113.98", "", "spam@bulk.example", "v@gmail.test")...)
	ins := d.Incidents()
	if len(ins) != 1 || ins[0].Client != "203.0.113.98" {
		t.Fatalf("incidents %+v, want the stranger's only", ins)
	}
	for _, f := range ins[0].Findings {
		if f.Rule == RuleOutboundSpike {
			t.Errorf("the trusted host's spike %s folded into the stranger's incident", f.Key)
		}
	}
	if ins[0].Messages != 1 || ins[0].Attempts.Sent != 1 || ins[0].Recipients != 1 {
		t.Errorf("counts %+v", ins[0])
	}
}
