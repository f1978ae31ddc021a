package loggen

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// WriteExim generates an Exim main log with the same flows as Write:
// inbound mail into local mailboxes, authenticated submission relayed to the
// Internet with deferrals and bounces, relay probes, password guessing, and
// the open-relay incident. Message ids use Exim 4.97's long form.
func WriteExim(w io.Writer, cfg Config) error {
	if cfg.Step <= 0 {
		cfg.Step = 400 * time.Millisecond
	}
	g := &eximGen{gen: gen{cfg: cfg, w: bufio.NewWriterSize(w, 256<<10), rnd: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), now: cfg.Start, qid: 1 << 40}}
	for g.lines < cfg.Lines {
		if !g.incident && cfg.IncidentAt > 0 && float64(g.lines) >= cfg.IncidentAt*float64(cfg.Lines) {
			g.incident = true
			g.relayBurst()
			continue
		}
		switch r := g.rnd.IntN(100); {
		case r < 55:
			g.inbound()
		case r < 80:
			g.submission()
		case r < 93:
			g.relayProbe()
		default:
			g.saslGuess()
		}
	}
	return g.w.Flush()
}

type eximGen struct{ gen }

func (g *eximGen) line(format string, args ...any) {
	g.w.WriteString(g.now.Format("2006-01-02 15:04:05 "))
	fmt.Fprintf(g.w, format, args...)
	g.w.WriteByte('\n')
	g.lines++
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newID returns a 4.97-style id: 6-11-4 base-62 characters.
func (g *eximGen) newID() string {
	g.qid += uint64(g.rnd.IntN(4000) + 1)
	b := make([]byte, 23)
	enc := func(v uint64, out []byte) {
		for i := len(out) - 1; i >= 0; i-- {
			out[i] = base62[v%62]
			v /= 62
		}
	}
	enc(uint64(g.now.Unix()), b[0:6])
	b[6] = '-'
	enc(g.qid, b[7:18])
	b[18] = '-'
	enc(uint64(g.rnd.IntN(62*62*62*62)), b[19:23])
	return string(b)
}

func (g *eximGen) inbound() {
	ip := g.outsideIP()
	helo := fmt.Sprintf("mail%d.%s", g.rnd.IntN(9), g.pick(foreignDomains))
	g.tick()
	g.line("SMTP connection from [%s]:%d (TCP/IP connection count = %d)", ip, 30000+g.rnd.IntN(30000), 1+g.rnd.IntN(5))
	id := g.newID()
	n := 1 + g.rnd.IntN(3)
	g.line("%s <= %s H=(%s) [%s]:%d I=[192.0.2.1]:25 P=esmtps X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no S=%d id=%s", id, g.foreignAddr(), helo, ip, 30000+g.rnd.IntN(30000), 2000+g.rnd.IntN(80000), g.msgID())
	g.tick()
	for i := 0; i < n; i++ {
		flag := "=>"
		if i > 0 {
			flag = "->"
		}
		user := g.pick(localUsers)
		g.line("%s %s %s <%s@%s> R=local_user T=dovecot_lmtp C=\"250 2.0.0 <%s> Saved\"", id, flag, user, user, g.pick(localDomains), user)
	}
	g.line("%s Completed", id)
}

func (g *eximGen) submission() {
	ip := fmt.Sprintf("198.18.%d.%d", g.rnd.IntN(4), g.rnd.IntN(254)+1)
	user := g.localAddr()
	if g.cfg.Week {
		ip = g.userIP(user)
	}
	g.tick()
	id := g.newID()
	g.line("%s <= %s H=(laptop) [%s]:%d I=[192.0.2.1]:587 P=esmtpsa X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no A=dovecot_plain:%s S=%d id=%s", id, user, ip, 40000+g.rnd.IntN(20000), user, 1000+g.rnd.IntN(200000), g.msgID())
	g.tick()
	rcpt := g.foreignAddr()
	host := fmt.Sprintf("mx.%s [192.0.2.%d]", rcpt[len(rcpt)-len("x.test"):], g.rnd.IntN(250)+1)
	switch r := g.rnd.IntN(100); {
	case r < 90:
		g.line("%s => %s R=dnslookup T=remote_smtp H=%s X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes C=\"250 2.0.0 OK %d - gsmtp\"", id, rcpt, host, g.now.Unix())
	case r < 97:
		g.line("%s == %s R=dnslookup T=remote_smtp defer (-44) H=%s: SMTP error from remote mail server after end of data: 421 4.7.0 Try again later", id, rcpt, host)
		g.now = g.now.Add(time.Second)
		g.line("%s => %s R=dnslookup T=remote_smtp H=%s C=\"250 2.0.0 OK\"", id, rcpt, host)
	default:
		g.line("%s ** %s R=dnslookup T=remote_smtp H=%s: SMTP error from remote mail server after RCPT TO:<%s>: 550 5.1.1 User unknown", id, rcpt, host, rcpt)
		bounce := g.newID()
		g.line("%s <= <> R=%s U=Debian-exim P=local S=%d", bounce, id, 3000+g.rnd.IntN(3000))
		g.line("%s => %s <%s> R=local_user T=dovecot_lmtp C=\"250 2.0.0 Saved\"", bounce, user[:len(user)-len("@example.org")], user)
		g.line("%s Completed", bounce)
	}
	g.line("%s Completed", id)
}

func (g *eximGen) relayProbe() {
	ip := g.outsideIP()
	g.tick()
	g.line("H=(%s) [%s]:%d I=[192.0.2.1]:25 F=<%s> rejected RCPT <%s>: relay not permitted", ip, ip, 30000+g.rnd.IntN(30000), g.foreignAddr(), g.foreignAddr())
}

func (g *eximGen) saslGuess() {
	ip := g.outsideIP()
	g.tick()
	g.line("dovecot_login authenticator failed for (User) [%s]:%d I=[192.0.2.1]:587: 535 Incorrect authentication data (set_id=%s)", ip, 40000+g.rnd.IntN(20000), g.localAddr())
}

func (g *eximGen) relayBurst() {
	for i := 0; i < g.cfg.IncidentMessages; i++ {
		ip := IncidentClientA
		if i%2 == 1 {
			ip = IncidentClientB
		}
		g.now = g.now.Add(time.Duration(g.rnd.IntN(300)) * time.Millisecond)
		id := g.newID()
		g.line("%s <= offers%d@bulk-%d.example H=(bulk-sender.example) [%s]:%d I=[192.0.2.1]:25 P=esmtp S=%d", id, g.rnd.IntN(1000), i%2, ip, 30000+g.rnd.IntN(30000), 1500+g.rnd.IntN(2000))
		n := 3 + g.rnd.IntN(3)
		for j := 0; j < n; j++ {
			flag := "=>"
			if j > 0 {
				flag = "->"
			}
			g.line("%s %s %s R=dnslookup T=remote_smtp H=mx.victim [192.0.2.9] C=\"250 2.0.0 Ok: queued as %X\"", id, flag, g.foreignAddr(), g.rnd.Uint32())
		}
		g.line("%s Completed", id)
	}
}
