// Package probe actively tests whether an SMTP server relays mail for
// strangers, the way the classic relay testers do (nmap's smtp-open-relay,
// abuse.net's): for each variant it sends EHLO, MAIL FROM and RCPT TO,
// records the replies and resets with RSET. It never sends DATA, so no mail
// is relayed even when the server is open.
//
// Only test servers you are allowed to test.
package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Verdict is the outcome of one variant.
type Verdict string

// Verdicts.
const (
	// Accepted: the server accepted the recipient (2xx to RCPT TO).
	Accepted Verdict = "accepted"
	// Refused: the server refused the sender or the recipient (4xx or 5xx).
	Refused Verdict = "refused"
	// NeedsAuth: the server asked for authentication first.
	NeedsAuth Verdict = "needs-auth"
	// Error: the variant could not be tested (timeout, disconnect,
	// malformed reply, connection limit).
	Error Verdict = "error"
)

// Overall verdicts of a Result.
const (
	Open     = "open"
	Closed   = "closed"
	Untested = "untested"
)

// Defaults of Config.
const (
	DefaultTimeout        = 30 * time.Second
	DefaultMaxConnections = 10
	DefaultForeign        = "example.com"
	DefaultLocalPart      = "relaywatch-probe"
	DefaultHelo           = "relaywatch-probe.invalid"
)

// Config says what to probe and how.
type Config struct {
	// Addr is host:port.
	Addr string
	// Source is the local IP address to connect from (default: chosen by
	// the system).
	Source string
	// ImplicitTLS speaks TLS from the first byte (port 465).
	ImplicitTLS bool
	// NoStartTLS keeps the session in clear text even when STARTTLS is offered.
	NoStartTLS bool
	// TLS is the client TLS configuration; nil means no certificate
	// verification (the probe tests relaying, not certificates).
	TLS *tls.Config
	// Helo is the name sent with EHLO (DefaultHelo when empty).
	Helo string
	// From and To are the local parts of sender and recipient
	// (DefaultLocalPart when empty).
	From, To string
	// Foreign is the relay target domain (DefaultForeign when empty).
	Foreign string
	// ServerName overrides the host name taken from the server's replies.
	ServerName string
	// ServerIP overrides the address used in IP literals (default: the
	// address connected to).
	ServerIP string
	// LocalDomains are the server's own mail domains; the first is the
	// forged sender's domain (default: the server name's parent domain).
	LocalDomains []string
	// Timeout bounds each step: connect, handshake, each reply
	// (DefaultTimeout when zero).
	Timeout time.Duration
	// Delay is the pause between two attempts.
	Delay time.Duration
	// MaxConnections bounds the connections opened, reconnections after a
	// 421 or a disconnect included (DefaultMaxConnections when zero).
	MaxConnections int
	// Progress, when not nil, is called after each attempt.
	Progress func(Attempt)
}

// Attempt is the outcome of one variant.
type Attempt struct {
	Variant Variant `json:"variant"`
	// Commands are the commands sent for the variant, in order.
	Commands []string `json:"commands"`
	// From is the sender used: the variant's, or its AltFrom when the
	// server refused the variant's (then SenderRefused is that refusal).
	From          string  `json:"from"`
	SenderRefused *Reply  `json:"sender_refused,omitempty"`
	MailReply     *Reply  `json:"mail_reply,omitempty"`
	RcptReply     *Reply  `json:"rcpt_reply,omitempty"`
	Verdict       Verdict `json:"verdict"`
	// Error says why the variant could not be tested (Verdict Error).
	Error string `json:"error,omitempty"`
}

// Reply is the reply that decided the attempt, as one escaped line.
func (a Attempt) Reply() string {
	switch {
	case a.Error != "":
		return a.Error
	case a.RcptReply != nil:
		return a.RcptReply.String()
	case a.MailReply != nil:
		return a.MailReply.String()
	}
	return ""
}

// Result is the outcome of a probe.
type Result struct {
	// Target is the address given; Address the one connected to.
	Target  string `json:"target"`
	Address string `json:"address,omitempty"`
	// TLS is "none", "starttls" or "implicit".
	TLS        string    `json:"tls"`
	Banner     string    `json:"banner,omitempty"`
	ServerName string    `json:"server_name,omitempty"`
	Auth       string    `json:"auth_offered,omitempty"`
	Attempts   []Attempt `json:"attempts"`
	Accepted   int       `json:"accepted"`
	Refused    int       `json:"refused"`
	NeedsAuth  int       `json:"needs_auth"`
	Errors     int       `json:"errors"`
	// Connections is the number of connections opened.
	Connections int `json:"connections"`
	// Verdict is Open (a variant was accepted), Closed (every variant was
	// refused or needs authentication) or Untested (none accepted, and at
	// least one could not be tested).
	Verdict string `json:"verdict"`
	// Notes are things worth knowing (STARTTLS failed, reconnections).
	Notes []string `json:"notes,omitempty"`
}

// Summary is one line for people: "open relay: 5 of 17 variants accepted".
func (r *Result) Summary() string {
	n := len(r.Attempts)
	switch r.Verdict {
	case Open:
		return fmt.Sprintf("open relay: %d of %d variants accepted", r.Accepted, n)
	case Closed:
		return fmt.Sprintf("closed: 0 of %d variants accepted (%d refused, %d need authentication)", n, r.Refused, r.NeedsAuth)
	}
	total := len(VariantNames)
	return fmt.Sprintf("could not test: %d of %d variants not decided, none accepted", total-r.Refused-r.NeedsAuth, total)
}

// AcceptedVariants are the names of the accepted variants.
func (r *Result) AcceptedVariants() []string {
	var out []string
	for _, a := range r.Attempts {
		if a.Verdict == Accepted {
			out = append(out, a.Variant.Name)
		}
	}
	return out
}

// errConnLimit means the connection budget is spent.
var errConnLimit = errors.New("connection limit reached")

// session is one probe's state.
type session struct {
	cfg     Config
	res     *Result
	host    string
	c       *conn
	tlsConf *tls.Config
	noSTLS  bool
	// refusedFrom are senders the server refused: variants that have an
	// alternative use it straight away.
	refusedFrom map[string]bool
}

// Run probes cfg.Addr and returns what every variant got. The error is
// non-nil when the server could not be tested at all (connection refused, no
// greeting, a refusing greeting) or when ctx was cancelled; the result then
// holds what was learned so far.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = withDefaults(cfg)
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", cfg.Addr, err)
	}
	s := &session{cfg: cfg, host: host, noSTLS: cfg.NoStartTLS, refusedFrom: map[string]bool{}, res: &Result{Target: cfg.Addr, TLS: "none"}}
	s.tlsConf = cfg.TLS
	if s.tlsConf == nil {
		s.tlsConf = &tls.Config{InsecureSkipVerify: true, ServerName: host} //nolint:gosec // the probe tests relaying, not certificates
	}
	defer func() {
		if s.c != nil {
			s.c.close(ctx.Err() == nil)
		}
	}()
	if err := s.connect(ctx); err != nil {
		s.res.Verdict = Untested
		return s.res, err
	}
	names := s.names()
	for i, v := range Variants(names) {
		if i > 0 && cfg.Delay > 0 {
			t := time.NewTimer(cfg.Delay)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			s.finish()
			return s.res, fmt.Errorf("probe of %s stopped: %w", cfg.Addr, ctx.Err())
		}
		a := s.try(ctx, v)
		s.res.Attempts = append(s.res.Attempts, a)
		if cfg.Progress != nil {
			cfg.Progress(a)
		}
	}
	s.finish()
	if ctx.Err() != nil {
		return s.res, fmt.Errorf("probe of %s stopped: %w", cfg.Addr, ctx.Err())
	}
	return s.res, nil
}

func withDefaults(cfg Config) Config {
	if cfg.Helo == "" {
		cfg.Helo = DefaultHelo
	}
	if cfg.From == "" {
		cfg.From = DefaultLocalPart
	}
	if cfg.To == "" {
		cfg.To = DefaultLocalPart
	}
	if cfg.Foreign == "" {
		cfg.Foreign = DefaultForeign
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	return cfg
}

// names are the values the variants are built from.
func (s *session) names() Names {
	n := Names{From: s.cfg.From, To: s.cfg.To, Foreign: s.cfg.Foreign, ServerName: s.res.ServerName, ServerIP: s.cfg.ServerIP}
	if n.ServerIP == "" {
		n.ServerIP = s.host
		if h, _, err := net.SplitHostPort(s.res.Address); err == nil {
			n.ServerIP = h
		}
	}
	if ip := net.ParseIP(n.ServerIP); ip != nil && ip.To4() == nil {
		n.ServerIP = "IPv6:" + n.ServerIP
	}
	if n.ServerName == "" {
		n.ServerName = "[" + n.ServerIP + "]"
	}
	if len(s.cfg.LocalDomains) > 0 {
		n.LocalDomain = strings.TrimPrefix(s.cfg.LocalDomains[0], ".")
	} else {
		n.LocalDomain = parentDomain(strings.Trim(n.ServerName, "[]"))
	}
	return n
}

// finish counts the verdicts.
func (s *session) finish() {
	r := s.res
	r.Accepted, r.Refused, r.NeedsAuth, r.Errors = 0, 0, 0, 0
	for _, a := range r.Attempts {
		switch a.Verdict {
		case Accepted:
			r.Accepted++
		case Refused:
			r.Refused++
		case NeedsAuth:
			r.NeedsAuth++
		default:
			r.Errors++
		}
	}
	switch {
	case r.Accepted > 0:
		r.Verdict = Open
	case r.Errors > 0 || len(r.Attempts) < len(VariantNames):
		r.Verdict = Untested
	default:
		r.Verdict = Closed
	}
}

// connect opens a connection: greeting, EHLO (HELO if refused), STARTTLS
// when offered, EHLO again.
func (s *session) connect(ctx context.Context) error {
	if s.res.Connections >= s.cfg.MaxConnections {
		return fmt.Errorf("%w (%d)", errConnLimit, s.cfg.MaxConnections)
	}
	s.res.Connections++
	var tconf *tls.Config
	if s.cfg.ImplicitTLS {
		tconf = s.tlsConf
	}
	c, err := dial(ctx, s.cfg.Addr, s.cfg.Source, s.cfg.Timeout, tconf)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			c.close(false)
		}
	}()
	greet, err := c.reply()
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if greet.Code != 220 {
		return fmt.Errorf("the server refused the session: %s", greet)
	}
	if s.res.Address == "" {
		s.res.Address = c.nc.RemoteAddr().String()
		s.res.Banner = greet.String()
	}
	ehlo, err := s.hello(c)
	if err != nil {
		return err
	}
	tlsMode := "none"
	if s.cfg.ImplicitTLS {
		tlsMode = "implicit"
	} else if !s.noSTLS && hasExtension(ehlo, "STARTTLS") {
		rep, err := c.cmd("STARTTLS")
		switch {
		case err != nil:
			return fmt.Errorf("STARTTLS: %w", err)
		case rep.Code != 220:
			s.note("STARTTLS offered but refused (%s); continuing in clear text", rep)
		default:
			if err := c.startTLS(ctx, s.tlsConf); err != nil {
				// Try again in clear text on the next connection.
				s.noSTLS = true
				s.note("%v; continuing in clear text", err)
				return s.connectAgain(ctx, c)
			}
			tlsMode = "starttls"
			if ehlo, err = s.hello(c); err != nil {
				return err
			}
		}
	}
	s.res.TLS = tlsMode
	if s.res.ServerName == "" {
		s.res.ServerName = s.cfg.ServerName
		if s.res.ServerName == "" {
			s.res.ServerName = serverName(ehlo, greet)
		}
	}
	for _, l := range ehlo.Lines {
		if f := strings.Fields(l); len(f) > 1 && strings.EqualFold(f[0], "AUTH") {
			s.res.Auth = strings.Join(f[1:], " ")
		}
	}
	ok = true
	s.c = c
	return nil
}

// connectAgain closes c and connects once more.
func (s *session) connectAgain(ctx context.Context, c *conn) error {
	c.close(false)
	return s.connect(ctx)
}

// hello sends EHLO, and HELO when EHLO is refused.
func (s *session) hello(c *conn) (Reply, error) {
	rep, err := c.cmd("EHLO " + s.cfg.Helo)
	if err != nil {
		return rep, fmt.Errorf("EHLO: %w", err)
	}
	if rep.Positive() {
		return rep, nil
	}
	rep, err = c.cmd("HELO " + s.cfg.Helo)
	if err != nil {
		return rep, fmt.Errorf("HELO: %w", err)
	}
	if !rep.Positive() {
		return rep, fmt.Errorf("the server refused EHLO and HELO: %s", rep)
	}
	return rep, nil
}

func (s *session) note(format string, args ...any) {
	if len(s.res.Notes) < 20 {
		s.res.Notes = append(s.res.Notes, fmt.Sprintf(format, args...))
	}
}

// try runs one variant, reconnecting once when the connection fails under it.
func (s *session) try(ctx context.Context, v Variant) Attempt {
	var a Attempt
	for round := 0; round < 2; round++ {
		if s.c == nil {
			if err := s.connect(ctx); err != nil {
				msg := Escape(err.Error(), maxShownRunes)
				if a.Error != "" {
					msg = a.Error + "; then " + msg
				}
				return Attempt{Variant: v, Commands: a.Commands, Verdict: Error, Error: msg}
			}
		}
		var err error
		a, err = s.attempt(v)
		if err == nil {
			return a
		}
		s.c.close(false)
		s.c = nil
		a.Verdict, a.Error = Error, Escape(err.Error(), maxShownRunes)
		if ctx.Err() != nil || round == 1 {
			return a
		}
		s.note("%s: %s; reconnecting to try again", v.Name, a.Error)
	}
	return a
}

// attempt sends MAIL FROM, RCPT TO (when the sender was accepted) and RSET.
// A non-nil error means the connection is no longer usable; the attempt is
// still decided when the RCPT TO reply arrived before it failed.
func (s *session) attempt(v Variant) (Attempt, error) {
	a := Attempt{Variant: v}
	from := v.From
	if v.AltFrom != "" && s.refusedFrom[from] {
		from = v.AltFrom
	}
	mail := "MAIL FROM:<" + from + ">"
	a.Commands = append(a.Commands, mail)
	rep, err := s.c.cmd(mail)
	if err != nil {
		return a, fmt.Errorf("MAIL FROM: %w", err)
	}
	if rep.Permanent() && classify(rep) == Refused && len(s.refusedFrom) < 100 {
		s.refusedFrom[from] = true
		if v.AltFrom != "" && from != v.AltFrom {
			// Try the recipient with a sender the server may take.
			refused := rep
			a.SenderRefused = &refused
			from = v.AltFrom
			mail = "MAIL FROM:<" + from + ">"
			a.Commands = append(a.Commands, mail)
			if rep, err = s.c.cmd(mail); err != nil {
				return a, fmt.Errorf("MAIL FROM: %w", err)
			}
		}
	}
	a.From = from
	a.MailReply = &rep
	if !rep.Positive() {
		a.Verdict = classify(rep)
		if rep.Code == 530 && strings.Contains(strings.ToUpper(rep.String()), "STARTTLS") {
			// "530 5.7.0 Must issue a STARTTLS command first": relaying was not tested.
			a.Verdict, a.Error = Error, "the server wants STARTTLS first: "+rep.String()
		}
	} else {
		rcpt := "RCPT TO:<" + v.To + ">"
		a.Commands = append(a.Commands, rcpt)
		rep, err := s.c.cmd(rcpt)
		if err != nil {
			return a, fmt.Errorf("RCPT TO: %w", err)
		}
		a.RcptReply = &rep
		a.Verdict = classify(rep)
	}
	a.Commands = append(a.Commands, "RSET")
	if rep, err := s.c.cmd("RSET"); err != nil || !rep.Positive() {
		// Decided, but the session is in an unknown state: start afresh.
		s.c.close(false)
		s.c = nil
		if err == nil {
			err = fmt.Errorf("RSET refused: %s", rep)
		}
		s.note("%s: RSET: %s; reconnecting for the next variant", v.Name, Escape(err.Error(), maxShownRunes))
	}
	return a, nil
}

// classify turns a reply to MAIL FROM or RCPT TO into a verdict.
func classify(r Reply) Verdict {
	if r.Positive() {
		return Accepted
	}
	text := strings.ToLower(strings.Join(r.Lines, " "))
	enh := ""
	if len(r.Lines) > 0 {
		enh, _, _ = strings.Cut(r.Lines[0], " ")
	}
	if r.Code == 530 || enh == "5.7.0" || enh == "5.7.57" || strings.Contains(text, "authenticat") {
		return NeedsAuth
	}
	return Refused
}

// hasExtension reports whether an EHLO reply lists ext.
func hasExtension(ehlo Reply, ext string) bool {
	for _, l := range ehlo.Lines[min(1, len(ehlo.Lines)):] {
		if f := strings.Fields(l); len(f) > 0 && strings.EqualFold(f[0], ext) {
			return true
		}
	}
	return false
}

// serverName is the host name the server gives in its EHLO reply or
// greeting, when it is a plausible host name.
func serverName(ehlo, greet Reply) string {
	for _, r := range []Reply{ehlo, greet} {
		if len(r.Lines) == 0 {
			continue
		}
		if f := strings.Fields(r.Lines[0]); len(f) > 0 && ValidHostName(f[0]) && strings.Contains(f[0], ".") {
			return f[0]
		}
	}
	return ""
}

// Addr joins host and port, with the default port for the mode (25, or 465
// for implicit TLS) when hostport has none.
func Addr(hostport string, implicitTLS bool) (string, error) {
	if hostport == "" {
		return "", errors.New("no host")
	}
	if _, port, err := net.SplitHostPort(hostport); err == nil {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return "", fmt.Errorf("port %q: not a number from 0 to 65535", port)
		}
		return hostport, nil
	}
	if strings.Count(hostport, ":") > 1 && !strings.HasPrefix(hostport, "[") {
		hostport = "[" + hostport + "]" // a bare IPv6 address
	}
	port := "25"
	if implicitTLS {
		port = "465"
	}
	return net.JoinHostPort(strings.Trim(hostport, "[]"), port), nil
}
