package detect

import (
	"strings"
	"testing"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
)

// filterFlow returns the lines of a message from client (SASL user when
// given) to rcpt that goes out through a content filter on 127.0.0.1:10024
// and comes back through a re-injection smtpd on 10025, by name: the parent's
// arrival, the hop, the copy's arrival (plain, with orig_queue_id, or named by
// amavis), the copy's delivery. Tests put them in the orders real logs show.
func filterFlow(client, user, from, rcpt string) map[string]string {
	ts := t0.Format(time.Stamp)
	auth := ""
	if user != "" {
		auth = ", sasl_method=PLAIN, sasl_username=" + user
	}
	agent := "postfix/smtp[14]: 5B2C1D0E02: to=<" + rcpt + ">, relay=mx.x[198.51.100.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)"
	if strings.HasSuffix(rcpt, "@example.org") {
		agent = "postfix/virtual[13]: 5B2C1D0E02: to=<" + rcpt + ">, relay=virtual, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (delivered to maildir)"
	}
	return map[string]string{
		"client":      ts + " mx1 postfix/smtpd[10]: 5B2C1D0E01: client=unknown[" + client + "]" + auth,
		"qmgr":        ts + " mx1 postfix/qmgr[12]: 5B2C1D0E01: from=<" + from + ">, size=10, nrcpt=1 (queue active)",
		"hop":         ts + " mx1 postfix/smtp[15]: 5B2C1D0E01: to=<" + rcpt + ">, relay=127.0.0.1[127.0.0.1]:10024, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 5B2C1D0E02)",
		"hop-late":    t0.Add(3*time.Minute).Format(time.Stamp) + " mx1 postfix/smtp[15]: 5B2C1D0E01: to=<" + rcpt + ">, relay=127.0.0.1[127.0.0.1]:10024, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 5B2C1D0E02)",
		"removed":     ts + " mx1 postfix/qmgr[12]: 5B2C1D0E01: removed",
		"copy":        ts + " mx1 postfix/10025/smtpd[20]: 5B2C1D0E02: client=localhost[127.0.0.1]",
		"copy-xfwd":   ts + " mx1 postfix/10025/smtpd[20]: 5B2C1D0E02: client=localhost[127.0.0.1], orig_queue_id=5B2C1D0E01, orig_client=unknown[" + client + "]",
		"copy-qmgr":   ts + " mx1 postfix/qmgr[12]: 5B2C1D0E02: from=<" + from + ">, size=12, nrcpt=1 (queue active)",
		"copy-agent":  ts + " mx1 " + agent,
		"copy-remove": ts + " mx1 postfix/qmgr[12]: 5B2C1D0E02: removed",
		"amavis":      ts + " mx1 amavis[2345]: (02345-01) Passed CLEAN {RelayedOutbound}, [" + client + "]:41695 [" + client + "] <" + from + "> -> <" + rcpt + ">, Queue-ID: 5B2C1D0E01, Message-ID: <x@y>, mail_id: abc, Hits: -1, size: 10, queued_as: 5B2C1D0E02, 120 ms",
	}
}

func TestContentFilterInAnyOrder(t *testing.T) {
	orders := map[string][]string{
		"hop before the copy":               {"client", "qmgr", "hop", "removed", "copy", "copy-qmgr", "copy-agent", "copy-remove"},
		"copy delivered before the hop":     {"client", "qmgr", "copy", "copy-qmgr", "copy-agent", "copy-remove", "hop", "removed"},
		"copy names its parent (XFORWARD)":  {"client", "qmgr", "copy-xfwd", "copy-qmgr", "copy-agent", "copy-remove", "hop", "removed"},
		"amavis names the copy, then hop":   {"client", "qmgr", "copy", "copy-qmgr", "copy-agent", "copy-remove", "amavis", "hop", "removed"},
		"amavis before the copy's delivery": {"client", "qmgr", "copy", "copy-qmgr", "amavis", "copy-agent", "hop", "removed", "copy-remove"},
		"hop logged minutes after the copy": {"client", "qmgr", "copy", "copy-qmgr", "copy-agent", "copy-remove", "hop-late", "removed"},
	}
	tests := []struct {
		name               string
		client, user, from string
		rcpt               string
		want               string
	}{
		{"open relay behind the filter", "203.0.113.7", "", "spam@bulk.example", "v@gmail.test",
			"foreign-to-foreign/203.0.113.7/critical/1 unknown-relaying-client/203.0.113.7/critical/1"},
		{"authenticated user behind the filter", "203.0.113.8", "alice@example.org", "alice@example.org", "v@gmail.test", ""},
		{"inbound through the filter", "203.0.113.9", "", "news@partner.test", "bob@example.org", ""},
	}
	for _, tt := range tests {
		for oname, order := range orders {
			t.Run(tt.name+"/"+oname, func(t *testing.T) {
				d := newDetector(t, Config{})
				fl := filterFlow(tt.client, tt.user, tt.from, tt.rcpt)
				var lines []string
				for _, k := range order {
					lines = append(lines, fl[k])
				}
				feed(t, d, lines...)
				d.Flush()
				if got := keys(d.Findings()); got != tt.want {
					t.Errorf("findings:\n got  %s\n want %s", got, tt.want)
				}
				st := d.Stats()
				if st.Deliveries[DeliveryHop][parsers.StatusSent] != 1 || st.HopsUnconfirmed != 0 || st.ParentNeverSeen != 0 {
					t.Errorf("hops %d, unconfirmed %d, parent never seen %d; want 1, 0, 0",
						st.Deliveries[DeliveryHop][parsers.StatusSent], st.HopsUnconfirmed, st.ParentNeverSeen)
				}
			})
		}
	}
}

func TestHeldCopyJudgedWhenParentNeverShows(t *testing.T) {
	ts := t0.Format(time.Stamp)
	later := t0.Add(11 * time.Minute).Format(time.Stamp)
	d := newDetector(t, Config{})
	feed(t, d,
		ts+" mx1 postfix/smtpd[10]: 6C1D2E3F01: client=localhost[127.0.0.1]",
		ts+" mx1 postfix/qmgr[12]: 6C1D2E3F01: from=<www@example.org>, size=10, nrcpt=1 (queue active)",
		ts+" mx1 postfix/smtp[14]: 6C1D2E3F01: to=<a@gmail.test>, relay=mx[198.51.100.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
		ts+" mx1 postfix/qmgr[12]: 6C1D2E3F01: removed",
	)
	if n := d.Stats().Deliveries[DeliveryOutbound][parsers.StatusSent]; n != 0 {
		t.Fatalf("outbound %d before the hold window passed, want 0 (held)", n)
	}
	// Later lines move event time past the hold window (in steps within
	// the clock window: one line far ahead alone would not move it).
	feed(t, d, t0.Add(6*time.Minute).Format(time.Stamp)+" mx1 postfix/smtpd[10]: connect from unknown[198.51.100.8]",
		later+" mx1 postfix/smtpd[10]: connect from unknown[198.51.100.9]")
	st := d.Stats()
	if st.Deliveries[DeliveryOutbound][parsers.StatusSent] != 1 || st.ParentNeverSeen != 1 || len(d.Findings()) != 0 {
		t.Errorf("outbound %d, parent never seen %d, findings %v; want 1, 1, none",
			st.Deliveries[DeliveryOutbound][parsers.StatusSent], st.ParentNeverSeen, keys(d.Findings()))
	}
}

// TestLoopbackLoginIsJudgedAtOnce: webmail on the mail host submits through
// loopback with the user's SASL login; that is never a content filter's
// re-injection (XFORWARD carries no login), so its deliveries are judged at
// once: a stolen account's mail through webmail is not held for the hold
// window.
func TestLoopbackLoginIsJudgedAtOnce(t *testing.T) {
	ts := t0.Format(time.Stamp)
	d := newDetector(t, Config{})
	feed(t, d,
		ts+" mx1 postfix/smtpd[10]: 7D1E2F3A01: client=localhost[127.0.0.1], sasl_method=LOGIN, sasl_username=alice@example.org",
		ts+" mx1 postfix/qmgr[12]: 7D1E2F3A01: from=<alice@example.org>, size=10, nrcpt=1 (queue active)",
		ts+" mx1 postfix/smtp[14]: 7D1E2F3A01: to=<a@gmail.test>, relay=mx[198.51.100.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
	)
	st := d.Stats()
	if n := st.Deliveries[DeliveryOutbound][parsers.StatusSent]; n != 1 || d.heldCount != 0 {
		t.Errorf("outbound %d, held %d; want the delivery judged at once", n, d.heldCount)
	}
}

func TestLoopbackQueuedAsWithoutCopyIsOutbound(t *testing.T) {
	// A relay host reached through a local stunnel answers "queued as" like
	// a content filter, but its id never shows up here.
	ts := t0.Format(time.Stamp)
	d := newDetector(t, Config{})
	feed(t, d,
		ts+" mx1 postfix/smtpd[10]: 7D2E3F4A01: client=unknown[203.0.113.20]",
		ts+" mx1 postfix/qmgr[12]: 7D2E3F4A01: from=<spam@bulk.example>, size=10, nrcpt=1 (queue active)",
		ts+" mx1 postfix/smtp[14]: 7D2E3F4A01: to=<a@gmail.test>, relay=127.0.0.1[127.0.0.1]:11125, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 9F8E7D6C5B)",
		ts+" mx1 postfix/qmgr[12]: 7D2E3F4A01: removed",
	)
	d.Flush()
	st := d.Stats()
	want := "foreign-to-foreign/203.0.113.20/critical/1 unknown-relaying-client/203.0.113.20/critical/1"
	if got := keys(d.Findings()); got != want || st.HopsUnconfirmed != 1 || st.Deliveries[DeliveryHop][parsers.StatusSent] != 0 {
		t.Errorf("findings %q, unconfirmed %d, hops %d; want %q, 1, 0", got, st.HopsUnconfirmed, st.Deliveries[DeliveryHop][parsers.StatusSent], want)
	}
}

func TestLocalForwardedAsIsAForward(t *testing.T) {
	ts := t0.Format(time.Stamp)
	for _, origTo := range []string{", orig_to=<alice@example.org>", ""} {
		d := newDetector(t, Config{})
		feed(t, d,
			ts+" mx1 postfix/smtpd[10]: 8E3F4A5B01: client=unknown[203.0.113.30]",
			ts+" mx1 postfix/qmgr[12]: 8E3F4A5B01: from=<news@partner.test>, size=10, nrcpt=1 (queue active)",
			ts+" mx1 postfix/cleanup[11]: 8E3F4A5B02: message-id=<n@partner.test>",
			ts+" mx1 postfix/local[16]: 8E3F4A5B01: to=<alice@example.org>, relay=local, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (forwarded as 8E3F4A5B02)",
			ts+" mx1 postfix/qmgr[12]: 8E3F4A5B02: from=<news@partner.test>, size=12, nrcpt=1 (queue active)",
			ts+" mx1 postfix/smtp[14]: 8E3F4A5B02: to=<alice@gmail.test>"+origTo+", relay=mx[198.51.100.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
		)
		d.Flush()
		st := d.Stats()
		if got := keys(d.Findings()); got != "" || st.Deliveries[DeliveryForwarded][parsers.StatusSent] != 1 {
			t.Errorf("orig_to %q: findings %q, forwarded %d; want none, 1", origTo, got, st.Deliveries[DeliveryForwarded][parsers.StatusSent])
		}
	}
}

// TestAliasExpandedBeforeTheFilter: when the alias is expanded before the
// content filter, only the hop line shows orig_to; the copy's delivery to
// the outside address is still a forward, in either order.
func TestAliasExpandedBeforeTheFilter(t *testing.T) {
	ts := t0.Format(time.Stamp)
	parent := []string{
		ts + " mx1 postfix/smtpd[10]: 1F2E3D4C01: client=unknown[203.0.113.77]",
		ts + " mx1 postfix/qmgr[12]: 1F2E3D4C01: from=<news@partner.test>, size=10, nrcpt=1 (queue active)",
	}
	hop := ts + " mx1 postfix/smtp[15]: 1F2E3D4C01: to=<carol@gmail.test>, orig_to=<fwd@example.org>, relay=127.0.0.1[127.0.0.1]:10024, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 1F2E3D4C02)"
	copyLines := []string{
		ts + " mx1 postfix/10025/smtpd[20]: 1F2E3D4C02: client=localhost[127.0.0.1]",
		ts + " mx1 postfix/qmgr[12]: 1F2E3D4C02: from=<news@partner.test>, size=12, nrcpt=1 (queue active)",
		ts + " mx1 postfix/smtp[14]: 1F2E3D4C02: to=<carol@gmail.test>, relay=mx[198.51.100.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
	}
	for name, lines := range map[string][]string{
		"hop first":  append(append(append([]string{}, parent...), hop), copyLines...),
		"copy first": append(append(append([]string{}, parent...), copyLines...), hop),
	} {
		d := newDetector(t, Config{})
		feed(t, d, lines...)
		d.Flush()
		if got := keys(d.Findings()); got != "" || d.Stats().Deliveries[DeliveryForwarded][parsers.StatusSent] != 1 {
			t.Errorf("%s: findings %q, forwarded %d; want none, 1", name, got, d.Stats().Deliveries[DeliveryForwarded][parsers.StatusSent])
		}
	}
}
