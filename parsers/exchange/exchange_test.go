package exchange

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/parsertest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestSplitCSV(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"a,b,c", []string{"a", "b", "c"}},
		{"a,,c,", []string{"a", "", "c", ""}},
		{`a,"b,c",d`, []string{"a", "b,c", "d"}},
		{`"say ""hi""",x`, []string{`say "hi"`, "x"}},
		{`"",""`, []string{"", ""}},
		{`a,"unterminated, field`, []string{"a", "unterminated, field"}},
		{`"MDB:1, Mailbox:2",,STOREDRIVER`, []string{"MDB:1, Mailbox:2", "", "STOREDRIVER"}},
		{"", []string{""}},
	}
	for _, tt := range tests {
		var buf [maxFields]string
		n := splitCSV(tt.in, buf[:])
		if diff := cmp.Diff(tt.want, buf[:n]); diff != "" {
			t.Errorf("splitCSV(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
	var small [2]string
	if n := splitCSV("a,b,c,d", small[:]); n != 2 {
		t.Errorf("bounded split returned %d fields", n)
	}
}

// The message tracking lines below are BUILT from Microsoft's documented
// field list of Exchange 2016/2019 (30 columns) and its event-id values;
// the real lines of the corpus are tested in TestCorpus.
const header2019 = "#Fields: date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,connector-id,source,event-id,internal-message-id,message-id,network-message-id,recipient-address,recipient-status,total-bytes,recipient-count,related-recipient-address,reference,message-subject,sender-address,return-path,message-info,directionality,tenant-id,original-client-ip,original-server-ip,custom-data,transport-traffic-type,log-id,schema-version"

func TestMessageTracking(t *testing.T) {
	lines := []string{
		"\xef\xbb\xbf#Software: Microsoft Exchange Server",
		"#Version: 15.02.1118.007",
		"#Log-type: Message Tracking Log",
		header2019,
		// Relayed: anonymous, from the Internet to the Internet, via a front end.
		`2026-11-24T07:41:12.345Z,10.0.0.11,EX01-FE.contoso.com,10.0.0.10,EX01,08DD;2026-11-24T07:41:12.300Z;0,EX01\Anonymous Relay EX01,SMTP,RECEIVE,3500000000123,<1@bulk.example>,nmid,a@gmail.test;b@yahoo.test,,2345,2,,,"Win, now ""free""",spam@bulk.example,spam@bulk.example,,Incoming,,203.0.113.66,10.0.0.10,S:FromEntity=Internet;S:ToEntity=Internet,Email,lid,15.02.1118.007`,
		`2026-11-24T07:41:13.000Z,10.0.0.10,EX01.contoso.com,192.0.2.9,mx.victim.test,;250 ok,Internet Send Connector,SMTP,SEND,3500000000123,<1@bulk.example>,nmid,a@gmail.test;b@yahoo.test,250 2.1.5 Ok;451 4.7.1 later,2345,2,,,x,spam@bulk.example,spam@bulk.example,,Incoming,,,,S:ToEntity=Internet,Email,lid,15.02.1118.007`,
		// Mailbox delivery teaches the accepted domain.
		`2026-11-24T07:41:14.000Z,,,,EX01,MDB:1,,STOREDRIVER,DELIVER,3500000000124,<2@fabrikam.example>,nmid,alice@contoso.com,,1000,1,,,Hi,news@fabrikam.example,news@fabrikam.example,,Incoming,,,,,Email,lid,15.02.1118.007`,
		// Submitted from a mailbox.
		`2026-11-24T07:41:15.000Z,fe80::1%3,EX01,,,"MDB:1, Mailbox:2, ClientType:OWA",,STOREDRIVER,RECEIVE,3500000000125,<3@EX01>,nmid,jane@fabrikam.example,,1000,1,,,Re,bob@contoso.com,bob@contoso.com,,Originating,,,,,Email,lid,15.02.1118.007`,
		`2026-11-24T07:41:16.000Z,,,,EX01,,,SMTP,FAIL,3500000000126,<4@x>,nmid,nobody@contoso.com,550 5.1.10 RESOLVER.ADR.RecipientNotFound; not found,1000,1,,,x,s@fabrikam.example,s@fabrikam.example,,Incoming,,,,,Email,lid,15.02.1118.007`,
		`2026-11-24T07:41:17.000Z,,,,EX01,,,DSN,DSN,3500000000127,<5@x>,nmid,s@fabrikam.example,,2000,1,,<4@x>,x,MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.com,<>,,Originating,,,,,Email,lid,15.02.1118.007`,
		`2026-11-24T07:41:18.000Z,,,,EX01,,,AGENT,AGENTINFO,3500000000128,<6@x>,nmid,alice@contoso.com,,1000,1,,,x,s@fabrikam.example,s@fabrikam.example,,Incoming,,,,,Email,lid,15.02.1118.007`,
		`2026-11-24T07:41:19.000Z,,,,EX01,,,SMTP,WHATEVERNEW,3500000000129,<7@x>,nmid,alice@contoso.com,,1000,1,,,x,s@fabrikam.example,s@fabrikam.example,,Incoming,,,,,Email,lid,15.02.1118.007`,
		// Mailbox forwarding to an outside address (REDIRECT: recipient-address is the new recipient, related-recipient-address the mailbox).
		`2026-11-24T07:41:20.000Z,,,,EX01,,,ROUTING,REDIRECT,3500000000130,<8@x>,nmid,alice@gmail.test,,1000,1,alice@contoso.com,,x,s@fabrikam.example,s@fabrikam.example,,Incoming,,,,,Email,lid,15.02.1118.007`,
		`not a date,,,`,
	}
	want := []string{
		"irrelevant", "irrelevant", "irrelevant", "irrelevant",
		`parsed | kind=accept queue_id=3500000000123 client_name=EX01-FE.contoso.com client_ip=203.0.113.66 from=<spam@bulk.example> message_id=1@bulk.example subject="Win, now \"free\"" size=2345 nrcpt=2 detail="EX01\\Anonymous Relay EX01" direction=Incoming`,
		`parsed | kind=delivery queue_id=3500000000123 to=a@gmail.test relay=mx.victim.test[192.0.2.9] status=sent code=250 reply="250 2.1.5 Ok" message_id=1@bulk.example subject=x detail="Internet Send Connector" direction=Incoming | kind=delivery queue_id=3500000000123 to=b@yahoo.test relay=mx.victim.test[192.0.2.9] status=deferred code=451 reply="451 4.7.1 later" message_id=1@bulk.example subject=x detail="Internet Send Connector" direction=Incoming`,
		`parsed | kind=delivery queue_id=3500000000124 to=alice@contoso.com status=sent mailbox=true message_id=2@fabrikam.example subject=Hi direction=Incoming`,
		`parsed | kind=pickup queue_id=3500000000125 from=<bob@contoso.com> message_id=3@EX01 subject=Re direction=Originating`,
		`parsed | kind=delivery queue_id=3500000000126 to=nobody@contoso.com status=bounced code=550 reply="550 5.1.10 RESOLVER.ADR.RecipientNotFound; not found" message_id=4@x subject=x direction=Incoming`,
		`parsed | kind=notification queue_id=3500000000127 reply="delivery status notification" message_id=5@x subject=x detail=<4@x> direction=Originating`,
		"irrelevant",
		"unrecognized",
		`parsed | kind=redirect queue_id=3500000000130 to=alice@gmail.test orig_to=alice@contoso.com message_id=8@x subject=x direction=Incoming`,
		"malformed",
	}
	p := NewMessageTracking(parsers.Options{})
	for i, l := range lines {
		evs, r := p.Parse(l, nil)
		got := r.String()
		for _, e := range evs {
			got += " | " + summaryWithDirection(e)
		}
		if got != want[i] {
			t.Errorf("line %d:\n got  %s\n want %s", i, got, want[i])
		}
	}
}

func summaryWithDirection(e parsers.Event) string {
	s := parsertest.Summary(e)
	if e.Direction != "" {
		s += " direction=" + e.Direction
	}
	return s
}

func TestMessageTrackingColumnsFromHeaderAndFallback(t *testing.T) {
	// A 2010 header mid-stream changes the columns; a headerless file picks
	// the layout by column count.
	p := NewMessageTracking(parsers.Options{})
	p.Parse("#Fields: date-time,event-id,internal-message-id,source,recipient-address,sender-address,client-ip,directionality", nil)
	evs, r := p.Parse("2026-11-24T07:00:00.000Z,RECEIVE,42,SMTP,a@b.test,s@x.test,192.0.2.5,Incoming", nil)
	if r != parsers.Parsed || len(evs) != 1 || evs[0].ClientIP != "192.0.2.5" || evs[0].QueueID != "42" {
		t.Fatalf("custom column order: %v %+v", r, evs)
	}
	q := NewMessageTracking(parsers.Options{})
	line2010 := `2016-04-05T00:00:02.052Z,192.0.2.7,h,10.0.0.1,EX,ctx,EX\Default,SMTP,RECEIVE,77,<m@x>,a@contoso.com,,100,1,,,subj,s@x.test,s@x.test,,Incoming,,,,`
	evs, r = q.Parse(line2010, nil)
	if r != parsers.Parsed || len(evs) != 1 || evs[0].ClientIP != "192.0.2.7" || evs[0].From != "s@x.test" {
		t.Fatalf("2010 layout by count: %v %+v", r, evs)
	}
}

func TestSMTPReceiveSessions(t *testing.T) {
	// BUILT from the documented protocol log columns and SMTP replies.
	rows := []string{
		"#Log-type: SMTP Receive Protocol Log",
		"#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context",
		`2026-11-24T07:00:00.000Z,EX01\Anon,S1,0,10.0.0.10:25,203.0.113.66:4000,+,,`,
		`2026-11-24T07:00:00.010Z,EX01\Anon,S1,1,10.0.0.10:25,203.0.113.66:4000,*,SMTPSubmit SMTPAcceptAnySender SMTPAcceptAnyRecipient,Set Session Permissions`,
		`2026-11-24T07:00:00.020Z,EX01\Anon,S2,0,10.0.0.10:25,192.0.2.9:5000,+,,`,
		`2026-11-24T07:00:00.030Z,EX01\Anon,S1,2,10.0.0.10:25,203.0.113.66:4000,<,EHLO bulk-sender.example,`,
		`2026-11-24T07:00:00.040Z,EX01\Anon,S2,1,10.0.0.10:25,192.0.2.9:5000,<,EHLO mx.fabrikam.example,`,
		`2026-11-24T07:00:00.050Z,EX01\Anon,S1,3,10.0.0.10:25,203.0.113.66:4000,<,MAIL FROM:<spam@bulk.example> SIZE=100,`,
		`2026-11-24T07:00:00.060Z,EX01\Anon,S2,2,10.0.0.10:25,192.0.2.9:5000,<,MAIL FROM:<x@fabrikam.example>,`,
		`2026-11-24T07:00:00.070Z,EX01\Anon,S1,4,10.0.0.10:25,203.0.113.66:4000,<,RCPT TO:<v1@gmail.test>,`,
		`2026-11-24T07:00:00.080Z,EX01\Anon,S2,3,10.0.0.10:25,192.0.2.9:5000,<,RCPT TO:<v@gmail.test>,`,
		`2026-11-24T07:00:00.090Z,EX01\Anon,S1,5,10.0.0.10:25,203.0.113.66:4000,>,250 2.1.5 Recipient OK,`,
		`2026-11-24T07:00:00.100Z,EX01\Anon,S2,4,10.0.0.10:25,192.0.2.9:5000,>,550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain,`,
		`2026-11-24T07:00:00.110Z,EX01\Anon,S1,6,10.0.0.10:25,203.0.113.66:4000,<,RCPT TO:<v2@yahoo.test>,`,
		`2026-11-24T07:00:00.120Z,EX01\Anon,S1,7,10.0.0.10:25,203.0.113.66:4000,>,250 2.1.5 Recipient OK,`,
		`2026-11-24T07:00:00.130Z,EX01\Client,S3,0,10.0.0.10:587,198.18.0.5:6000,+,,`,
		`2026-11-24T07:00:00.140Z,EX01\Client,S3,1,10.0.0.10:587,198.18.0.5:6000,<,AUTH LOGIN,`,
		`2026-11-24T07:00:00.150Z,EX01\Client,S3,2,10.0.0.10:587,198.18.0.5:6000,*,,Inbound AUTH LOGIN failed because of LogonDenied`,
		`2026-11-24T07:00:00.160Z,EX01\Client,S3,3,10.0.0.10:587,198.18.0.5:6000,>,535 5.7.3 Authentication unsuccessful,`,
		`2026-11-24T07:00:00.170Z,EX01\Client,S3,4,10.0.0.10:587,198.18.0.5:6000,<,AUTH LOGIN,`,
		`2026-11-24T07:00:00.180Z,EX01\Client,S3,5,10.0.0.10:587,198.18.0.5:6000,*,CONTOSO\bob,authenticated`,
		`2026-11-24T07:00:00.190Z,EX01\Client,S3,6,10.0.0.10:587,198.18.0.5:6000,>,235 2.7.0 Authentication successful,`,
		`2026-11-24T07:00:00.200Z,EX01\Client,S3,7,10.0.0.10:587,198.18.0.5:6000,<,MAIL FROM:<bob@contoso.com>,`,
		`2026-11-24T07:00:00.210Z,EX01\Client,S3,8,10.0.0.10:587,198.18.0.5:6000,<,RCPT TO:<jane@fabrikam.example>,`,
		`2026-11-24T07:00:00.220Z,EX01\Client,S3,9,10.0.0.10:587,198.18.0.5:6000,>,250 2.1.5 Recipient OK,`,
		`2026-11-24T07:00:00.230Z,EX01\Anon,S1,8,10.0.0.10:25,203.0.113.66:4000,-,,Local`,
	}
	p := NewSMTPProtocol(parsers.Options{})
	var got []string
	for _, r := range rows {
		evs, _ := p.Parse(r, nil)
		for _, e := range evs {
			got = append(got, parsertest.Summary(e))
		}
	}
	want := []string{
		"kind=connect client_ip=203.0.113.66 detail=EX01\\Anon",
		"kind=connect client_ip=192.0.2.9 detail=EX01\\Anon",
		`kind=accept queue_id=S1-1 client_ip=203.0.113.66 helo=bulk-sender.example from=<spam@bulk.example> detail="EX01\\Anon (anonymous session with SMTPAcceptAnyRecipient)"`,
		`kind=delivery queue_id=S1-1 to=v1@gmail.test status=accepted code=250 reply="250 2.1.5 Recipient OK"`,
		`kind=reject client_ip=192.0.2.9 helo=mx.fabrikam.example from=<x@fabrikam.example> to=v@gmail.test relay_denied=true dsn=5.7.54 code=550 action=reject stage=RCPT reply="550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain"`,
		`kind=delivery queue_id=S1-1 to=v2@yahoo.test status=accepted code=250 reply="250 2.1.5 Recipient OK"`,
		"kind=connect client_ip=198.18.0.5 detail=EX01\\Client",
		`kind=auth-failure client_ip=198.18.0.5 auth_method=LOGIN reply="Inbound AUTH LOGIN failed because of LogonDenied"`,
		`kind=accept queue_id=S3-1 client_ip=198.18.0.5 auth_user=CONTOSO\bob from=<bob@contoso.com> detail=EX01\Client`,
		`kind=delivery queue_id=S3-1 to=jane@fabrikam.example status=accepted code=250 reply="250 2.1.5 Recipient OK"`,
		"kind=disconnect client_ip=203.0.113.66 helo=bulk-sender.example",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("session events (-want +got):\n%s", diff)
	}
}

func TestSessionsAreBounded(t *testing.T) {
	p := NewSMTPProtocol(parsers.Options{})
	t0 := time.Date(2026, 11, 24, 7, 0, 0, 0, time.UTC)
	for i := 0; i < MaxSessions+500; i++ {
		// Sessions that never end.
		p.Parse(fmt.Sprintf("%s,C,S%d,0,10.0.0.10:25,198.18.%d.%d:1,+,,", t0.Add(time.Duration(i)*time.Millisecond).Format("2006-01-02T15:04:05.000Z"), i, i/256%256, i%256), nil)
	}
	if len(p.sessions) > MaxSessions || p.Evicted < 500 {
		t.Errorf("%d sessions, %d evicted", len(p.sessions), p.Evicted)
	}
	// Half an hour later, one new session pushes out every idle one.
	p.Parse(t0.Add(time.Hour).Format("2006-01-02T15:04:05.000Z")+",C,LATE,0,10.0.0.10:25,198.18.9.9:1,+,,", nil)
	if len(p.sessions) != 1 {
		t.Errorf("%d sessions after the idle timeout", len(p.sessions))
	}
}

func TestSniff(t *testing.T) {
	msgtrk := []string{"\xef\xbb\xbf#Software: Microsoft Exchange Server", "#Version: 15.02.1118.007", "#Log-type: Message Tracking Log", header2019}
	recv := []string{"#Log-type: SMTP Receive Protocol Log", "2024-01-25T15:14:39.026Z,NETBIOS\\Default Frontend NETBIOS,08DC1DB8591B229B,0,10.11.12.13:25,10.11.12.14:53230,+,,"}
	if SniffMessageTracking(msgtrk) == 0 || SniffSMTPProtocol(msgtrk) != 0 {
		t.Error("message tracking header not told apart")
	}
	if SniffSMTPProtocol(recv) == 0 || SniffMessageTracking(recv) != 0 {
		t.Error("protocol log not told apart")
	}
	postfix := []string{"Nov 24 05:58:48 mail postfix/smtpd[1]: connect from unknown[192.0.2.1]"}
	if SniffMessageTracking(postfix) != 0 || SniffSMTPProtocol(postfix) != 0 {
		t.Error("Postfix lines sniffed as Exchange")
	}
}

// TestCorpus runs every real Exchange line of the corpus through its parser:
// none may panic, be malformed or unrecognized, and the in-repository files
// are compared with golden files (go test -update).
func TestCorpus(t *testing.T) {
	for _, format := range []string{"exchange-msgtrk", "exchange-smtp-receive", "exchange-smtp-send"} {
		seen := map[string]bool{}
		dirs := parsertest.CorpusDirs(t, format)
		for _, dir := range dirs {
			paths, _ := filepath.Glob(filepath.Join(dir, "*.log"))
			sort.Strings(paths)
			for _, path := range paths {
				base := filepath.Base(path)
				if seen[base] {
					continue
				}
				seen[base] = true
				t.Run(format+"/"+base, func(t *testing.T) {
					data, err := os.ReadFile(path)
					if err != nil {
						t.Fatal(err)
					}
					var p parsers.Parser = NewSMTPProtocol(parsers.Options{})
					if format == "exchange-msgtrk" {
						p = NewMessageTracking(parsers.Options{})
					} else if format == "exchange-smtp-send" {
						p.Parse("#Log-type: SMTP Send Protocol Log", nil)
					}
					var golden strings.Builder
					for i, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
						line = strings.TrimSuffix(line, "\r")
						evs, r := p.Parse(line, nil)
						if r == parsers.Malformed || r == parsers.Unrecognized {
							t.Errorf("line %d is %v: %s", i+1, r, line)
						}
						fmt.Fprintf(&golden, "%d %v", i+1, r)
						for _, e := range evs {
							fmt.Fprintf(&golden, " | %s", summaryWithDirection(e))
						}
						golden.WriteByte('\n')
					}
					if strings.HasPrefix(path, "testdata") {
						parsertest.Golden(t, path+".golden", golden.String(), *update)
					}
				})
			}
		}
	}
}

func FuzzMessageTracking(f *testing.F) {
	f.Add(header2019)
	f.Add(`2026-11-24T07:41:12.345Z,10.0.0.11,EX,10.0.0.10,EX01,ctx,EX01\Relay,SMTP,RECEIVE,35,<1@b>,n,a@g.test;b@y.test,,2,2,,,"W, ""f""",s@b.example,s@b.example,,Incoming,,203.0.113.66,,S:FromEntity=Internet,Email,l,15`)
	f.Add(`2026-11-24T07:41:13.000Z,10.0.0.10,EX,192.0.2.9,mx,;250,C,SMTP,SEND,35,<1@b>,n,a@g.test;b@y.test,250 ok;451 later,2,2,,,x,s@b.example,s@b.example,,Incoming,,,,,Email,l,15`)
	f.Fuzz(func(t *testing.T, line string) {
		p := NewMessageTracking(parsers.Options{})
		p.Parse(header2019, nil)
		evs, r := p.Parse(line, nil)
		if (r == parsers.Parsed) != (len(evs) > 0) {
			t.Fatalf("result %v with %d events", r, len(evs))
		}
		// The same line without a header must not panic either.
		NewMessageTracking(parsers.Options{}).Parse(line, nil)
	})
}

func FuzzSMTPReceive(f *testing.F) {
	f.Add(`2026-11-24T07:00:00.090Z,EX01\Anon,S1,5,10.0.0.10:25,203.0.113.66:4000,>,250 2.1.5 Recipient OK,`)
	f.Add(`2026-11-24T07:00:00.070Z,EX01\Anon,S1,4,10.0.0.10:25,[2001:db8::1]:4000,<,RCPT TO:<v1@gmail.test>,`)
	f.Fuzz(func(t *testing.T, line string) {
		p := NewSMTPProtocol(parsers.Options{})
		p.Parse(`2026-11-24T07:00:00.000Z,EX01\Anon,S1,0,10.0.0.10:25,203.0.113.66:4000,<,MAIL FROM:<a@b>,`, nil)
		p.Parse(`2026-11-24T07:00:00.000Z,EX01\Anon,S1,1,10.0.0.10:25,203.0.113.66:4000,<,RCPT TO:<c@d>,`, nil)
		evs, r := p.Parse(line, nil)
		if (r == parsers.Parsed) != (len(evs) > 0) {
			t.Fatalf("result %v with %d events", r, len(evs))
		}
	})
}
