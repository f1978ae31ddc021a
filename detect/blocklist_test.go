package detect

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/exim"
	"github.com/relaywatch/relaywatch/parsers/postfix"
)

// TestBlocklistReplies lists real receivers' replies with their sources.
// Addresses and hosts are as the sources show them.
func TestBlocklistReplies(t *testing.T) {
	var buf []byte
	for _, tc := range []struct{ reply, want, source string }{
		// ../shared/corpus/postfix/whyscream-postfix-grok-patterns.messages.log:112 (BSD-3-Clause)
		{"host gmail-smtp-in.l.google.com[2607:f8b0:400e:c04::1b] said: 550-5.7.1 [2607:4100:3:25:100::2      12] Our system has detected that this 550-5.7.1 message is likely unsolicited mail. To reduce the amount of spam sent 550-5.7.1 to Gmail, this message has been blocked.", "gmail", "corpus whyscream smtp_0018"},
		// ../shared/corpus/postfix/whyscream-postfix-grok-patterns.messages.log:117
		{"host gmail-smtp-in.l.google.com[74.125.136.26] said: 421-4.7.0 [1.2.3.4      15] Our system has detected an unusual rate of 421-4.7.0 unsolicited mail originating from your IP address. To protect our 421-4.7.0 users from spam, mail sent from your IP address has been temporarily 421-4.7.0 rate limited.", "gmail", "corpus whyscream smtp_0023"},
		// ../shared/corpus/sendmail/fail2ban-sendmail-reject.log:7-10 (GPL-2.0+): receivers' reject texts
		{"550 5.7.1 <joaofr@camilopinto.pt>... Rejected: 151.232.63.226 listed at sbl-xbl.spamhaus.org", "spamhaus", "corpus fail2ban sendmail-reject:7"},
		{"550 5.7.1 <user@host.com>... Rejected: IP in SpamCop blacklist, see: http://spamcop.net/bl.shtml?74.137.127.206", "spamcop", "corpus fail2ban sendmail-reject:8"},
		{"550 5.7.1 <user@host.com>... Rejected: IP in Barracuda RBL, see: http://www.barracudacentral.org/reputation?ip=203.229.186.250", "barracuda", "corpus fail2ban sendmail-reject:9"},
		// ../shared/corpus/exim/fail2ban-exim-spam.log:5
		{"rejected because 111.67.203.114 is in a black list at dnsbl.sorbs.net\\nCurrently Sending Spam See: http://www.sorbs.net/lookup.shtml?111.67.203.114", "sorbs", "corpus fail2ban exim-spam:5"},
		// Public bounces (pastebin, found with the search tool)
		{"said: 550 5.7.1 Service unavailable, Client host [192.250.xx.xx] blocked using Spamhaus. To request removal from this list see http://www.spamhaus.org/lookup.lasso (AS3130). [DB5EUR03FT043.eop-EUR03.prod.protection.outlook.com] (in reply to MAIL FROM command)", "spamhaus", "pastebin.com/3CLvGLEJ (Outlook.com)"},
		{"550 5.7.1 Unfortunately, messages from [88.198.83.90] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.", "microsoft", "pastebin.com/ExQUnA6B"},
		{"550 5.7.1 Unfortunately, messages from [217.72.192.73] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3140).", "microsoft", "pastebin.com/3Peq5x5F"},
		{"550 5.7.606 Access denied, banned sending IP [185.234.72.45]. To request removal from this list please visit https://sender.office.com/ and follow the directions.", "microsoft", "pastebin.com/EH1TUb0X; learn.microsoft.com Exchange Online NDR 5.7.606-649"},
		{"550 5.7.1 [103.253.212.47 1] Our system has detected an unusual rate of\\n550-5.7.1 unsolicited mail originating from your IP address. To protect our\\n550-5.7.1 users from spam, mail sent from your IP address has been blocked.", "gmail", "pastebin.com/6UPQYvjk (Exim, \\n-joined)"},
		{"SMTP error from remote mail server after pipelined MAIL FROM:<SENDER@senderdomain.com> SIZE=1758: 421 4.7.0 [TSS04] Messages from xxx.xxx.xxx.xxx temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.verizonmedia.com/error-codes", "yahoo", "support.cpanel.net 4403952239511 (Exim log)"},
		{"553 5.7.2 [TSS06] All messages from 82.165.159.44 will be permanently deferred; Retrying will NOT succeed.", "yahoo", "pastebin.com/G3eHHHMA"},
		{"554 Refused. Your IP address is listed in the RBL at b.barracudacentral.org (in reply to RCPT TO command)", "barracuda", "pastebin.com/FreqNBvG"},
		{"554 5.7.1 Service unavailable; Client host [46.255.225.252] blocked using zen.spamhaus.org; https://www.spamhaus.org/sbl/query/SBL468702", "spamhaus", "pastebin.com/rhrW1wqA"},
		{"550 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using dnsbl-1.uceprotect.net; IP 192.0.2.1 is UCEPROTECT-Level1 listed.", "uceprotect", "UCEPROTECT's documented reply form (uceprotect.net)"},
		{"554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using bl.spamcop.net", "spamcop", "corpus wazuh-ruleset-postfix.log:8 (postscreen form)"},
		{"550 5.7.1 Service unavailable; client [192.0.2.1] blocked using b.example-dnsbl.test", "other", "generic Postfix reject_rbl_client reply"},
		// Not blocklists.
		{"450 4.2.0 <whatever-user@lists.example.org>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/lists.example.org.html", "", "corpus sekoia postfix (greylisting)"},
		{"delivery temporarily suspended: lost connection with mta7.am0.yahoodns.net[98.136.216.22] while sending RCPT TO", "", "corpus kumina postfix_exporter"},
		{"554 5.2.0 mKr3jsd25ZIfXmKr4jFD2w Recipient Mailbox Full [504]", "", "corpus gvengel exim_exporter"},
		{"550 5.1.1 The email account that you tried to reach does not exist.", "", "Gmail unknown user"},
	} {
		got := ""
		if l := matchBlocklist(tc.reply, &buf); l != nil {
			got = l.id
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q: %s", tc.source, got, tc.want, tc.reply)
		}
	}
}

// deferred returns the Postfix lines of one message from an authenticated
// user to rcpt, deferred with reply, or sent when reply is "".
func deferred(at time.Time, qid, rcpt, reply string) []string {
	ts := at.Format(time.Stamp)
	status := "status=sent (250 2.0.0 Ok)"
	if reply != "" {
		status = "status=deferred (host mx." + Domain(rcpt) + "[198.51.100.1] said: " + reply + " (in reply to MAIL FROM command))"
	}
	return []string{
		ts + " mx1 postfix/smtpd[10]: " + qid + ": client=unknown[192.0.2.10], sasl_method=PLAIN, sasl_username=alice",
		ts + " mx1 postfix/qmgr[12]: " + qid + ": from=<alice@example.org>, size=10, nrcpt=1 (queue active)",
		ts + " mx1 postfix/smtp[14]: " + qid + ": to=<" + rcpt + ">, relay=mx." + Domain(rcpt) + "[198.51.100.1]:25, delay=1, delays=0/0/0/1, dsn=4.7.0, " + status,
	}
}

// retried returns the Postfix line of another attempt of qid's delivery to
// rcpt: deferred with reply again, or bounced with it when bounce is set.
func retried(at time.Time, qid, rcpt, reply string, bounce bool) string {
	status := "deferred"
	if bounce {
		status = "bounced"
	}
	return at.Format(time.Stamp) + " mx1 postfix/smtp[15]: " + qid + ": to=<" + rcpt + ">, relay=mx." + Domain(rcpt) + "[198.51.100.1]:25, delay=600, delays=599/0/0/1, dsn=4.7.0, status=" + status + " (host mx." + Domain(rcpt) + "[198.51.100.1] said: " + reply + " (in reply to RCPT TO command))"
}

func TestBlocklisted(t *testing.T) {
	spamhaus := "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.1"
	yahoo := "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes"
	for _, tc := range []struct {
		name  string
		lines func() []string
		want  string
	}{{
		name: "one receiver, one list, among much mail that goes through: warning",
		lines: func() []string {
			var l []string
			for i := 0; i < 40; i++ {
				l = append(l, deferred(t0.Add(time.Duration(i)*time.Minute), fmt.Sprintf("6A1B2C%04X", i), fmt.Sprintf("r%d@gmail.test", i), "")...)
			}
			return append(l, deferred(t0.Add(50*time.Minute), "6A1B2CFF01", "bob@small.test", spamhaus)...)
		},
		want: "blocklisted/spamhaus/warning/1",
	}, {
		name: "three receiving domains refuse: critical",
		lines: func() []string {
			var l []string
			for i, d := range []string{"a.test", "b.test", "c.test"} {
				l = append(l, deferred(t0.Add(time.Duration(i)*time.Minute), fmt.Sprintf("6A1B2D%04X", i), "x@"+d, spamhaus)...)
			}
			return l
		},
		want: "blocklisted/spamhaus/critical/3",
	}, {
		name: "a large share of one receiver's deliveries refused: critical",
		lines: func() []string {
			var l []string
			for i := 0; i < 12; i++ {
				l = append(l, deferred(t0.Add(time.Duration(i)*time.Minute), fmt.Sprintf("6A1B2E%04X", i), fmt.Sprintf("u%d@yahoo.test", i), yahoo)...)
			}
			return l
		},
		want: "blocklisted/yahoo/critical/12",
	}, {
		// Seen in the real-MTA lab (.ci/lab/realsamples): Postfix retries a
		// deferred delivery and logs the same refusal each time.
		name: "one delivery deferred and retried all hour, then bounced, among mail that goes through: one refusal, warning",
		lines: func() []string {
			var l []string
			for i := 0; i < 30; i++ {
				l = append(l, deferred(t0.Add(time.Duration(i)*time.Minute), fmt.Sprintf("6A1B30%04X", i), fmt.Sprintf("r%d@gmail.test", i), "")...)
			}
			l = append(l, deferred(t0, "6A1B31FF01", "bob@yahoo.test", yahoo)...)
			for i := 1; i < 12; i++ {
				l = append(l, retried(t0.Add(time.Duration(i)*4*time.Minute), "6A1B31FF01", "bob@yahoo.test", yahoo, i == 11))
			}
			return l
		},
		want: "blocklisted/yahoo/warning/1",
	}, {
		name: "greylisting and full mailboxes are not blocklists",
		lines: func() []string {
			return append(deferred(t0, "6A1B2F0001", "x@a.test", "450 4.2.0 <x@a.test>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/a.test.html"),
				deferred(t0, "6A1B2F0002", "x@b.test", "452 4.2.2 Mailbox full")...)
		},
		want: "",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDetector(t, Config{Advice: func(string) *parsers.Advice { return &postfix.Advice }})
			feed(t, d, tc.lines()...)
			fs := ruleFindings(d, RuleBlocklisted)
			if got := keys(fs); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for _, f := range fs {
				for _, want := range []string{"qshape", "https://"} {
					if !strings.Contains(f.NextStep, want) {
						t.Errorf("next step lacks %q: %s", want, f.NextStep)
					}
				}
				if !strings.Contains(f.Summary, "said: ") && !strings.Contains(f.Summary, "421 4.7.0 [TSS04]") && !strings.Contains(f.Summary, "spamhaus") {
					t.Errorf("summary does not quote the reply: %s", f.Summary)
				}
			}
		})
	}
}

// TestBlocklistedExim: Exim's defer line with a Gmail rate limit (the
// form support.cpanel.net and public bounces show).
func TestBlocklistedExim(t *testing.T) {
	d := newDetector(t, Config{Advice: func(string) *parsers.Advice { return &exim.Advice }})
	p := exim.New(parsers.Options{Location: time.UTC})
	for _, l := range []string{
		"2026-11-24 10:00:00 1gKmyS-0007A2-F0 <= jane@example.org H=(pc) [192.0.2.10] P=esmtpa A=plain:jane S=1000 id=x@y for janeasher499@gmail.test",
		`2026-11-24 10:00:04 1gKmyS-0007A2-F0 == janeasher499@gmail.test R=dnslookup T=remote_smtp defer (-46) H=alt4.gmail-smtp-in.l.google.com [173.194.209.27]:25: SMTP error from remote mail server after end of data: 421-4.7.0 [216.194.173.80 15] Our system has detected an unusual rate of\n421-4.7.0 unsolicited mail originating from your IP address.`,
	} {
		evs, _ := p.Parse(l, nil)
		for i := range evs {
			d.Handle(&evs[i])
		}
	}
	fs := ruleFindings(d, RuleBlocklisted)
	if got := keys(fs); got != "blocklisted/gmail/warning/1" {
		t.Fatalf("got %q", got)
	}
	if !strings.Contains(fs[0].NextStep, "exiqsumm") {
		t.Errorf("next step is not Exim's: %s", fs[0].NextStep)
	}
}
