package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The variants as they must be sent to a server that calls itself
// mx.test.example at 127.0.0.1, with the default names and local domain
// example.org: written out, not built, so that Variants is checked.
var wantVariants = []Variant{
	{"null-sender", "", "relaywatch-probe@example.com", ""},
	{"foreign-sender", "relaywatch-probe@example.com", "relaywatch-probe@example.com", ""},
	{"sender-at-server-name", "relaywatch-probe@mx.test.example", "relaywatch-probe@example.com", ""},
	{"sender-at-ip-literal", "relaywatch-probe@[127.0.0.1]", "relaywatch-probe@example.com", ""},
	{"percent-hack-ip", "relaywatch-probe@[127.0.0.1]", "relaywatch-probe%example.com@[127.0.0.1]", "relaywatch-probe@example.com"},
	{"percent-hack-server-name", "relaywatch-probe@[127.0.0.1]", "relaywatch-probe%example.com@mx.test.example", "relaywatch-probe@example.com"},
	{"quoted-at", "relaywatch-probe@[127.0.0.1]", `"relaywatch-probe@example.com"`, "relaywatch-probe@example.com"},
	{"quoted-percent", "relaywatch-probe@[127.0.0.1]", `"relaywatch-probe%example.com"`, "relaywatch-probe@example.com"},
	{"quoted-at-ip", "relaywatch-probe@[127.0.0.1]", `"relaywatch-probe@example.com"@[127.0.0.1]`, "relaywatch-probe@example.com"},
	{"double-at-ip", "relaywatch-probe@[127.0.0.1]", "relaywatch-probe@example.com@[127.0.0.1]", "relaywatch-probe@example.com"},
	{"double-at-server-name", "relaywatch-probe@[127.0.0.1]", "relaywatch-probe@example.com@mx.test.example", "relaywatch-probe@example.com"},
	{"source-route-ip", "relaywatch-probe@[127.0.0.1]", "@[127.0.0.1]:relaywatch-probe@example.com", "relaywatch-probe@example.com"},
	{"source-route-server-name", "relaywatch-probe@[127.0.0.1]", "@mx.test.example:relaywatch-probe@example.com", "relaywatch-probe@example.com"},
	{"bang-path", "relaywatch-probe@[127.0.0.1]", "example.com!relaywatch-probe", "relaywatch-probe@example.com"},
	{"bang-path-ip", "relaywatch-probe@[127.0.0.1]", "example.com!relaywatch-probe@[127.0.0.1]", "relaywatch-probe@example.com"},
	{"bang-path-server-name", "relaywatch-probe@[127.0.0.1]", "example.com!relaywatch-probe@mx.test.example", "relaywatch-probe@example.com"},
	{"forged-local-sender", "postmaster@example.org", "relaywatch-probe@example.com", ""},
}

func quick(addr string) Config {
	return Config{Addr: addr, Timeout: 2 * time.Second, LocalDomains: []string{"example.org"}}
}

// TestEachVariant runs the probe against a server that accepts exactly one
// variant (its sender and recipient), once per variant.
func TestEachVariant(t *testing.T) {
	if len(wantVariants) != 17 || len(VariantNames) != 17 {
		t.Fatalf("%d variants, want 17", len(wantVariants))
	}
	for _, want := range wantVariants {
		t.Run(want.Name, func(t *testing.T) {
			srv := newFakeServer(t, serverConf{rcpt: func(from, to string) string {
				if from == want.From && to == want.To {
					return "250 2.1.5 Ok"
				}
				return "554 5.7.1 <" + to + ">: Relay access denied"
			}})
			res, err := Run(context.Background(), quick(srv.addr()))
			if err != nil {
				t.Fatal(err)
			}
			if got := res.AcceptedVariants(); !cmp.Equal(got, []string{want.Name}) {
				t.Errorf("accepted %v, want [%s]", got, want.Name)
			}
			if res.Verdict != Open || res.Accepted != 1 || res.Refused != 16 || res.Connections != 1 {
				t.Errorf("verdict %s, accepted %d, refused %d, connections %d", res.Verdict, res.Accepted, res.Refused, res.Connections)
			}
			if got, want := res.Summary(), "open relay: 1 of 17 variants accepted"; got != want {
				t.Errorf("summary %q, want %q", got, want)
			}
			var sent []Variant
			for _, a := range res.Attempts {
				sent = append(sent, a.Variant)
			}
			if d := cmp.Diff(wantVariants, sent); d != "" {
				t.Errorf("variants (-want +got):\n%s", d)
			}
			// EHLO, then MAIL, RCPT, RSET per variant, then QUIT; never DATA.
			cmds := srv.received()
			if len(cmds) != 1+17*3+1 || !strings.HasPrefix(cmds[0], "EHLO ") || cmds[len(cmds)-1] != "QUIT" {
				t.Errorf("commands received: %q", cmds)
			}
		})
	}
}

func TestVerdicts(t *testing.T) {
	tests := []struct {
		name     string
		conf     serverConf
		verdict  string
		counts   [4]int // accepted, refused, needs auth, errors
		summary  string
		attempt0 Verdict
	}{
		{
			name:    "closed",
			verdict: Closed, counts: [4]int{0, 17, 0, 0},
			summary: "closed: 0 of 17 variants accepted (17 refused, 0 need authentication)",
		},
		{
			name:    "open",
			conf:    serverConf{rcpt: func(_, _ string) string { return "250 2.1.5 Ok" }},
			verdict: Open, counts: [4]int{17, 0, 0, 0},
			summary: "open relay: 17 of 17 variants accepted",
		},
		{
			name:    "needs auth at MAIL",
			conf:    serverConf{mail: func(string) string { return "530 5.7.0 Authentication required" }},
			verdict: Closed, counts: [4]int{0, 0, 17, 0},
		},
		{
			name:    "STARTTLS required, and not done (--no-starttls): not tested",
			conf:    serverConf{mail: func(string) string { return "530 5.7.0 Must issue a STARTTLS command first" }},
			verdict: Untested, counts: [4]int{0, 0, 0, 17},
		},
		{
			name: "Exchange refuses anonymous relay",
			conf: serverConf{rcpt: func(_, _ string) string {
				return "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain"
			}},
			verdict: Closed, counts: [4]int{0, 17, 0, 0},
		},
		{
			name: "Postfix default: defer_unauth_destination (4xx) is refused",
			conf: serverConf{rcpt: func(_, to string) string {
				return "454 4.7.1 <" + to + ">: Relay access denied"
			}},
			verdict: Closed, counts: [4]int{0, 17, 0, 0},
		},
		{
			name: "null sender refused at MAIL",
			conf: serverConf{mail: func(from string) string {
				if from == "" {
					return "553 5.1.7 bounces not accepted"
				}
				return "250 Ok"
			}, rcpt: func(_, _ string) string { return "250 Ok" }},
			verdict: Open, counts: [4]int{16, 1, 0, 0}, attempt0: Refused,
		},
		{
			name: "multi-line replies",
			conf: serverConf{
				greeting: "220-mx.test.example ESMTP\n220-no UCE\n220 really",
				rcpt:     func(_, _ string) string { return "250-2.1.5 recipient ok\n250-second line\n250 third" },
			},
			verdict: Open, counts: [4]int{17, 0, 0, 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeServer(t, tt.conf)
			res, err := Run(context.Background(), quick(srv.addr()))
			if err != nil {
				t.Fatal(err)
			}
			got := [4]int{res.Accepted, res.Refused, res.NeedsAuth, res.Errors}
			if res.Verdict != tt.verdict || got != tt.counts {
				t.Errorf("verdict %s %v, want %s %v", res.Verdict, got, tt.verdict, tt.counts)
			}
			if tt.summary != "" && res.Summary() != tt.summary {
				t.Errorf("summary %q, want %q", res.Summary(), tt.summary)
			}
			if tt.attempt0 != "" && res.Attempts[0].Verdict != tt.attempt0 {
				t.Errorf("first attempt %s, want %s", res.Attempts[0].Verdict, tt.attempt0)
			}
		})
	}
}

func TestMultiLineReplyKept(t *testing.T) {
	srv := newFakeServer(t, serverConf{rcpt: func(_, _ string) string { return "550-5.7.1 first\n550 5.7.1 second" }})
	res, err := Run(context.Background(), quick(srv.addr()))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Attempts[0].Reply(), "550 5.7.1 first / 5.7.1 second"; got != want {
		t.Errorf("reply %q, want %q", got, want)
	}
	if res.ServerName != "mx.test.example" {
		t.Errorf("server name %q", res.ServerName)
	}
}

// TestFaults: a server that misbehaves mid-session. The probe reconnects
// (within its connection budget) and retries the variant once.
func TestFaults(t *testing.T) {
	tests := []struct {
		name        string
		fault       func(n int, cmd string) (string, bool, bool)
		maxConns    int
		verdict     string
		errors      int
		connections int
		errContains string
	}{
		{
			name: "421 mid-session",
			fault: func(n int, cmd string) (string, bool, bool) {
				return "421 4.7.0 mx.test.example Error: too many errors", true, n == 20
			},
			verdict: Closed, connections: 2,
		},
		{
			name: "disconnect without a reply",
			fault: func(n int, cmd string) (string, bool, bool) {
				return "", true, n == 11
			},
			verdict: Closed, connections: 2,
		},
		{
			name: "garbage reply to every RCPT",
			fault: func(n int, cmd string) (string, bool, bool) {
				return "hello, I am not an SMTP server", false, strings.HasPrefix(cmd, "RCPT")
			},
			maxConns: 3, verdict: Untested, errors: 17, connections: 3,
			errContains: "malformed SMTP reply",
		},
		{
			name: "reply code changes inside a multi-line reply",
			fault: func(n int, cmd string) (string, bool, bool) {
				return "250-ok\r\n550 no", false, strings.HasPrefix(cmd, "RCPT")
			},
			maxConns: 2, verdict: Untested, errors: 17, connections: 2,
			errContains: "code 550 in a reply that began with 250",
		},
		{
			name: "endless reply line",
			fault: func(n int, cmd string) (string, bool, bool) {
				return "250 " + strings.Repeat("A", 10000), false, strings.HasPrefix(cmd, "RCPT")
			},
			maxConns: 1, verdict: Untested, errors: 17, connections: 1,
			errContains: "SMTP reply too long",
		},
		{
			name: "too many reply lines",
			fault: func(n int, cmd string) (string, bool, bool) {
				return strings.Repeat("250-x\r\n", 100) + "250 x", false, strings.HasPrefix(cmd, "RCPT")
			},
			maxConns: 1, verdict: Untested, errors: 17, connections: 1,
			errContains: "more than 64 lines",
		},
		{
			name: "no reply to RCPT: timeout",
			fault: func(n int, cmd string) (string, bool, bool) {
				return "", false, strings.HasPrefix(cmd, "RCPT")
			},
			maxConns: 1, verdict: Untested, errors: 17, connections: 1,
			errContains: "timed out",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeServer(t, serverConf{fault: tt.fault})
			cfg := quick(srv.addr())
			cfg.MaxConnections = tt.maxConns
			cfg.Timeout = 300 * time.Millisecond
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tt.verdict || res.Errors != tt.errors || res.Connections != tt.connections {
				t.Errorf("verdict %s, errors %d, connections %d; want %s, %d, %d; notes %q", res.Verdict, res.Errors, res.Connections, tt.verdict, tt.errors, tt.connections, res.Notes)
			}
			if len(res.Attempts) != 17 {
				t.Errorf("%d attempts", len(res.Attempts))
			}
			if want := "could not test: 17 of 17 variants not decided, none accepted"; tt.verdict == Untested && res.Summary() != want {
				t.Errorf("summary %q, want %q", res.Summary(), want)
			}
			if tt.errContains != "" && !strings.Contains(res.Attempts[0].Error, tt.errContains) {
				t.Errorf("first error %q, want it to contain %q", res.Attempts[0].Error, tt.errContains)
			}
		})
	}
}

func TestCannotTest(t *testing.T) {
	t.Run("greeting refused", func(t *testing.T) {
		srv := newFakeServer(t, serverConf{greeting: "554 5.7.1 go away"})
		res, err := Run(context.Background(), quick(srv.addr()))
		if err == nil || !strings.Contains(err.Error(), "554 5.7.1 go away") || res.Verdict != Untested {
			t.Errorf("err %v, verdict %s", err, res.Verdict)
		}
	})
	t.Run("greeting garbage", func(t *testing.T) {
		srv := newFakeServer(t, serverConf{greeting: "SSH-2.0-OpenSSH_9.2"})
		_, err := Run(context.Background(), quick(srv.addr()))
		if !errors.Is(err, ErrBadReply) {
			t.Errorf("err %v, want ErrBadReply", err)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		srv := newFakeServer(t, serverConf{})
		addr := srv.addr()
		srv.ln.Close()
		_, err := Run(context.Background(), quick(addr))
		if err == nil || !strings.Contains(err.Error(), "connect to") {
			t.Errorf("err %v", err)
		}
	})
}

// TestCancel: a cancelled context stops the probe at once, even while it
// waits for a reply with a long timeout or pauses between attempts.
func TestCancel(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fault func(int, string) (string, bool, bool)
		delay time.Duration
	}{
		{"waiting for a reply", func(n int, cmd string) (string, bool, bool) { return "", false, strings.HasPrefix(cmd, "RCPT") }, 0},
		{"pausing between attempts", nil, time.Hour},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeServer(t, serverConf{fault: tt.fault})
			cfg := quick(srv.addr())
			cfg.Timeout = time.Hour
			cfg.Delay = tt.delay
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			start := time.Now()
			res, err := Run(ctx, cfg)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err %v, want context.Canceled", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("stopped after %s", d)
			}
			if res == nil || res.Verdict == Open || res.Verdict == Closed {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func TestTLS(t *testing.T) {
	conf := testTLSConfig(t)
	t.Run("STARTTLS when offered", func(t *testing.T) {
		srv := newFakeServer(t, serverConf{tls: conf, ehloExt: []string{"AUTH PLAIN LOGIN"}})
		res, err := Run(context.Background(), quick(srv.addr()))
		if err != nil {
			t.Fatal(err)
		}
		if res.TLS != "starttls" || res.Verdict != Closed || res.Auth != "PLAIN LOGIN" {
			t.Errorf("tls %s, verdict %s, auth %q", res.TLS, res.Verdict, res.Auth)
		}
		cmds := srv.received()
		if len(cmds) < 3 || cmds[1] != "STARTTLS" || !strings.HasPrefix(cmds[2], "EHLO") {
			t.Errorf("commands %q", cmds[:3])
		}
	})
	t.Run("no STARTTLS when told not to", func(t *testing.T) {
		srv := newFakeServer(t, serverConf{tls: conf})
		cfg := quick(srv.addr())
		cfg.NoStartTLS = true
		res, err := Run(context.Background(), cfg)
		if err != nil || res.TLS != "none" {
			t.Fatalf("err %v, tls %s", err, res.TLS)
		}
	})
	t.Run("implicit TLS", func(t *testing.T) {
		srv := newFakeServer(t, serverConf{tls: conf, implicitTLS: true, rcpt: func(_, _ string) string { return "250 ok" }})
		cfg := quick(srv.addr())
		cfg.ImplicitTLS = true
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.TLS != "implicit" || res.Verdict != Open {
			t.Errorf("tls %s, verdict %s", res.TLS, res.Verdict)
		}
	})
	t.Run("broken STARTTLS falls back to clear text", func(t *testing.T) {
		srv := newFakeServer(t, serverConf{tls: &tls.Config{}}) // no certificate: the handshake fails
		res, err := Run(context.Background(), quick(srv.addr()))
		if err != nil {
			t.Fatal(err)
		}
		if res.TLS != "none" || res.Verdict != Closed || res.Connections != 2 || len(res.Notes) == 0 {
			t.Errorf("tls %s, verdict %s, connections %d, notes %q", res.TLS, res.Verdict, res.Connections, res.Notes)
		}
	})
}

// TestHostileServer: what the server says is escaped, and its name is only
// used in commands when it is a plain host name.
func TestHostileServer(t *testing.T) {
	srv := newFakeServer(t, serverConf{
		greeting: "220 evil\x1b]0;owned\x07.example ESMTP",
		rcpt:     func(_, _ string) string { return "550 \x1b[2J\x9b31m\xff bad \u202e" },
	})
	res, err := Run(context.Background(), quick(srv.addr()))
	if err != nil {
		t.Fatal(err)
	}
	// The fake's EHLO names mx.test.example; the greeting is not used.
	if res.ServerName != "mx.test.example" {
		t.Errorf("server name %q", res.ServerName)
	}
	if got, want := res.Attempts[0].Reply(), `550 \x1b[2J\x9b31m\xff bad \u202e`; got != want {
		t.Errorf("reply %q, want %q", got, want)
	}
	if strings.ContainsAny(res.Banner, "\x1b\x07") {
		t.Errorf("banner not escaped: %q", res.Banner)
	}
}

func TestServerName(t *testing.T) {
	tests := []struct{ ehlo, greet, want string }{
		{"mx.example.org Hello", "mx2.example.org ESMTP", "mx.example.org"},
		{"localhost", "mail.example.net ESMTP", "mail.example.net"},
		{"mx.exa<mple.org", "", ""},
		{"a..b", "x", ""},
	}
	for _, tt := range tests {
		got := serverName(Reply{Code: 250, Lines: []string{tt.ehlo}}, Reply{Code: 220, Lines: []string{tt.greet}})
		if got != tt.want {
			t.Errorf("serverName(%q, %q) = %q, want %q", tt.ehlo, tt.greet, got, tt.want)
		}
	}
}

func TestReadReply(t *testing.T) {
	tests := []struct {
		in   string
		want Reply
		err  error
	}{
		{"250 ok\r\n", Reply{250, []string{"ok"}}, nil},
		{"250\r\n", Reply{250, []string{""}}, nil},
		{"250-a\r\n250-b\r\n250 c\r\n", Reply{250, []string{"a", "b", "c"}}, nil},
		{"250-a\n250 b\n", Reply{250, []string{"a", "b"}}, nil},
		{"25\r\n", Reply{}, ErrBadReply},
		{"abc ok\r\n", Reply{}, ErrBadReply},
		{"999 ok\r\n", Reply{}, ErrBadReply},
		{"250x ok\r\n", Reply{}, ErrBadReply},
		{"250-a\r\n", Reply{}, nil}, // EOF inside a multi-line reply
		{"", Reply{}, nil},
	}
	for _, tt := range tests {
		got, err := ReadReply(bufio.NewReader(strings.NewReader(tt.in)))
		if tt.err != nil && !errors.Is(err, tt.err) {
			t.Errorf("%q: err %v, want %v", tt.in, err, tt.err)
			continue
		}
		if tt.want.Code == 0 {
			if err == nil {
				t.Errorf("%q: no error", tt.in)
			}
			continue
		}
		if err != nil || !cmp.Equal(got, tt.want) {
			t.Errorf("%q: %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestAddr(t *testing.T) {
	tests := []struct {
		in   string
		tls  bool
		want string
		err  bool
	}{
		{"mx.example.org", false, "mx.example.org:25", false},
		{"mx.example.org", true, "mx.example.org:465", false},
		{"mx.example.org:587", false, "mx.example.org:587", false},
		{"127.0.0.1:2525", false, "127.0.0.1:2525", false},
		{"::1", false, "[::1]:25", false},
		{"[::1]:587", false, "[::1]:587", false},
		{"mx:smtp", false, "", true},
		{"", false, "", true},
	}
	for _, tt := range tests {
		got, err := Addr(tt.in, tt.tls)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("Addr(%q, %v) = %q, %v; want %q", tt.in, tt.tls, got, err, tt.want)
		}
	}
}

func TestVariantsIPv6AndDefaults(t *testing.T) {
	srv := newFakeServer(t, serverConf{})
	cfg := quick(srv.addr())
	cfg.LocalDomains = nil
	cfg.ServerIP = "2001:db8::25"
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Attempts[3].Variant.From; got != "relaywatch-probe@[IPv6:2001:db8::25]" {
		t.Errorf("IP-literal sender %q", got)
	}
	// Without --local-domains the forged sender is at the server name's parent domain.
	if got := res.Attempts[16].Variant.From; got != "postmaster@test.example" {
		t.Errorf("forged local sender %q", got)
	}
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"250 ok\r\n", "250-a\r\n250 b\r\n", "421 bye\r\n", "xyz\r\n", "250-a\r\n550 b\r\n", "220 \x1b[31m\xff\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		rep, err := ReadReply(bufio.NewReader(strings.NewReader(in)))
		if err != nil {
			return
		}
		if rep.Code < 200 || rep.Code > 599 || len(rep.Lines) == 0 || len(rep.Lines) > MaxReplyLines {
			t.Fatalf("reply %+v from %q", rep, in)
		}
		for _, l := range rep.Lines {
			for _, r := range l {
				if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
					t.Fatalf("control character %U left in %q", r, l)
				}
			}
		}
		_ = fmt.Sprint(rep)
	})
}

// TestRefusedSenderFallback: Exim and others refuse IP-literal senders
// (501 domain literals not allowed); the recipient tricks are then tried with
// the foreign sender, and the refused sender is not sent again.
func TestRefusedSenderFallback(t *testing.T) {
	srv := newFakeServer(t, serverConf{
		mail: func(from string) string {
			if strings.Contains(from, "[") {
				return "501 <" + from + ">: domain literals not allowed"
			}
			return "250 OK"
		},
		rcpt: func(from, to string) string {
			if to == "relaywatch-probe%example.com@mx.test.example" && from == "relaywatch-probe@example.com" {
				return "250 Accepted"
			}
			return "550 relay not permitted"
		},
	})
	res, err := Run(context.Background(), quick(srv.addr()))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.AcceptedVariants(); !cmp.Equal(got, []string{"percent-hack-server-name"}) {
		t.Errorf("accepted %v", got)
	}
	// sender-at-ip-literal has no alternative: refused at MAIL FROM.
	if a := res.Attempts[3]; a.Verdict != Refused || a.RcptReply != nil || a.MailReply.Code != 501 {
		t.Errorf("sender-at-ip-literal: %+v", a)
	}
	// Later variants use the alternative at once.
	a := res.Attempts[4]
	if want := []string{"MAIL FROM:<relaywatch-probe@example.com>", "RCPT TO:<relaywatch-probe%example.com@[127.0.0.1]>", "RSET"}; !cmp.Equal(a.Commands, want) || a.From != "relaywatch-probe@example.com" {
		t.Errorf("percent-hack-ip commands %q, from %q", a.Commands, a.From)
	}
}

// TestRefusedSenderFallbackInAttempt: a sender refused in the middle of a
// variant is replaced at once, and the refusal is kept in the attempt.
func TestRefusedSenderFallbackInAttempt(t *testing.T) {
	var n atomic.Int32
	srv := newFakeServer(t, serverConf{
		mail: func(from string) string {
			// The IP-literal sender passes once (sender-at-ip-literal), then not.
			if strings.Contains(from, "[") && n.Add(1) > 1 {
				return "553 5.1.8 sender rejected"
			}
			return "250 OK"
		},
	})
	res, err := Run(context.Background(), quick(srv.addr()))
	if err != nil {
		t.Fatal(err)
	}
	a := res.Attempts[4]
	want := []string{"MAIL FROM:<relaywatch-probe@[127.0.0.1]>", "MAIL FROM:<relaywatch-probe@example.com>", "RCPT TO:<relaywatch-probe%example.com@[127.0.0.1]>", "RSET"}
	if !cmp.Equal(a.Commands, want) || a.SenderRefused == nil || a.SenderRefused.Code != 553 || a.RcptReply == nil {
		t.Errorf("percent-hack-ip: %+v", a)
	}
	for _, a := range res.Attempts[5:16] {
		if a.From != "relaywatch-probe@example.com" || a.RcptReply == nil || len(a.Commands) != 3 {
			t.Errorf("%s: from %q, commands %q", a.Variant.Name, a.From, a.Commands)
		}
	}
}
