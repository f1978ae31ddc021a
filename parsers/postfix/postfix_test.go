package postfix

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/parsertest"
	"github.com/relaywatch/relaywatch/parsers/syslog"
)

var update = flag.Bool("update", false, "rewrite golden files")

// builtLines cover shapes the real corpus lacks (see the shared corpus's
// SOURCES.md, "Variants with no real example found"). They are built from
// Postfix's documented log formats, not copied from a log.
var builtLines = []struct {
	name, line string
	want       string
}{
	{
		name: "rfc5424 header",
		line: "<22>1 2026-11-24T05:58:48.123456+01:00 mx1 postfix/smtpd 4242 - - 4PcV4K5FPLz3tBr: client=unknown[192.0.2.7]:41234",
		want: "kind=accept queue_id=4PcV4K5FPLz3tBr client_name=unknown client_ip=192.0.2.7",
	},
	{
		name: "named output instance",
		line: "Nov 24 05:58:48 mx1 postfix-out/smtp[99]: 3F2A1B0C9D: to=<a@victim.example>, relay=mx.victim.example[198.51.100.3]:25, conn_use=2, delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 OK 1700000000 x)",
		want: "kind=delivery queue_id=3F2A1B0C9D to=a@victim.example relay=mx.victim.example[198.51.100.3]:25 delay=1.2 status=sent dsn=2.0.0 code=250 reply=\"250 2.0.0 OK 1700000000 x\"",
	},
	{
		name: "port-named service",
		line: "Nov 24 05:58:48 mx1 postfix/10025/smtpd[7]: 4PbC4z6W5Qz3tG3: client=localhost[127.0.0.1], orig_queue_id=4PbC4x469Jz3tBr, orig_client=mail.example.net[203.0.113.9]",
		want: "kind=accept queue_id=4PbC4z6W5Qz3tG3 client_name=localhost client_ip=127.0.0.1 orig_queue_id=4PbC4x469Jz3tBr detail=mail.example.net[203.0.113.9]",
	},
	{
		name: "content filter hop names the re-queued copy",
		line: "Nov 24 05:58:48 mx1 postfix/amavis/smtp[302609]: 4PbC4x469Jz3tBr: to=<u@example.org>, orig_to=<frank@example.org>, relay=127.0.0.1[127.0.0.1]:10024, delay=2.4, delays=0.29/0.02/0.01/2.1, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 4PbC4z6W5Qz3tG3)",
		want: "kind=delivery queue_id=4PbC4x469Jz3tBr to=u@example.org orig_to=frank@example.org requeued=4PbC4z6W5Qz3tG3 relay=127.0.0.1[127.0.0.1]:10024 delay=2.4 status=sent dsn=2.0.0 code=250 reply=\"250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 4PbC4z6W5Qz3tG3\"",
	},
	{
		name: "remote queued as is no re-queue",
		line: "Nov 24 05:58:48 mx1 postfix/smtp[7]: 3F2A1B0C9D: to=<a@victim.example>, relay=mx.victim.example[198.51.100.3]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4XyZ1234)",
		want: "kind=delivery queue_id=3F2A1B0C9D to=a@victim.example relay=mx.victim.example[198.51.100.3]:25 delay=1 status=sent dsn=2.0.0 code=250 reply=\"250 2.0.0 Ok: queued as 4XyZ1234\"",
	},
	{
		name: "local forwarded as",
		line: "Nov 24 05:58:48 mx1 postfix/local[7]: 3F2A1B0C9D: to=<alice@example.org>, relay=local, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (forwarded as 4E5F6A7B8C)",
		want: "kind=delivery queue_id=3F2A1B0C9D to=alice@example.org requeued=4E5F6A7B8C forwarded=true relay=local delay=0.1 status=sent mailbox=true dsn=2.0.0 reply=\"forwarded as 4E5F6A7B8C\"",
	},
	{
		name: "amavis passed and re-queued",
		line: "Nov 24 05:58:48 mx1 amavis[237978]: (237978-11) Passed CLEAN {RelayedOutbound}, [203.0.113.9]:41695 [198.51.100.7] ESMTP/ESMTP <s@sender.example> -> <a@victim.example>,<b@victim.example>, (ESMTP://[203.0.113.9]:41695), Queue-ID: 4PbC4x469Jz3tBr, Message-ID: <x@y>, mail_id: VQpGETLS8yJc, Hits: 2.913, size: 175061, queued_as: 4PbC4z6W5Qz3tG3, 2131 ms",
		want: "kind=requeued queue_id=4PbC4x469Jz3tBr client_ip=203.0.113.9 from=<s@sender.example> requeued=4PbC4z6W5Qz3tG3",
	},
	{
		name: "unknown user in relay recipient table proves a relay domain",
		line: "Nov 24 05:58:48 gw postfix/smtpd[7]: NOQUEUE: reject: RCPT from unknown[203.0.113.8]: 550 5.1.1 <nobody@customer.example>: Recipient address rejected: User unknown in relay recipient table; from=<x@sender.test> to=<nobody@customer.example> proto=ESMTP helo=<x>",
		want: "kind=reject client_name=unknown client_ip=203.0.113.8 helo=x proto=ESMTP from=<x@sender.test> to=nobody@customer.example relay_domain=true dsn=5.1.1 code=550 action=reject stage=RCPT reply=\"<nobody@customer.example>: Recipient address rejected: User unknown in relay recipient table\"",
	},
	{
		name: "amavis blocked is irrelevant",
		line: "Nov 24 05:58:48 mx1 amavis[237978]: (237978-12) Blocked SPAM {DiscardedInbound}, [203.0.113.9]:41695 [198.51.100.7] <s@sender.example> -> <a@example.org>, Queue-ID: 4PbC4x469Jz3tBr, Hits: 12.1, 2131 ms",
		want: "",
	},
	{
		name: "ipv6 client",
		line: "Nov 24 05:58:48 mx1 postfix/smtpd[7]: connect from unknown[2001:db8::25]",
		want: "kind=connect client_name=unknown client_ip=2001:db8::25",
	},
	{
		name: "percent hack",
		line: "Nov 24 05:58:48 mx1 postfix/relay/smtp[7]: 3F2A1B0C9D: to=<user@victim.example>, orig_to=<user%victim.example@example.org>, relay=mx.victim.example[198.51.100.3]:25, delay=0.3, delays=0/0/0.1/0.2, dsn=5.7.1, status=bounced (host mx.victim.example[198.51.100.3] said: 554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org (in reply to RCPT TO command))",
		want: "kind=delivery queue_id=3F2A1B0C9D to=user@victim.example orig_to=user%victim.example@example.org relay=mx.victim.example[198.51.100.3]:25 delay=0.3 status=bounced dsn=5.7.1 code=554 reply=\"host mx.victim.example[198.51.100.3] said: 554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org (in reply to RCPT TO command)\"",
	},
	{
		name: "delivery expired",
		line: "Nov 24 05:58:48 mx1 postfix/error[7]: 3F2A1B0C9D: to=<a@dead.example>, relay=none, delay=432000, delays=431999/1/0/0, dsn=4.4.1, status=expired (delivery temporarily suspended: connect to dead.example[192.0.2.8]:25: Connection refused)",
		want: "kind=delivery queue_id=3F2A1B0C9D to=a@dead.example relay=none delay=432000 status=expired dsn=4.4.1 reply=\"delivery temporarily suspended: connect to dead.example[192.0.2.8]:25: Connection refused\"",
	},
	{
		name: "postscreen reject with comma-separated envelope",
		line: "Nov 24 05:58:48 mx1 postfix/postscreen[7]: NOQUEUE: reject: RCPT from [192.0.2.9]:5678: 550 5.7.1 Service unavailable; client [192.0.2.9] blocked using zen.spamhaus.org; from=<a@b.example>, to=<c@example.org>, proto=ESMTP, helo=<x.example>",
		want: "kind=reject client_ip=192.0.2.9 helo=x.example proto=ESMTP from=<a@b.example> to=c@example.org dsn=5.7.1 code=550 action=reject stage=RCPT reply=\"Service unavailable; client [192.0.2.9] blocked using zen.spamhaus.org\"",
	},
	{
		name: "hostile helo and sender stay verbatim",
		line: "Nov 24 05:58:48 mx1 postfix/smtpd[7]: NOQUEUE: reject: RCPT from unknown[192.0.2.9]: 554 5.7.1 <x@victim.example>: Relay access denied; from=<<!channel>@evil.example> to=<x@victim.example> proto=ESMTP helo=<<https://evil|click>>",
		want: "kind=reject client_name=unknown client_ip=192.0.2.9 helo=<https://evil|click> proto=ESMTP from=<<!channel>@evil.example> to=x@victim.example relay_denied=true dsn=5.7.1 code=554 action=reject stage=RCPT reply=\"<x@victim.example>: Relay access denied\"",
	},
	{
		name: "force-expired",
		line: "Nov 24 05:58:48 mx1 postfix/qmgr[7]: 3F2A1B0C9D: from=<a@example.org>, status=force-expired, returned to sender",
		want: "kind=expired queue_id=3F2A1B0C9D from=<a@example.org> status=expired reply=\"returned to sender\"",
	},
	{
		name: "postsuper removal",
		line: "Nov 24 05:58:48 mx1 postfix/postsuper[7]: 3F2A1B0C9D: removed",
		want: "kind=removed queue_id=3F2A1B0C9D",
	},
}

func TestBuiltLines(t *testing.T) {
	p := New(parsers.Options{Year: 2026, Location: time.UTC})
	for _, tt := range builtLines {
		t.Run(tt.name, func(t *testing.T) {
			evs, r := p.Parse(tt.line, nil)
			if tt.want == "" {
				if r != parsers.Irrelevant || len(evs) != 0 {
					t.Fatalf("result %v, %d events; want irrelevant", r, len(evs))
				}
				return
			}
			if r != parsers.Parsed || len(evs) != 1 {
				t.Fatalf("result %v, %d events", r, len(evs))
			}
			if got := parsertest.Summary(evs[0]); got != tt.want {
				t.Errorf("\n got  %s\n want %s", got, tt.want)
			}
		})
	}
}

func TestTimesAndInstances(t *testing.T) {
	p := New(parsers.Options{Year: 2026, Location: time.UTC})
	evs, _ := p.Parse("2023-03-14T00:08:35.917122+01:00 helga postfix/submission/smtpd[302614]: 4PbC4z6W5Qz3tG3: client=localhost[127.0.0.1]", nil)
	if len(evs) != 1 {
		t.Fatal("no event")
	}
	if want := time.Date(2023, 3, 13, 23, 8, 35, 917122000, time.UTC); !evs[0].Time.Equal(want) || evs[0].YearGuessed {
		t.Errorf("time %v (guessed %v), want %v", evs[0].Time, evs[0].YearGuessed, want)
	}
	if evs[0].Host != "helga" || evs[0].Program != "postfix/submission/smtpd" || Instance(evs[0].Program) != "postfix" {
		t.Errorf("host %q program %q instance %q", evs[0].Host, evs[0].Program, Instance(evs[0].Program))
	}
	if Instance("postfix-out/smtp") != "postfix-out" {
		t.Error("instance of postfix-out/smtp")
	}
	for prog, want := range map[string]bool{"postfix/smtpd": true, "postfix-out/smtp": true, "postfix": false, "postfixadmin": false, "postgrey": false, "exim": false} {
		if IsPostfixProgram(prog) != want {
			t.Errorf("IsPostfixProgram(%q) = %v", prog, !want)
		}
	}
}

func TestSniff(t *testing.T) {
	lines := []string{
		"Nov 24 05:58:48 mail postfix/smtpd[1]: connect from unknown[192.0.2.1]",
		"Nov 24 05:58:48 mail dovecot: imap-login: Login: user=<a>",
		"2026-11-24 05:58:48 1rKxyz-000abc-AB <= a@b.example H=(x) [192.0.2.1] P=esmtp S=1",
	}
	if got := Sniff(lines); got != 1 {
		t.Errorf("Sniff = %d, want 1", got)
	}
	if got := Sniff(lines[1:]); got != 0 {
		t.Errorf("Sniff of non-Postfix lines = %d, want 0", got)
	}
}

// relevanceMarkers are texts that only lines relaywatch uses carry. A line
// the parser calls irrelevant or malformed must carry none of them.
var relevanceMarkers = []string{"client=", " to=<", "status=", "message-id=", ": reject:", "nrcpt=", "uid=", "notification:", "authentication failed"}

// corpusFile is one file of real lines, with the daemon of each line for
// files whose lines lack a syslog header.
type corpusFile struct {
	path     string
	programs map[int]string // line number -> syslog program, for message-only files
}

func corpusFiles(t *testing.T) []corpusFile {
	seen := map[string]bool{}
	var out []corpusFile
	for _, dir := range parsertest.CorpusDirs(t, "postfix") {
		paths, err := filepath.Glob(filepath.Join(dir, "*.log"))
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(paths)
		for _, p := range paths {
			base := filepath.Base(p)
			if seen[base] {
				continue
			}
			seen[base] = true
			cf := corpusFile{path: p}
			if strings.Contains(base, ".messages.") {
				cf.programs = readPrograms(t, p+".annotations")
			}
			out = append(out, cf)
		}
	}
	return out
}

// readPrograms reads a message-only file's annotations: whyscream's name the
// daemon in the test file name ("smtpd_0004.yaml"), sekoia's give the
// syslog appname ("appname=postfix/smtpd").
func readPrograms(t *testing.T, path string) map[int]string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("annotations for a message-only file: %v", err)
	}
	defer f.Close()
	progs := map[int]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < 2 || strings.HasPrefix(cols[0], "#") {
			continue
		}
		var n int
		if _, err := fmt.Sscan(cols[0], &n); err != nil {
			continue
		}
		prog, found := "", false
		for _, c := range cols[1:] {
			if v, ok := strings.CutPrefix(c, "appname="); ok {
				prog, found = v, true
			}
			// whyscream: the grok pattern names the daemon: ^%{POSTFIX_SMTP}$
			if v, ok := strings.CutPrefix(c, "pattern=^%{POSTFIX_"); ok {
				if end := strings.IndexByte(v, '}'); end > 0 {
					prog, found = "postfix/"+strings.ToLower(v[:end]), true
				}
			}
		}
		if found {
			progs[n] = prog
		}
	}
	return progs
}

// TestCorpus runs every real line of the corpus through the parser: none may
// panic or be unrecognized, a line with a header and a Postfix program must
// parse or be irrelevant, and no irrelevant line may carry a marker of
// something relaywatch uses. For the in-repository files, the events are
// compared with golden files (go test -update rewrites them).
func TestCorpus(t *testing.T) {
	files := corpusFiles(t)
	if len(files) == 0 {
		t.Fatal("no corpus files")
	}
	total := 0
	for _, cf := range files {
		t.Run(filepath.Base(cf.path), func(t *testing.T) {
			data, err := os.ReadFile(cf.path)
			if err != nil {
				t.Fatal(err)
			}
			p := New(parsers.Options{Year: 2026, Location: time.UTC})
			var golden strings.Builder
			counts := map[parsers.Result]int{}
			for i, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
				n := i + 1
				var evs []parsers.Event
				var r parsers.Result
				prog := ""
				attributed := true
				if cf.programs != nil {
					prog = cf.programs[n]
					attributed = prog != ""
					if !IsPostfixProgram(prog) {
						r = parsers.Irrelevant // policyd-spf, spamd, postgrey
					} else {
						evs, r = ParseMessage(prog, line, nil)
					}
				} else {
					evs, r = p.Parse(line, nil)
				}
				counts[r]++
				total++
				if r == parsers.Unrecognized {
					t.Errorf("line %d unrecognized: %s", n, line)
				}
				if r == parsers.Malformed && cf.programs == nil && strings.Contains(line, " postfix") && hasHeader(line) {
					t.Errorf("line %d has a header and a Postfix program but is malformed: %s", n, line)
				}
				why, excepted := corpusExceptions[filepath.Base(cf.path)+":"+fmt.Sprint(n)]
				if excepted {
					t.Logf("line %d: %s", n, why)
				}
				checkMarkers := attributed && !excepted && r != parsers.Parsed &&
					(cf.programs == nil && hasHeader(line) || IsPostfixProgram(prog))
				if checkMarkers {
					for _, m := range relevanceMarkers {
						if strings.Contains(line, m) && !knownIrrelevant(line) {
							t.Errorf("line %d is %v but carries %q: %s", n, r, m, line)
						}
					}
				}
				fmt.Fprintf(&golden, "%d %v", n, r)
				for _, e := range evs {
					fmt.Fprintf(&golden, " | %s", parsertest.Summary(e))
				}
				golden.WriteByte('\n')
			}
			t.Logf("%d lines: %v", counts[parsers.Parsed]+counts[parsers.Irrelevant]+counts[parsers.Malformed], counts)
			if filepath.Base(filepath.Dir(cf.path)) == "corpus" && strings.HasPrefix(cf.path, "testdata") {
				parsertest.Golden(t, cf.path+".golden", golden.String(), *update)
			}
		})
	}
	t.Logf("%d corpus lines checked", total)
}

// corpusExceptions are corpus lines whose source mislabels them.
var corpusExceptions = map[string]string{
	"sekoia-intake-formats-postfix.messages.log:91": "its source labels this smtpd SASL line postfix/cleanup",
}

// knownIrrelevant lists line shapes that carry a marker but nothing we use.
func knownIrrelevant(line string) bool {
	for _, s := range []string{
		"warning: header ",                // cleanup header_checks warnings without a queue id
		"SASL authentication failure:",    // saslauthd plumbing, no client
		"statistics:",                     // anvil
		"dict_",                           // map lookups
		" said: ",                         // "host X said:" repeats what the delivery line says
		"warning: Illegal address syntax", // no envelope
		"improper command pipelining",     // the client's pipelined text
		"non-SMTP command",                // the client's text
		"PREGREET", "COMMAND PIPELINING",  // postscreen: the client's text
		"milter-header-redirect", // not an access decision we count
		"proxy-accept:",          // the message is accepted: its client= line is what counts
		"warning: uid=",          // postdrop
	} {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

func hasHeader(line string) bool {
	var h syslog.Header
	return syslog.NewParser(2026, time.UTC).Parse(line, &h)
}

func FuzzParse(f *testing.F) {
	for _, tt := range realLines {
		if tt.program == "" {
			f.Add(tt.line)
		}
	}
	for _, tt := range builtLines {
		f.Add(tt.line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		p := New(parsers.Options{Year: 2026, Location: time.UTC})
		evs, r := p.Parse(line, nil)
		if r == parsers.Parsed && len(evs) == 0 || r != parsers.Parsed && len(evs) != 0 {
			t.Fatalf("result %v with %d events", r, len(evs))
		}
		for _, e := range evs {
			if e.Line != line {
				t.Fatalf("event line %q, want the input", e.Line)
			}
			for _, field := range []string{e.QueueID, e.ClientIP, e.ClientName, e.From, e.To, e.Helo, e.Reply, e.Relay} {
				if !strings.Contains(line, field) {
					t.Fatalf("field %q is not part of the line", field)
				}
			}
		}
		// Message-only parsing of any daemon must not panic either.
		for _, d := range []string{"smtpd", "cleanup", "qmgr", "smtp", "bounce", "pickup", "postscreen", "local"} {
			ParseMessage("postfix/"+d, line, nil)
		}
	})
}
