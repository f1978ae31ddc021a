// Package postfix parses Postfix log lines (carried by syslog, journald or
// Postfix's own maillog_file) into parsers.Events.
//
// The syslog tag names instance, service and daemon: "postfix/smtpd",
// "postfix-out/smtp", "postfix/submission/smtpd", "postfix/10025/smtpd". The
// last path element is the daemon and decides how the message is read; the
// tag must start with "postfix" (any syslog_name of the form postfix,
// postfix-<name>).
//
// Parsing uses no regular expressions and allocates nothing per line beyond
// the events appended to the caller's slice.
package postfix

import (
	"strings"

	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/syslog"
)

// FormatName is the --format name of this parser.
const FormatName = "postfix"

// Format describes the Postfix format for the registry.
func Format() parsers.Format {
	return parsers.Format{
		Name:        FormatName,
		Description: "Postfix via syslog (RFC 3164, RFC 5424, RFC 3339), journald short-iso or maillog_file",
		New:         func(o parsers.Options) parsers.Parser { return New(o) },
		Sniff:       Sniff,
		OwnsProgram: func(p string) bool { return IsPostfixProgram(p) || IsAmavisProgram(p) },
		Advice:      &Advice,
	}
}

// Advice is the next step for relaying on a Postfix server.
var Advice = parsers.Advice{
	MTA:           "Postfix",
	CloseRelay:    "Close the open relay now: smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination, and a mynetworks as narrow as your own hosts (postconf -n | grep -E 'mynetworks|relay'; postfix reload). Block CLIENT at the firewall, purge its queued spam (postqueue -j | jq -r 'select(.client_address == \"CLIENT\") | .queue_id' | postsuper -d -, or postqueue -p and postsuper -d QUEUEID), then check this server's IP on the blocklists.",
	FindOut:       "Find out why CLIENT may relay: postconf smtpd_relay_restrictions smtpd_recipient_restrictions mynetworks. If the client is legitimate, add it to mynetworks (and to --known-clients); if not, close the relay, block CLIENT and purge its messages (postqueue -p; postsuper -d QUEUEID).",
	Spike:         "See who is sending (postqueue -p | tail; qshape deferred). If an account is compromised, disable it and reset its password; if a host, block it; then hold or purge its queued mail (postsuper -h / -d QUEUEID).",
	Probing:       "Nothing got through: every attempt was refused (Relay access denied). Keep it that way: smtpd_relay_restrictions must keep reject_unauth_destination (postconf smtpd_relay_restrictions). A persistent scanner can be blocked (fail2ban's postfix jail, postscreen, or the firewall).",
	ProbeAccepted: "A client that was refused relaying is now accepted for a foreign recipient: a change opened the relay. Restore smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination and a narrow mynetworks now (postconf -n | grep -E 'mynetworks|relay'; postfix reload), block CLIENT, hold and purge its queued mail (postqueue -j | jq -r 'select(.client_address == \"CLIENT\") | .queue_id' | postsuper -d -).",
	RelayTrick:    "Stop routing in the local part: set allow_percent_hack = no and swap_bangpath = no (postconf -e; postfix reload), keep reject_unauth_destination in smtpd_relay_restrictions, and purge what CLIENT queued (postqueue -p; postsuper -d QUEUEID). Test with relaywatch probe.",
	Blocklisted:   "Find and stop what got the server listed first (qshape deferred; postqueue -p; grep sasl_username in the log for a sender far above its usual volume), purge the spam (postsuper -d), then ask for delisting.",
	Compromised:   "Lock the account USER now (change its password; in Dovecot/Cyrus SASL disable it), hold or purge its queued mail (postqueue -j | jq -r 'select(.sender == \"SENDER\") | .queue_id' | postsuper -h -, then postsuper -d), and consider smtpd_client_message_rate_limit and a per-user rate limit (policyd).",
	QueueStorm:    "See what fills the queue (qshape deferred; qshape -s deferred; postqueue -p | tail): a compromised sender, a relayed spam run or backscatter. Purge the junk (postsuper -d), and against backscatter reject unknown recipients at RCPT (smtpd_reject_unlisted_recipient = yes, relay_recipient_maps on a gateway).",
}

// Parser parses the lines of one Postfix log stream.
type Parser struct {
	header syslog.Parser
	h      syslog.Header
}

var (
	_ parsers.Parser     = (*Parser)(nil)
	_ parsers.Concurrent = (*Parser)(nil)
)

// New returns a parser for one stream. RFC 3164 timestamps get the
// provisional year o.Year (or o.ModTime's year) in zone o.Location.
func New(o parsers.Options) *Parser {
	year := o.Year
	if year == 0 {
		year = o.ModTime.Year()
	}
	p := &Parser{}
	p.header = *syslog.NewParser(year, o.Location)
	return p
}

// ParsesIndependently reports true: the parser keeps no state between lines
// (the year of RFC 3164 stamps is fixed later, in order, by syslog.YearTracker).
func (p *Parser) ParsesIndependently() bool { return true }

// Parse implements parsers.Parser.
func (p *Parser) Parse(line string, dst []parsers.Event) ([]parsers.Event, parsers.Result) {
	h := &p.h
	if !p.header.Parse(line, h) {
		return dst, parsers.Malformed
	}
	d := ""
	switch {
	case IsPostfixProgram(h.Program):
		d = daemon(h.Program)
	case IsAmavisProgram(h.Program):
		d = "amavis"
	default:
		return dst, parsers.Irrelevant
	}
	dst = append(dst, parsers.Event{})
	e := &dst[len(dst)-1]
	e.Time, e.YearGuessed, e.Host, e.Program, e.Line = h.Time, h.YearGuessed, h.Host, h.Program, line
	r := parseMessage(e, d, h.Message)
	if r != parsers.Parsed {
		dst = dst[:len(dst)-1]
	}
	return dst, r
}

// ParseMessage parses the message part of a line (what follows
// "program[pid]: ") logged under the given syslog program name, for logs that
// arrive without a syslog header.
func ParseMessage(program, message string, dst []parsers.Event) ([]parsers.Event, parsers.Result) {
	dst = append(dst, parsers.Event{Program: program, Line: message})
	e := &dst[len(dst)-1]
	d := daemon(program)
	if IsAmavisProgram(program) {
		d = "amavis"
	}
	r := parseMessage(e, d, message)
	if r != parsers.Parsed {
		dst = dst[:len(dst)-1]
	}
	return dst, r
}

// IsPostfixProgram reports whether a syslog program name is Postfix's:
// "postfix/..." or "postfix-<instance>/...".
func IsPostfixProgram(prog string) bool {
	if !strings.HasPrefix(prog, "postfix") || len(prog) < 9 {
		return false
	}
	return prog[7] == '/' || prog[7] == '-'
}

// IsAmavisProgram reports whether a syslog program name is amavisd-new's
// ("amavis", "amavisd", "amavisd-new"), the content filter whose lines
// Postfix logs often carry.
func IsAmavisProgram(prog string) bool {
	switch prog {
	case "amavis", "amavisd", "amavisd-new":
		return true
	}
	return false
}

// Instance returns the instance part of a program name, "postfix" for
// "postfix/submission/smtpd" and "postfix-out" for "postfix-out/smtp". Queue
// ids are unique only within an instance.
func Instance(prog string) string {
	if i := strings.IndexByte(prog, '/'); i >= 0 {
		return prog[:i]
	}
	return prog
}

// isMailbox tells deliveries into a mailbox on this system from deliveries
// to another host.
func isMailbox(daemon, relay string) bool {
	switch daemon {
	case "local", "virtual", "lmtp":
		return true
	case "pipe":
		switch relay {
		case "dovecot", "maildrop", "cyrus", "procmail", "deliver":
			return true
		}
	}
	return false
}

func daemon(prog string) string {
	if i := strings.LastIndexByte(prog, '/'); i >= 0 {
		return prog[i+1:]
	}
	return prog
}

// Sniff counts the lines that carry a syslog header and a Postfix program.
func Sniff(lines []string) int {
	sp := syslog.NewParser(2000, nil)
	var h syslog.Header
	n := 0
	for _, l := range lines {
		if sp.Parse(l, &h) && IsPostfixProgram(h.Program) {
			n++
		}
	}
	return n
}

func parseMessage(e *parsers.Event, daemon, msg string) parsers.Result {
	switch daemon {
	case "smtpd":
		return parseSMTPD(e, msg)
	case "postscreen":
		return parsePostscreen(e, msg)
	case "cleanup":
		return parseCleanup(e, msg)
	case "qmgr", "oqmgr":
		return parseQmgr(e, msg)
	case "smtp", "lmtp", "local", "virtual", "pipe", "error", "discard", "retry":
		r := parseDelivery(e, msg)
		if r == parsers.Parsed {
			e.Mailbox = isMailbox(daemon, e.Relay)
		}
		return r
	case "bounce":
		return parseBounce(e, msg)
	case "amavis":
		return parseAmavis(e, msg)
	case "pickup":
		return parsePickup(e, msg)
	case "postsuper":
		if qid, rest, ok := queueID(msg); ok && rest == "removed" {
			e.QueueID, e.Kind = qid, parsers.KindRemoved
			return parsers.Parsed
		}
		return parsers.Irrelevant
	}
	// anvil, tlsproxy, dnsblog, scache, master, verify, trivial-rewrite,
	// tls_features, postdrop, sendmail, postqueue, proxymap, flush, spawn,
	// showq, postlog, policy servers run by spawn, ...: nothing relaywatch uses.
	return parsers.Irrelevant
}

// queueID splits "QUEUEID: rest". Short ids are hex, long ids (enable_long_queue_ids)
// use [0-9B-Zb-z]; NOQUEUE is returned as is.
func queueID(msg string) (id, rest string, ok bool) {
	i := 0
	for i < len(msg) && i <= 20 && isAlnum(msg[i]) {
		i++
	}
	if i < 5 || i > 20 || i+1 >= len(msg) || msg[i] != ':' || msg[i+1] != ' ' {
		return "", msg, false
	}
	return msg[:i], msg[i+2:], true
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// client parses "name[ip]" or "name[ip]:port" or "[ip]:port" at the start of
// s and returns the rest after it.
func client(s string) (name, ip, rest string, ok bool) {
	lb := strings.IndexByte(s, '[')
	if lb < 0 {
		return "", "", s, false
	}
	rb := strings.IndexByte(s[lb:], ']')
	if rb < 0 {
		return "", "", s, false
	}
	rb += lb
	name, ip, rest = s[:lb], s[lb+1:rb], s[rb+1:]
	if strings.IndexByte(name, ' ') >= 0 {
		return "", "", s, false
	}
	if len(rest) > 1 && rest[0] == ':' && rest[1] >= '0' && rest[1] <= '9' {
		j := 1
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		rest = rest[j:]
	}
	return name, ip, rest, true
}

func setClient(e *parsers.Event, s string) (rest string, ok bool) {
	var name, ip string
	name, ip, rest, ok = client(s)
	if ok {
		e.ClientName, e.ClientIP = name, ip
	}
	return rest, ok
}

// angle returns the content of "<...>" at the start of s and the rest.
// Without angle brackets it takes s up to the first comma or space.
//
// The value ends at a '>' followed by the end, a space, a comma, a colon or a
// semicolon, so that an address such as "<!channel>@evil.example" (chosen
// by a spammer) is kept whole.
func angle(s string) (val, rest string) {
	if strings.HasPrefix(s, "<") {
		from := 1
		for {
			j := strings.IndexByte(s[from:], '>')
			if j < 0 {
				return s[1:], ""
			}
			j += from
			if j+1 == len(s) || strings.IndexByte(" ,;:", s[j+1]) >= 0 {
				return s[1:j], s[j+1:]
			}
			from = j + 1
		}
	}
	j := strings.IndexAny(s, ", ")
	if j < 0 {
		return s, ""
	}
	return s[:j], s[j:]
}

// replyCode parses "550 5.7.1 text" or "5.7.1 text" or "text". It returns
// the code (0 if absent), the enhanced status code and the text.
func replyCode(s string) (code int, dsn, text string) {
	if len(s) >= 4 && s[0] >= '2' && s[0] <= '5' && isDigit(s[1]) && isDigit(s[2]) && (s[3] == ' ' || s[3] == '-') {
		code = int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0')
		s = s[4:]
	}
	if len(s) >= 6 && s[0] >= '2' && s[0] <= '5' && s[1] == '.' {
		j := 2
		for j < len(s) && (isDigit(s[j]) || s[j] == '.') {
			j++
		}
		if j < len(s) && s[j] == ' ' && strings.Count(s[:j], ".") == 2 {
			dsn, s = s[:j], s[j+1:]
		}
	}
	return code, dsn, s
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func atoi(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) || n > 1<<50 {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}
