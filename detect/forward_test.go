package detect

import (
	"testing"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/exim"
)

// forwarded returns the lines of a message from client with sender from to
// a local recipient that an alias rewrote into to (orig_to=<orig>).
func forwarded(at time.Time, qid, client, from, to, orig string) []string {
	ts := at.Format(time.Stamp)
	return []string{
		ts + " mx1 postfix/smtpd[10]: " + qid + ": client=unknown[" + client + "]",
		ts + " mx1 postfix/qmgr[12]: " + qid + ": from=<" + from + ">, size=10, nrcpt=1 (queue active)",
		ts + " mx1 postfix/smtp[14]: " + qid + ": to=<" + to + ">, orig_to=<" + orig + ">, relay=mx[198.51.100.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
		ts + " mx1 postfix/qmgr[12]: " + qid + ": removed",
	}
}

func TestForwardingIsNotRelaying(t *testing.T) {
	relayed := "foreign-to-foreign/203.0.113.40/critical/1 unknown-relaying-client/203.0.113.40/critical/1"
	trick := "foreign-to-foreign/203.0.113.40/critical/1 relay-trick-accepted/203.0.113.40/critical/1 unknown-relaying-client/203.0.113.40/critical/1"
	tests := []struct {
		name           string
		from, to, orig string
		want           string
		forwards       uint64
	}{
		{"virtual alias to an outside mailbox", "news@partner.test", "alice@gmail.test", "alice@example.org", "", 1},
		{"local alias without a domain", "news@partner.test", "alice@gmail.test", "alice", "", 1},
		{"forwarded null-sender bounce", "", "alice@gmail.test", "alice@example.org", "", 1},
		{"SRS-rewritten sender", "SRS0=HHH=TT=partner.test=news@example.org", "alice@gmail.test", "alice@example.org", "", 1},
		{"original recipient not local", "spam@bulk.example", "v@gmail.test", "v@victim.test", relayed, 0},
		{"percent hack in the original", "spam@bulk.example", "u@victim.test", "u%victim.test@example.org", trick, 0},
		{"bang path in the original", "spam@bulk.example", "u@victim.test", "victim.test!u@example.org", trick, 0},
		{"quoted local part hiding an @", "spam@bulk.example", "u@victim.test", `"u@victim.test"@example.org`, trick, 0},
		{"source route", "spam@bulk.example", "u@victim.test", "@example.org:u@victim.test", trick, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDetector(t, Config{})
			feed(t, d, forwarded(t0, "9A1B2C3D01", "203.0.113.40", tt.from, tt.to, tt.orig)...)
			d.Flush()
			if got := keys(d.Findings()); got != tt.want {
				t.Errorf("findings:\n got  %s\n want %s", got, tt.want)
			}
			if n := d.Stats().Deliveries[DeliveryForwarded][parsers.StatusSent]; n != tt.forwards {
				t.Errorf("forwarded deliveries %d, want %d", n, tt.forwards)
			}
		})
	}
}

func TestOpenRelayBehindSRSStaysCritical(t *testing.T) {
	// postsrsd rewrites every foreign sender, the abuser's too, to a local
	// address: foreign-to-foreign cannot see it, unknown-relaying-client must.
	d := newDetector(t, Config{})
	feed(t, d, msg(t0, "9A1B2C3D02", "203.0.113.41", "", "SRS0=HHH=TT=bulk.example=spam@example.org", "v@gmail.test")...)
	if got, want := keys(d.Findings()), "unknown-relaying-client/203.0.113.41/critical/1"; got != want {
		t.Errorf("findings %q, want %q", got, want)
	}
}

func TestForwardedVolumeSpikes(t *testing.T) {
	d := newDetector(t, Config{})
	n := 0
	send := func(at time.Time, count int) {
		for i := 0; i < count; i++ {
			n++
			feed(t, d, forwarded(at, "9B"+string(rune('A'+n/26%26))+string(rune('A'+n%26))+"1C2D3E", "203.0.113.42", "news@partner.test", "alice@gmail.test", "alice@example.org")...)
		}
	}
	send(t0, 1)
	send(t0.Add(10*time.Minute), 1)
	send(t0.Add(20*time.Minute), 60)
	var got []string
	for _, f := range d.Findings() {
		got = append(got, f.Rule+"/"+f.Key)
	}
	want := map[string]bool{"outbound-spike/forwarded": true, "outbound-spike/all": true}
	if len(got) != 2 || !want[got[0]] || !want[got[1]] {
		t.Errorf("findings %v, want outbound-spike on forwarded and all only", got)
	}
}

func TestEximRedirectIsAForward(t *testing.T) {
	d := newDetector(t, Config{})
	p := exim.New(parsers.Options{Location: time.UTC})
	for _, l := range []string{
		"2026-11-24 10:00:00 1rKxyz-000abc-AB <= news@partner.test H=mx.partner.test [203.0.113.50] P=esmtp S=1000",
		"2026-11-24 10:00:01 1rKxyz-000abc-AB => alice@gmail.test <alice@example.org> R=dnslookup T=remote_smtp H=gmail-smtp-in.l.google.test [198.51.100.9] C=\"250 OK\"",
		"2026-11-24 10:00:01 1rKxyz-000abc-AB Completed",
	} {
		evs, r := p.Parse(l, nil)
		if r != parsers.Parsed {
			t.Fatalf("%v: %s", r, l)
		}
		for i := range evs {
			d.Handle(&evs[i])
		}
	}
	if got := keys(d.Findings()); got != "" || d.Stats().Deliveries[DeliveryForwarded][parsers.StatusSent] != 1 {
		t.Errorf("findings %q, forwarded %d; want none, 1", got, d.Stats().Deliveries[DeliveryForwarded][parsers.StatusSent])
	}
}

func TestExchangeRedirectIsAForward(t *testing.T) {
	d := newDetector(t, Config{})
	evs := []parsers.Event{
		{Time: t0, Kind: parsers.KindAccept, Program: "MSGTRK", QueueID: "1234", ClientIP: "203.0.113.60", From: "news@partner.test", FromSet: true},
		{Time: t0, Kind: parsers.KindRedirect, Program: "MSGTRK", QueueID: "1234", To: "alice@gmail.test", OrigTo: "alice@example.org"},
		{Time: t0, Kind: parsers.KindDelivery, Program: "MSGTRK", QueueID: "1234", To: "alice@gmail.test", Status: parsers.StatusSent},
		{Time: t0, Kind: parsers.KindDelivery, Program: "MSGTRK", QueueID: "1234", To: "v@victim.test", Status: parsers.StatusSent},
	}
	for i := range evs {
		d.Handle(&evs[i])
	}
	if got, want := keys(d.Findings()), "foreign-to-foreign/203.0.113.60/critical/1 unknown-relaying-client/203.0.113.60/critical/1"; got != want {
		t.Errorf("findings %q, want %q (the redirected recipient is a forward, the other is relayed)", got, want)
	}
	if n := d.Stats().Deliveries[DeliveryForwarded][parsers.StatusSent]; n != 1 {
		t.Errorf("forwarded %d, want 1", n)
	}
}
