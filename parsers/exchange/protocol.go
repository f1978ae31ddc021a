package exchange

import (
	"container/list"
	"strconv"
	"strings"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
)

// SMTPReceive describes the SMTP protocol log format for the registry.
func SMTPReceive() parsers.Format {
	return parsers.Format{
		Name:        FormatSMTPReceive,
		Description: "Microsoft Exchange SMTP Receive (RECV*.LOG) and Send (SEND*.LOG) protocol logs",
		New:         func(o parsers.Options) parsers.Parser { return NewSMTPProtocol(o) },
		Sniff:       SniffSMTPProtocol,
		OwnsProgram: ownsProgram,
		Advice:      &Advice,
	}
}

// Advice is the next step for relaying on an Exchange server.
var Advice = parsers.Advice{
	MTA:           "Exchange",
	CloseRelay:    "Close the open relay now: find the receive connector that let CLIENT relay (Get-ReceiveConnector | Get-ADPermission | Where-Object { $_.ExtendedRights -like '*ms-Exch-SMTP-Accept-Any-Recipient*' -and $_.User -like '*ANONYMOUS LOGON*' }) and remove that permission (Remove-ADPermission), or narrow its RemoteIPRanges to the hosts that may relay. Block CLIENT at the firewall, remove its queued spam (Get-Queue; Get-Message -Filter \"FromAddress -eq 'SENDER'\" | Remove-Message -WithNDR $false), then check this server's IP on the blocklists.",
	FindOut:       "Find out why CLIENT may relay: Get-ReceiveConnector | Format-List Name,RemoteIPRanges,PermissionGroups, and check which connector grants ms-Exch-SMTP-Accept-Any-Recipient to Anonymous Logon. If the client is legitimate, give it a dedicated relay connector limited to its address (and --known-clients); if not, remove the permission, block CLIENT and remove its messages (Get-Queue; Get-Message | Remove-Message).",
	Spike:         "See who is sending (Get-Queue; Get-Message -Queue QUEUE | Group-Object FromAddress). If a mailbox is compromised, disable it and reset its password; if a host, block it; then suspend or remove its queued mail (Suspend-Message / Remove-Message).",
	Probing:       "Nothing got through: every attempt was refused (550 5.7.54 Unable to relay). Keep it that way: no receive connector may grant ms-Exch-SMTP-Accept-Any-Recipient to Anonymous Logon for more than your own relay hosts. A persistent scanner can be blocked at the firewall.",
	ProbeAccepted: "A client that was refused relaying is now accepted for a foreign recipient: a change opened the relay. Find the receive connector that now grants ms-Exch-SMTP-Accept-Any-Recipient to Anonymous Logon (Get-ReceiveConnector | Get-ADPermission) and remove it (Remove-ADPermission), block CLIENT, and remove its queued mail (Get-Queue; Get-Message | Remove-Message).",
	RelayTrick:    "A recipient in routing syntax was accepted: check the receive connector that accepted it (Get-ReceiveConnector | Format-List Name,PermissionGroups,RemoteIPRanges) and the transport rules that rewrite recipients, remove the accepted mail (Get-Message | Remove-Message), and test with relaywatch probe.",
	Blocklisted:   "Find and stop what got the server listed first (Get-MessageTrackingLog -EventId SEND -Start (Get-Date).AddHours(-6) | Group-Object Sender | Sort-Object Count -Descending; Get-Queue), remove the spam (Remove-Message), then ask for delisting.",
	Compromised:   "Lock the mailbox USER now (reset its password, Set-CASMailbox -SmtpClientAuthenticationDisabled $true, revoke its sessions), remove its queued mail (Get-Message -Filter \"FromAddress -eq 'SENDER'\" | Remove-Message -WithNDR $false), and review its inbox rules for forwarding.",
	QueueStorm:    "See what fills the queues (Get-Queue | Sort-Object MessageCount -Descending; Get-Message -Queue QUEUE | Group-Object FromAddress): a compromised mailbox, a relayed spam run or backscatter. Remove the junk (Remove-Message), and enable recipient filtering so unknown recipients are refused at RCPT.",
}

// ownsProgram tells the Program of Exchange's events.
func ownsProgram(p string) bool { return strings.HasPrefix(p, "exchange/") }

// MaxSessions bounds the SMTP sessions a protocol log parser follows; the
// least recently active is forgotten beyond it, as is one idle for
// SessionTTL.
const (
	MaxSessions = 10000
	SessionTTL  = 30 * time.Minute
)

// SMTPProtocolParser rebuilds SMTP sessions from a protocol log: each row
// is one command, reply or note of a session, keyed by session-id and
// ordered by sequence-number.
type SMTPProtocolParser struct {
	hdr      header
	cols     protoCols
	buf      [maxFields]string
	sessions map[string]*list.Element
	order    *list.List // of *session, least recently active first
	// Evicted counts sessions dropped by the bounds.
	Evicted uint64
}

var _ parsers.Parser = (*SMTPProtocolParser)(nil)

type protoCols struct {
	n, dateTime, connector, session, local, remote, event, data, context int
}

func indexProtoCols(fields []string) protoCols {
	idx := func(name string) int {
		for i, f := range fields {
			if f == name {
				return i
			}
		}
		return -1
	}
	return protoCols{n: len(fields), dateTime: idx("date-time"), connector: idx("connector-id"), session: idx("session-id"),
		local: idx("local-endpoint"), remote: idx("remote-endpoint"), event: idx("event"), data: idx("data"), context: idx("context")}
}

// session is what the parser knows of one SMTP session.
type session struct {
	id, clientIP, helo, connector string
	authed                        bool
	authUser                      string
	authFailed                    bool // a failure was reported for the current AUTH
	mailFrom                      string
	fromSet                       bool
	txn                           int
	accepted                      bool // the current transaction has an accepted recipient
	lastCmd, lastRcpt             string
	anyRecipient                  bool // Set Session Permissions included SMTPAcceptAnyRecipient
	seen                          time.Time
}

// NewSMTPProtocol returns a parser for one protocol log stream.
func NewSMTPProtocol(parsers.Options) *SMTPProtocolParser {
	return &SMTPProtocolParser{sessions: map[string]*list.Element{}, order: list.New()}
}

func (p *SMTPProtocolParser) session(id, remote, connector string, t time.Time, create bool) *session {
	if el, ok := p.sessions[id]; ok {
		p.order.MoveToBack(el)
		s := el.Value.(*session)
		s.seen = t
		return s
	}
	if !create {
		return nil
	}
	// Forget idle and surplus sessions.
	for p.order.Len() > 0 {
		front := p.order.Front()
		old := front.Value.(*session)
		if p.order.Len() < MaxSessions && t.Sub(old.seen) < SessionTTL {
			break
		}
		p.order.Remove(front)
		delete(p.sessions, old.id)
		p.Evicted++
	}
	s := &session{id: strings.Clone(id), clientIP: strings.Clone(hostPort(remote)), connector: strings.Clone(connector), seen: t}
	p.sessions[s.id] = p.order.PushBack(s)
	return s
}

func (p *SMTPProtocolParser) drop(id string) {
	if el, ok := p.sessions[id]; ok {
		p.order.Remove(el)
		delete(p.sessions, id)
	}
}

// Parse implements parsers.Parser.
func (p *SMTPProtocolParser) Parse(line string, dst []parsers.Event) ([]parsers.Event, parsers.Result) {
	line = stripBOM(line)
	if p.hdr.parseHeader(line) {
		if strings.HasPrefix(line, "#Fields:") {
			p.cols = indexProtoCols(p.hdr.fields)
		}
		return dst, parsers.Irrelevant
	}
	if p.cols.n == 0 {
		p.cols = indexProtoCols(protocolFields)
	}
	n := splitCSV(line, p.buf[:])
	f := p.buf[:n]
	get := func(i int) string {
		if i < 0 || i >= n {
			return ""
		}
		return f[i]
	}
	if n < p.cols.n-1 {
		return dst, parsers.Malformed
	}
	t, ok := parseTime(get(p.cols.dateTime))
	if !ok {
		return dst, parsers.Malformed
	}
	program := ProgramSMTPReceive
	if strings.Contains(p.hdr.logType, "Send") {
		program = ProgramSMTPSend
	}
	id, remote, ev, data, ctx := get(p.cols.session), get(p.cols.remote), get(p.cols.event), get(p.cols.data), get(p.cols.context)
	if program == ProgramSMTPSend {
		// Our outbound sessions: the remote side is the next hop, not a
		// client. Recognized, nothing relaywatch uses yet.
		switch ev {
		case "+", "-", "<", ">", "*":
			return dst, parsers.Irrelevant
		}
		return dst, parsers.Malformed
	}
	base := parsers.Event{Time: t, Program: program, Line: line}
	switch ev {
	case "+":
		s := p.session(id, remote, get(p.cols.connector), t, true)
		e := base
		e.Kind, e.ClientIP, e.Detail = parsers.KindConnect, s.clientIP, s.connector
		return append(dst, e), parsers.Parsed
	case "-":
		s := p.session(id, remote, get(p.cols.connector), t, false)
		p.drop(id)
		if s == nil {
			return dst, parsers.Irrelevant
		}
		e := base
		e.Kind, e.ClientIP, e.Helo = parsers.KindDisconnect, s.clientIP, s.helo
		return append(dst, e), parsers.Parsed
	case "<":
		s := p.session(id, remote, get(p.cols.connector), t, true)
		return p.command(dst, s, data)
	case ">":
		s := p.session(id, remote, get(p.cols.connector), t, true)
		return p.reply(dst, base, s, data)
	case "*":
		s := p.session(id, remote, get(p.cols.connector), t, true)
		return p.note(dst, base, s, data, ctx)
	}
	return dst, parsers.Malformed
}

// command follows the client's commands.
func (p *SMTPProtocolParser) command(dst []parsers.Event, s *session, data string) ([]parsers.Event, parsers.Result) {
	verb := data
	if sp := strings.IndexByte(data, ' '); sp >= 0 {
		verb = data[:sp]
	}
	switch strings.ToUpper(verb) {
	case "EHLO", "HELO":
		s.helo = strings.Clone(strings.TrimSpace(data[len(verb):]))
		s.lastCmd = "EHLO"
	case "AUTH":
		s.lastCmd, s.authFailed = "AUTH", false
	case "MAIL":
		s.lastCmd = "MAIL"
		s.txn++
		s.accepted = false
		s.mailFrom, s.fromSet = strings.Clone(angleAddr(data)), true
	case "RCPT":
		s.lastCmd = "RCPT"
		s.lastRcpt = strings.Clone(angleAddr(data))
	case "RSET":
		s.lastCmd, s.fromSet, s.mailFrom = "RSET", false, ""
	default:
		// A copy: the session outlives the line (ToUpper may return its input).
		s.lastCmd = strings.Clone(strings.ToUpper(verb))
	}
	return dst, parsers.Irrelevant
}

// reply reads the server's replies: to RCPT (accepted or refused, which is
// where relaying shows) and to AUTH.
func (p *SMTPProtocolParser) reply(dst []parsers.Event, base parsers.Event, s *session, data string) ([]parsers.Event, parsers.Result) {
	code := replyCode(data)
	cmd := s.lastCmd
	switch {
	case code == 535:
		cmd = "AUTH" // only ever an answer to AUTH, even if the session began before this log
	case strings.Contains(data, "5.7.54"):
		cmd = "RCPT" // "Unable to relay recipient in non-accepted domain"
	}
	switch cmd {
	case "RCPT":
		if code == 250 || code == 251 {
			// An accepted recipient: the message will be relayed or
			// delivered. Which one is for detection to decide.
			txnID := s.id + "-" + strconv.Itoa(s.txn)
			if !s.accepted {
				s.accepted = true
				e := base
				e.Kind, e.QueueID = parsers.KindAccept, txnID
				e.ClientIP, e.Helo, e.AuthUser = s.clientIP, s.helo, s.authUser
				e.From, e.FromSet = s.mailFrom, s.fromSet
				e.Detail = s.connector
				if s.anyRecipient && !s.authed {
					e.Detail = s.connector + " (anonymous session with SMTPAcceptAnyRecipient)"
				}
				dst = append(dst, e)
			}
			e := base
			e.Kind, e.QueueID, e.To, e.Status, e.Code, e.Reply = parsers.KindDelivery, txnID, s.lastRcpt, parsers.StatusAccepted, code, data
			return append(dst, e), parsers.Parsed
		}
		if code >= 400 {
			e := base
			e.Kind, e.Action, e.Stage = parsers.KindReject, "reject", "RCPT"
			if code < 500 {
				e.Action = "tempfail"
			}
			e.ClientIP, e.Helo, e.AuthUser = s.clientIP, s.helo, s.authUser
			e.From, e.FromSet, e.To, e.Code, e.Reply = s.mailFrom, s.fromSet, s.lastRcpt, code, data
			if f := strings.Fields(data); len(f) > 1 && strings.Count(f[1], ".") == 2 {
				e.DSN = f[1]
			}
			e.RelayDenied = e.DSN == "5.7.54" || strings.Contains(data, "Unable to relay")
			return append(dst, e), parsers.Parsed
		}
	case "AUTH":
		switch {
		case code == 235:
			s.authed = true
			if s.authUser == "" {
				s.authUser = "(authenticated)"
			}
		case code == 535 && !s.authFailed:
			s.authFailed = true
			e := base
			e.Kind, e.ClientIP, e.Helo, e.Code, e.Reply = parsers.KindAuthFailure, s.clientIP, s.helo, code, data
			return append(dst, e), parsers.Parsed
		}
	}
	return dst, parsers.Irrelevant
}

// note reads '*' rows: session permissions, authentication results.
func (p *SMTPProtocolParser) note(dst []parsers.Event, base parsers.Event, s *session, data, ctx string) ([]parsers.Event, parsers.Result) {
	switch {
	case ctx == "Set Session Permissions":
		s.anyRecipient = strings.Contains(data, "SMTPAcceptAnyRecipient")
	case ctx == "authenticated" && data != "":
		s.authed, s.authUser = true, strings.Clone(data)
	case strings.HasPrefix(ctx, "User Name: "):
		if !s.authed {
			s.authUser = "" // a failed login's user is not an identity to trust
		}
		if s.authFailed && len(dst) == 0 {
			// The failure was reported already; the name comes later.
			return dst, parsers.Irrelevant
		}
	case strings.HasPrefix(ctx, "Inbound AUTH") && strings.Contains(ctx, " failed") && !s.authFailed:
		s.authFailed = true
		e := base
		e.Kind, e.ClientIP, e.Helo, e.Reply = parsers.KindAuthFailure, s.clientIP, s.helo, ctx
		if f := strings.Fields(ctx); len(f) > 2 {
			e.AuthMethod = f[2]
		}
		return append(dst, e), parsers.Parsed
	}
	return dst, parsers.Irrelevant
}

// angleAddr returns the address in "MAIL FROM:<a@b> SIZE=1" or "RCPT TO:<c@d>".
func angleAddr(s string) string {
	lt := strings.IndexByte(s, '<')
	if lt < 0 {
		if c := strings.IndexByte(s, ':'); c >= 0 {
			return strings.TrimSpace(s[c+1:])
		}
		return ""
	}
	gt := strings.IndexByte(s[lt:], '>')
	if gt < 0 {
		return s[lt+1:]
	}
	return s[lt+1 : lt+gt]
}

// SniffSMTPProtocol recognizes the header or data rows of a protocol log.
func SniffSMTPProtocol(lines []string) int {
	n := 0
	for _, l := range lines {
		l = stripBOM(l)
		switch {
		case strings.HasPrefix(l, "#Log-type: SMTP Receive Protocol Log"), strings.HasPrefix(l, "#Log-type: SMTP Send Protocol Log"),
			strings.HasPrefix(l, "#Fields: date-time,connector-id,session-id"):
			n += 5
		case len(l) > 25 && l[4] == '-' && l[10] == 'T' && l[23] == 'Z' && l[24] == ',':
			var buf [maxFields]string
			k := splitCSV(l, buf[:])
			if k >= 8 && len(buf[6]) == 1 && strings.Contains("+-<>*", buf[6]) {
				n++
			}
		}
	}
	return n
}
