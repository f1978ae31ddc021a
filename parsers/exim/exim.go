// Package exim parses Exim 4 main log and reject log lines into
// parsers.Events, whether Exim wrote the file itself ("2026-11-24 05:58:48
// 1rKxyz-000abc-AB <= ...", optionally with milliseconds, a log_timezone
// offset and a [pid]) or syslog carried them ("Nov 24 05:58:48 host
// exim[123]: ...").
//
// A line with a message id and a flag (<= => -> >> *> == **) is about one
// message; "Completed" ends it; a line without an id is about a connection
// or a rejection. Parsing uses no regular expressions.
package exim

import (
	"strings"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/syslog"
)

// FormatName is the --format name of this parser.
const FormatName = "exim"

// Program is the Event.Program of lines Exim wrote itself.
const Program = "exim"

// Format describes the Exim format for the registry.
func Format() parsers.Format {
	return parsers.Format{
		Name:        FormatName,
		Description: "Exim 4 main log and reject log, written by Exim or carried by syslog",
		New:         func(o parsers.Options) parsers.Parser { return New(o) },
		Sniff:       Sniff,
		OwnsProgram: func(p string) bool { return p == Program || strings.HasPrefix(p, "exim") },
		Advice:      &Advice,
	}
}

// Advice is the next step for relaying on an Exim server.
var Advice = parsers.Advice{
	MTA:           "Exim",
	CloseRelay:    "Close the open relay now: relay_from_hosts must list only your own hosts, and acl_smtp_rcpt must deny recipients outside +local_domains and +relay_to_domains unless the client is in +relay_from_hosts or authenticated (exim -bP relay_from_hosts acl_smtp_rcpt; exim -bh CLIENT to test). Block CLIENT at the firewall, purge its queued spam (exiqgrep -i -f SENDER | xargs exim -Mrm, or exim -bp and exim -Mrm ID), then check this server's IP on the blocklists.",
	FindOut:       "Find out why CLIENT may relay: exim -bh CLIENT shows the ACL's verdict; check relay_from_hosts and acl_smtp_rcpt. If the client is legitimate, add it to relay_from_hosts (and to --known-clients); if not, close the relay, block CLIENT and purge its messages (exim -bp; exiqgrep -i -f SENDER | xargs exim -Mrm).",
	Spike:         "See who is sending (exim -bp | exiqsumm; exiwhat). If an account is compromised, disable it and reset its password; if a host, block it; then freeze or remove its queued mail (exiqgrep -i -f SENDER | xargs exim -Mf / -Mrm).",
	Probing:       "Nothing got through: every attempt was refused (relay not permitted). Keep it that way: acl_smtp_rcpt must keep its 'require message = relay not permitted' for domains outside +local_domains and +relay_to_domains (exim -bh with a scanner's address to test). A persistent scanner can be blocked (fail2ban's exim jail, or the firewall).",
	ProbeAccepted: "A client that was refused relaying is now accepted for a foreign recipient: a change opened the relay. Restore relay_from_hosts and the relay check in acl_smtp_rcpt now (exim -bP relay_from_hosts acl_smtp_rcpt; exim -bh CLIENT), block CLIENT, freeze and remove its queued mail (exim -bp; exim -Mf ID; exim -Mrm ID).",
	RelayTrick:    "Stop routing in the local part: remove the domains from percent_hack_domains (exim -bP percent_hack_domains) and keep the 'relay not permitted' check in acl_smtp_rcpt; remove what CLIENT queued (exim -bp; exim -Mrm ID). Test with relaywatch probe.",
	Blocklisted:   "Find and stop what got the server listed first (exim -bp | exiqsumm; eximstats on today's log; A= users far above their usual volume), remove the spam (exiqgrep -i -f SENDER | xargs exim -Mrm), then ask for delisting.",
	Compromised:   "Lock the account USER now (change its password, disable it in the authenticators' backend), freeze and remove its queued mail (exiqgrep -i -f SENDER | xargs exim -Mf, then exim -Mrm), and add a ratelimit condition per $authenticated_id in acl_smtp_rcpt.",
	QueueStorm:    "See what fills the queue (exim -bp | exiqsumm; exiqgrep -z for frozen bounces): a compromised sender, a relayed spam run or backscatter. Remove the junk (exiqgrep -i -f '<>' | xargs exim -Mrm for backscatter), and reject unknown recipients at RCPT (verify = recipient) so no bounce is ever owed.",
}

// Parser parses the lines of one Exim log stream.
type Parser struct {
	loc    *time.Location
	header syslog.Parser
	h      syslog.Header

	lastStamp string
	lastTime  time.Time
}

var (
	_ parsers.Parser     = (*Parser)(nil)
	_ parsers.Concurrent = (*Parser)(nil)
)

// New returns a parser for one stream. Timestamps without an offset are in
// o.Location.
func New(o parsers.Options) *Parser {
	loc := o.Location
	if loc == nil {
		loc = time.Local
	}
	year := o.Year
	if year == 0 {
		year = o.ModTime.Year()
	}
	return &Parser{loc: loc, header: *syslog.NewParser(year, loc)}
}

// ParsesIndependently reports true: no state is kept between lines.
func (p *Parser) ParsesIndependently() bool { return true }

// Parse implements parsers.Parser.
func (p *Parser) Parse(line string, dst []parsers.Event) ([]parsers.Event, parsers.Result) {
	// The event is built in place at the end of dst, and dropped again if
	// the line yields none: no copy of the (large) Event per line.
	dst = append(dst, parsers.Event{Line: line, Program: Program})
	e := &dst[len(dst)-1]
	body, ok := p.stamp(line, e)
	if !ok {
		// Syslog-carried: "Nov 24 05:58:48 host exim[123]: ...".
		if !p.header.Parse(line, &p.h) {
			// "host exim[pid]: 2021-07-17 23:20:49 ..." (syslog without a stamp).
			if sp := strings.IndexByte(line, ' '); sp > 0 {
				tag := line[sp+1:]
				if c := strings.Index(tag, ": "); c > 0 && IsEximProgram(stripPID(tag[:c])) {
					if b, ok := p.stamp(tag[c+2:], e); ok {
						e.Host, e.Program = line[:sp], stripPID(tag[:c])
						return p.finish(e, b, dst)
					}
				}
			}
			if rejectLogContinuation(line) {
				return dst[:len(dst)-1], parsers.Irrelevant
			}
			return dst[:len(dst)-1], parsers.Malformed
		}
		if !IsEximProgram(p.h.Program) {
			return dst[:len(dst)-1], parsers.Irrelevant
		}
		e.Time, e.YearGuessed, e.Host, e.Program = p.h.Time, p.h.YearGuessed, p.h.Host, p.h.Program
		body = p.h.Message
		// Some setups log Exim's own stamp inside the syslog message.
		saved := e.Time
		if b, ok := p.stamp(body, e); ok {
			e.YearGuessed, body = false, b
		} else {
			e.Time = saved
		}
	}
	return p.finish(e, body, dst)
}

// finish parses the body after the stamp into e, the last event of dst, and
// drops it again if the line yields no event.
func (p *Parser) finish(e *parsers.Event, body string, dst []parsers.Event) ([]parsers.Event, parsers.Result) {
	// "[pid] " (log_selector +pid).
	if len(body) > 2 && body[0] == '[' {
		if rb := strings.IndexByte(body, ']'); rb > 1 && allDigits(body[1:rb]) && rb+1 < len(body) && body[rb+1] == ' ' {
			body = body[rb+2:]
		}
	}
	r := parseBody(e, body)
	if r != parsers.Parsed {
		dst = dst[:len(dst)-1]
	}
	return dst, r
}

// rejectLogContinuation recognizes the lines the reject log writes after a
// rejection: the message's headers, each with a one-letter flag
// ("P Received: from ...", "F From: ..."), their continuations (indented),
// and "Envelope-from: <...>" / "Envelope-to: <...>".
func rejectLogContinuation(line string) bool {
	if line == "" {
		return false
	}
	if line[0] == ' ' || line[0] == '\t' {
		return true
	}
	if strings.HasPrefix(line, "Envelope-") || strings.HasPrefix(line, "Recipients:") {
		return true
	}
	// Flag letter(s), a space, then a header name and a colon.
	if sp := strings.IndexByte(line, ' '); sp >= 1 && sp <= 2 {
		name := line[sp+1:]
		if c := strings.IndexByte(name, ':'); c > 0 {
			for i := 0; i < c; i++ {
				if ch := name[i]; !(isAlnum(ch) || ch == '-') {
					return false
				}
			}
			return true
		}
	}
	return false
}

// stamp parses "YYYY-MM-DD HH:MM:SS[.mmm][ +hhmm] " and, in the form some
// syslog setups produce, a following "host exim[pid]: ". It returns the rest.
func (p *Parser) stamp(line string, e *parsers.Event) (string, bool) {
	if len(line) < 20 || line[4] != '-' || line[7] != '-' || line[10] != ' ' || line[13] != ':' || line[16] != ':' {
		return "", false
	}
	i := 19
	millis := -1
	if i+4 <= len(line) && line[i] == '.' && isDigit(line[i+1]) && isDigit(line[i+2]) && isDigit(line[i+3]) {
		millis = int(line[i+1]-'0')*100 + int(line[i+2]-'0')*10 + int(line[i+3]-'0')
		i += 4
	}
	if i >= len(line) || line[i] != ' ' {
		return "", false
	}
	loc := p.loc
	if i+6 <= len(line) && (line[i+1] == '+' || line[i+1] == '-') && allDigits(line[i+2:i+6]) && (i+6 == len(line) || line[i+6] == ' ') {
		hh := int(line[i+2]-'0')*10 + int(line[i+3]-'0')
		mm := int(line[i+4]-'0')*10 + int(line[i+5]-'0')
		secs := hh*3600 + mm*60
		if line[i+1] == '-' {
			secs = -secs
		}
		loc = time.FixedZone("", secs)
		i += 6
	}
	key := line[:19]
	var t time.Time
	if key == p.lastStamp && loc == p.loc {
		t = p.lastTime
	} else {
		y, ok1 := num(line[0:4])
		mo, ok2 := num(line[5:7])
		d, ok3 := num(line[8:10])
		hh, ok4 := num(line[11:13])
		mi, ok5 := num(line[14:16])
		ss, ok6 := num(line[17:19])
		if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > 31 || hh > 23 || mi > 59 || ss > 60 {
			return "", false
		}
		t = time.Date(y, time.Month(mo), d, hh, mi, ss, 0, loc)
		if loc == p.loc {
			p.lastStamp, p.lastTime = strings.Clone(key), t
		}
	}
	if millis >= 0 {
		t = t.Add(time.Duration(millis) * time.Millisecond)
	}
	e.Time = t
	rest := line[i:]
	if len(rest) > 0 {
		rest = rest[1:]
	}
	// "2019-10-22 03:39:17 mx1.fqdn.local exim[29786]: ..."
	if sp := strings.IndexByte(rest, ' '); sp > 0 && strings.HasPrefix(rest[sp+1:], "exim") {
		tag := rest[sp+1:]
		if c := strings.Index(tag, ": "); c > 0 && strings.IndexByte(tag[:c], ' ') < 0 && IsEximProgram(stripPID(tag[:c])) {
			e.Host = rest[:sp]
			rest = tag[c+2:]
		}
	}
	return rest, true
}

func stripPID(tag string) string {
	if lb := strings.IndexByte(tag, '['); lb > 0 {
		return tag[:lb]
	}
	return tag
}

// IsEximProgram reports whether a syslog program name is Exim's.
func IsEximProgram(prog string) bool {
	return prog == "exim" || prog == "exim4" || strings.HasPrefix(prog, "exim-") || strings.HasPrefix(prog, "exim4-")
}

// Sniff counts the lines that look like Exim's: its own timestamp followed
// by a message id or a known phrase, or a syslog line from exim.
func Sniff(lines []string) int {
	p := New(parsers.Options{Year: 2000, Location: time.UTC})
	n := 0
	for _, l := range lines {
		var e parsers.Event
		if body, ok := p.stamp(l, &e); ok {
			if len(body) > 2 && body[0] == '[' {
				if rb := strings.IndexByte(body, ']'); rb > 0 && rb+2 <= len(body) {
					body = body[rb+2:]
				}
			}
			if _, _, ok := messageID(body); ok || looksExim(body) {
				n++
			}
			continue
		}
		if p.header.Parse(l, &p.h) && IsEximProgram(p.h.Program) {
			n++
		}
	}
	return n
}

func looksExim(body string) bool {
	for _, s := range []string{"SMTP connection from ", "H=", "Start queue run", "End queue run", "exim ", "SMTP call from", "SMTP protocol", "no host name found", "no IP address found", "no MAIL in SMTP", "rejected "} {
		if strings.HasPrefix(body, s) {
			return true
		}
	}
	return strings.Contains(body, " authenticator failed ") || strings.Contains(body, " rejected ")
}

// messageID splits "ID rest" where ID is an Exim message id: the old form
// 1rKxyz-000abc-AB (6-6-2) or the 4.97+ form 10HmaX-000000005vi-0000
// (6-11-4), base-62 characters.
func messageID(s string) (id, rest string, ok bool) {
	var n int
	switch {
	case len(s) >= 16 && s[6] == '-' && s[13] == '-' && (len(s) == 16 || s[16] == ' '):
		n = 16
	case len(s) >= 23 && s[6] == '-' && s[18] == '-' && (len(s) == 23 || s[23] == ' '):
		n = 23
	default:
		return "", s, false
	}
	for i := 0; i < n; i++ {
		if c := s[i]; c != '-' && !isAlnum(c) {
			return "", s, false
		}
	}
	if n < len(s) {
		return s[:n], s[n+1:], true
	}
	return s[:n], "", true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

func num(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, s != ""
}
