// Package loggen writes realistic Postfix logs of any size for benchmarks
// and tests: inbound mail through postscreen and smtpd into mailboxes,
// authenticated submission relayed to the Internet (with deferrals, retries
// and bounces), local cron mail, rejected relay probes and password guessing,
// and, optionally, an open-relay incident. The output is deterministic for a
// seed. Generated logs are never committed; generate them when needed.
package loggen

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"
)

// Config says what to generate.
type Config struct {
	// Lines is the approximate number of lines to write.
	Lines int
	// Start is the time of the first line; lines are about Step apart.
	Start time.Time
	Step  time.Duration
	// Seed makes the output repeatable.
	Seed uint64
	// IncidentAt is the fraction (0..1) of the log at which an open-relay
	// burst from two outside clients starts; 0 means none.
	IncidentAt float64
	// IncidentMessages is the number of relayed messages in the burst.
	IncidentMessages int
	// Host is the mail server's host name.
	Host string
	// Week shapes traffic like a quiet week of an Internet-facing server:
	// nights and weekends three times quieter each, users logging in from
	// their own one or two networks, mistyped passwords followed by a
	// login, and now and then a password-guessing burst against a real
	// account that never succeeds. Off, the output is as it always was.
	Week bool
}

// QuietWeek is seven days of ordinary traffic, no incident, in about
// lines lines (for calibration: no rule may raise more than info on it).
func QuietWeek(lines int) Config {
	return Config{
		Lines: lines,
		Start: time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC), // a Monday
		// About eight lines per event, 13 weekday-day equivalents a week.
		Step: time.Duration(float64(7*24*time.Hour) / (float64(lines) / 8) / 2.7),
		Seed: 7,
		Host: "mx1",
		Week: true,
	}
}

// DefaultConfig is a week of traffic with an incident at 70 %.
func DefaultConfig(lines int) Config {
	return Config{
		Lines:            lines,
		Start:            time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC),
		Step:             400 * time.Millisecond,
		Seed:             42,
		IncidentAt:       0.7,
		IncidentMessages: 400,
		Host:             "mx1",
	}
}

// Incident clients and the local domains, for tests.
const (
	IncidentClientA = "198.51.100.66"
	IncidentClientB = "198.51.100.77"
	LocalDomains    = "example.org,example.net"
)

type gen struct {
	cfg      Config
	w        *bufio.Writer
	rnd      *rand.Rand
	now      time.Time
	lines    int
	qid      uint64
	pid      int
	deferred []deferredMsg
	incident bool
}

type deferredMsg struct {
	qid, rcpt, relay string
	due              time.Time
	tries            int
}

var (
	localUsers     = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "sales", "info", "support"}
	localDomains   = []string{"example.org", "example.net"}
	foreignDomains = []string{"gmail.test", "yahoo.test", "outlook.test", "partner.test", "customer.test", "supplier.test", "university.test", "isp.test", "bank.test", "shop.test"}
	words          = []string{"news", "info", "noreply", "billing", "team", "hello", "updates", "mary", "john", "li", "sam"}
)

// Write generates the log into w.
func Write(w io.Writer, cfg Config) error {
	if cfg.Host == "" {
		cfg.Host = "mx1"
	}
	if cfg.Step <= 0 {
		cfg.Step = 400 * time.Millisecond
	}
	g := &gen{cfg: cfg, w: bufio.NewWriterSize(w, 256<<10), rnd: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), now: cfg.Start, qid: 0x1A2B3C, pid: 1000}
	for g.lines < cfg.Lines {
		if !g.incident && cfg.IncidentAt > 0 && float64(g.lines) >= cfg.IncidentAt*float64(cfg.Lines) {
			g.incident = true
			g.relayBurst()
			continue
		}
		g.retryDue()
		switch r := g.rnd.IntN(100); {
		case r < 55:
			g.inbound()
		case r < 80:
			g.submission()
		case r < 85:
			g.pickup()
		case r < 93:
			g.relayProbe()
		case r < 97:
			g.userUnknown()
		case cfg.Week && r < 98:
			g.typoLogin()
		case cfg.Week && g.rnd.IntN(40) == 0:
			g.guessBurst()
		default:
			g.saslGuess()
		}
	}
	return g.w.Flush()
}

func (g *gen) tick() {
	// Daily swing: twice as busy in the afternoon as at night.
	h := g.now.Hour()
	step := g.cfg.Step
	if h < 7 || h > 21 {
		step *= 2
		if g.cfg.Week {
			step = step * 3 / 2
		}
	}
	if wd := g.now.Weekday(); g.cfg.Week && (wd == time.Saturday || wd == time.Sunday) {
		step *= 3
	}
	g.now = g.now.Add(time.Duration(g.rnd.Int64N(int64(step)*2) + 1))
}

func (g *gen) line(prog, format string, args ...any) {
	g.pid++
	fmt.Fprintf(g.w, "%s %s postfix/%s[%d]: ", g.now.Format(time.Stamp), g.cfg.Host, prog, 2000+g.pid%5000)
	fmt.Fprintf(g.w, format, args...)
	g.w.WriteByte('\n')
	g.lines++
}

func (g *gen) newQID() string {
	g.qid += uint64(g.rnd.IntN(4000) + 1)
	return fmt.Sprintf("%010X", g.qid)
}

func (g *gen) pick(l []string) string { return l[g.rnd.IntN(len(l))] }

func (g *gen) outsideIP() string {
	return fmt.Sprintf("203.0.%d.%d", g.rnd.IntN(40)+100, g.rnd.IntN(254)+1)
}

func (g *gen) localAddr() string { return g.pick(localUsers) + "@" + g.pick(localDomains) }

func (g *gen) foreignAddr() string {
	return fmt.Sprintf("%s%d@%s", g.pick(words), g.rnd.IntN(500), g.pick(foreignDomains))
}

func (g *gen) msgID() string {
	return fmt.Sprintf("%d.%d@%s", g.now.Unix(), g.rnd.IntN(1e6), g.pick(foreignDomains))
}

func (g *gen) inbound() {
	ip := g.outsideIP()
	name := "unknown"
	if g.rnd.IntN(3) > 0 {
		name = fmt.Sprintf("mail%d.%s", g.rnd.IntN(9), g.pick(foreignDomains))
	}
	g.tick()
	g.line("postscreen", "CONNECT from [%s]:%d to [192.0.2.1]:25", ip, 30000+g.rnd.IntN(30000))
	g.line("postscreen", "PASS OLD [%s]:%d", ip, 30000+g.rnd.IntN(30000))
	g.line("smtpd", "connect from %s[%s]", name, ip)
	g.line("smtpd", "Anonymous TLS connection established from %s[%s]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)", name, ip)
	qid := g.newQID()
	g.line("smtpd", "%s: client=%s[%s]", qid, name, ip)
	g.line("cleanup", "%s: message-id=<%s>", qid, g.msgID())
	n := 1 + g.rnd.IntN(3)
	g.line("qmgr", "%s: from=<%s>, size=%d, nrcpt=%d (queue active)", qid, g.foreignAddr(), 2000+g.rnd.IntN(80000), n)
	g.line("smtpd", "disconnect from %s[%s] ehlo=2 starttls=1 mail=1 rcpt=%d data=1 quit=1 commands=%d", name, ip, n, 6+n)
	g.tick()
	for i := 0; i < n; i++ {
		g.line("lmtp", "%s: to=<%s>, relay=mail.example.org[private/dovecot-lmtp], delay=0.%d, delays=0.1/0/0/0.%d, dsn=2.0.0, status=sent (250 2.0.0 <%s> Saved)", qid, g.localAddr(), g.rnd.IntN(9)+1, g.rnd.IntN(9), g.localAddr())
	}
	g.line("qmgr", "%s: removed", qid)
}

func (g *gen) submission() {
	ip := fmt.Sprintf("198.18.%d.%d", g.rnd.IntN(4), g.rnd.IntN(254)+1)
	user := g.localAddr()
	if g.cfg.Week {
		ip = g.userIP(user)
	}
	g.submissionAs(user, ip)
}

// userIP is where a user logs in from in a quiet week: its office network,
// and one time in five its phone's.
func (g *gen) userIP(user string) string {
	h := 0
	for _, c := range user {
		h = h*31 + int(c)
	}
	h &= 0xffff
	if g.rnd.IntN(5) == 0 {
		return fmt.Sprintf("100.64.%d.%d", h%16, g.rnd.IntN(254)+1)
	}
	return fmt.Sprintf("198.18.%d.%d", h%4, 10+h%40)
}

// typoLogin is a user mistyping the password twice, then sending.
func (g *gen) typoLogin() {
	user := g.localAddr()
	ip := g.userIP(user)
	g.tick()
	for i := 0; i < 2; i++ {
		g.line("submission/smtpd", "warning: unknown[%s]: SASL PLAIN authentication failed: authentication failure, sasl_username=%s", ip, user)
	}
	g.submissionAs(user, ip)
}

// guessBurst is a password-guessing run against one real account from one
// address: twenty failures, no success.
func (g *gen) guessBurst() {
	ip := g.outsideIP()
	user := g.localAddr()
	for i := 0; i < 20; i++ {
		g.tick()
		g.line("submission/smtpd", "warning: unknown[%s]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=%s", ip, user)
	}
}

func (g *gen) submissionAs(user, ip string) {
	g.tick()
	g.line("submission/smtpd", "connect from unknown[%s]", ip)
	qid := g.newQID()
	g.line("submission/smtpd", "%s: client=unknown[%s], sasl_method=PLAIN, sasl_username=%s", qid, ip, user)
	g.line("cleanup", "%s: message-id=<%s>", qid, g.msgID())
	n := 1 + g.rnd.IntN(2)
	g.line("qmgr", "%s: from=<%s>, size=%d, nrcpt=%d (queue active)", qid, user, 1000+g.rnd.IntN(200000), n)
	g.line("submission/smtpd", "disconnect from unknown[%s] ehlo=1 auth=1 mail=1 rcpt=%d data=1 quit=1 commands=%d", ip, n, 5+n)
	g.tick()
	pending := false
	for i := 0; i < n; i++ {
		rcpt := g.foreignAddr()
		relay := fmt.Sprintf("mx.%s[192.0.2.%d]:25", rcpt[strings.LastIndexByte(rcpt, '@')+1:], g.rnd.IntN(250)+1)
		switch r := g.rnd.IntN(100); {
		case r < 90:
			g.line("smtp", "%s: to=<%s>, relay=%s, delay=%.1f, delays=0.1/0/0.2/0.%d, dsn=2.0.0, status=sent (250 2.0.0 OK %d - gsmtp)", qid, rcpt, relay, 0.3+g.rnd.Float64(), g.rnd.IntN(9), g.now.Unix())
		case r < 97:
			g.line("smtp", "%s: to=<%s>, relay=%s, delay=%.1f, delays=0.1/0/0.2/0.3, dsn=4.7.0, status=deferred (host %s said: 421 4.7.0 Try again later (in reply to end of DATA command))", qid, rcpt, relay, 0.6+g.rnd.Float64(), relay)
			g.deferred = append(g.deferred, deferredMsg{qid: qid, rcpt: rcpt, relay: relay, due: g.now.Add(10 * time.Minute)})
			pending = true
		default:
			g.line("smtp", "%s: to=<%s>, relay=%s, delay=0.5, delays=0.1/0/0.2/0.2, dsn=5.1.1, status=bounced (host %s said: 550 5.1.1 <%s>: Recipient address rejected: User unknown (in reply to RCPT TO command))", qid, rcpt, relay, relay, rcpt)
			g.bounce(qid, user)
		}
	}
	if !pending {
		g.line("qmgr", "%s: removed", qid)
	}
}

// bounce writes the non-delivery notification for qid back to a local sender.
func (g *gen) bounce(qid, sender string) {
	nq := g.newQID()
	g.line("cleanup", "%s: message-id=<%s@mx1.example.org>", nq, nq)
	g.line("bounce", "%s: sender non-delivery notification: %s", qid, nq)
	g.line("qmgr", "%s: from=<>, size=%d, nrcpt=1 (queue active)", nq, 3000+g.rnd.IntN(3000))
	g.line("lmtp", "%s: to=<%s>, relay=mail.example.org[private/dovecot-lmtp], delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 Saved)", nq, sender)
	g.line("qmgr", "%s: removed", nq)
}

func (g *gen) retryDue() {
	if len(g.deferred) == 0 || g.deferred[0].due.After(g.now) {
		return
	}
	d := g.deferred[0]
	g.deferred = g.deferred[1:]
	if d.tries < 2 && g.rnd.IntN(2) == 0 {
		g.line("smtp", "%s: to=<%s>, relay=%s, delay=%d, delays=%d/0/0.2/0.3, dsn=4.7.0, status=deferred (host %s said: 421 4.7.0 Try again later (in reply to end of DATA command))", d.qid, d.rcpt, d.relay, 600*(d.tries+1), 600*(d.tries+1), d.relay)
		d.tries++
		d.due = g.now.Add(10 * time.Minute)
		g.deferred = append(g.deferred, d)
		return
	}
	g.line("smtp", "%s: to=<%s>, relay=%s, delay=%d, delays=%d/0/0.2/0.3, dsn=2.0.0, status=sent (250 2.0.0 OK)", d.qid, d.rcpt, d.relay, 600*(d.tries+1), 600*(d.tries+1))
	g.line("qmgr", "%s: removed", d.qid)
}

func (g *gen) pickup() {
	g.tick()
	qid := g.newQID()
	g.line("pickup", "%s: uid=0 from=<root>", qid)
	g.line("cleanup", "%s: message-id=<%s@mx1.example.org>", qid, qid)
	g.line("qmgr", "%s: from=<root@mx1.example.org>, size=%d, nrcpt=1 (queue active)", qid, 500+g.rnd.IntN(5000))
	g.line("local", "%s: to=<root@mx1.example.org>, orig_to=<root>, relay=local, delay=0.01, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to mailbox)", qid)
	g.line("qmgr", "%s: removed", qid)
}

func (g *gen) relayProbe() {
	ip := g.outsideIP()
	g.tick()
	g.line("smtpd", "connect from unknown[%s]", ip)
	rcpt := g.foreignAddr()
	g.line("smtpd", "NOQUEUE: reject: RCPT from unknown[%s]: 454 4.7.1 <%s>: Relay access denied; from=<%s> to=<%s> proto=ESMTP helo=<%s>", ip, rcpt, g.foreignAddr(), rcpt, ip)
	g.line("smtpd", "disconnect from unknown[%s] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4", ip)
}

func (g *gen) userUnknown() {
	ip := g.outsideIP()
	g.tick()
	g.line("smtpd", "connect from unknown[%s]", ip)
	rcpt := fmt.Sprintf("nosuch%d@%s", g.rnd.IntN(100), g.pick(localDomains))
	g.line("smtpd", "NOQUEUE: reject: RCPT from unknown[%s]: 550 5.1.1 <%s>: Recipient address rejected: User unknown in virtual mailbox table; from=<%s> to=<%s> proto=ESMTP helo=<mail.%s>", ip, rcpt, g.foreignAddr(), rcpt, g.pick(foreignDomains))
	g.line("smtpd", "disconnect from unknown[%s] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4", ip)
}

func (g *gen) saslGuess() {
	ip := g.outsideIP()
	g.tick()
	g.line("submission/smtpd", "connect from unknown[%s]", ip)
	g.line("submission/smtpd", "warning: unknown[%s]: SASL LOGIN authentication failed: authentication failure, sasl_username=%s", ip, g.localAddr())
	g.line("submission/smtpd", "lost connection after AUTH from unknown[%s]", ip)
	g.line("submission/smtpd", "disconnect from unknown[%s] ehlo=1 auth=0/1 commands=1/2", ip)
}

// relayBurst is the incident: two outside clients relay foreign-to-foreign
// mail (with percent-hack recipients) while the server is open.
func (g *gen) relayBurst() {
	for i := 0; i < g.cfg.IncidentMessages; i++ {
		ip := IncidentClientA
		if i%2 == 1 {
			ip = IncidentClientB
		}
		g.now = g.now.Add(time.Duration(g.rnd.IntN(300)) * time.Millisecond)
		qid := g.newQID()
		g.line("smtpd", "%s: client=unknown[%s]", qid, ip)
		g.line("cleanup", "%s: message-id=<%s>", qid, g.msgID())
		n := 3 + g.rnd.IntN(3)
		g.line("qmgr", "%s: from=<offers%d@bulk-%d.example>, size=%d, nrcpt=%d (queue active)", qid, g.rnd.IntN(1000), i%2, 1500+g.rnd.IntN(2000), n)
		for j := 0; j < n; j++ {
			rcpt := g.foreignAddr()
			orig := ""
			if j == 0 {
				at := strings.LastIndexByte(rcpt, '@')
				orig = fmt.Sprintf(" orig_to=<%s%%%s@example.org>,", rcpt[:at], rcpt[at+1:])
			}
			g.line("smtp", "%s: to=<%s>,%s relay=mx.victim[192.0.2.9]:25, delay=0.4, delays=0/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as %X)", qid, rcpt, orig, g.rnd.Uint32())
		}
		g.line("qmgr", "%s: removed", qid)
	}
}
