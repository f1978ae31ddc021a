package exchange

import (
	"strconv"
	"strings"

	"github.com/relaywatch/relaywatch/parsers"
)

// MessageTracking describes the message tracking format for the registry.
func MessageTracking() parsers.Format {
	return parsers.Format{
		Name:        FormatMessageTracking,
		Description: "Microsoft Exchange message tracking log (MSGTRK*.LOG), 2010 to 2019",
		New:         func(o parsers.Options) parsers.Parser { return NewMessageTracking(o) },
		Sniff:       SniffMessageTracking,
		OwnsProgram: ownsProgram,
		Advice:      &Advice,
	}
}

// MessageTrackingParser parses one message tracking log stream.
type MessageTrackingParser struct {
	hdr  header
	cols msgtrkCols
	buf  [maxFields]string
}

var _ parsers.Parser = (*MessageTrackingParser)(nil)

// msgtrkCols are the indexes of the columns used, -1 when absent.
type msgtrkCols struct {
	n                                                                        int
	dateTime, clientIP, clientHost, serverIP, serverHost, sourceContext      int
	connector, source, eventID, internalID, messageID, recipients, rcptState int
	totalBytes, rcptCount, reference, subject, sender, directionality        int
	origClientIP, customData, related                                        int
}

func indexCols(fields []string) msgtrkCols {
	idx := func(name string) int {
		for i, f := range fields {
			if f == name {
				return i
			}
		}
		return -1
	}
	return msgtrkCols{
		n: len(fields), dateTime: idx("date-time"), clientIP: idx("client-ip"), clientHost: idx("client-hostname"),
		serverIP: idx("server-ip"), serverHost: idx("server-hostname"), sourceContext: idx("source-context"),
		connector: idx("connector-id"), source: idx("source"), eventID: idx("event-id"),
		internalID: idx("internal-message-id"), messageID: idx("message-id"), recipients: idx("recipient-address"),
		rcptState: idx("recipient-status"), totalBytes: idx("total-bytes"), rcptCount: idx("recipient-count"),
		reference: idx("reference"), subject: idx("message-subject"), sender: idx("sender-address"),
		directionality: idx("directionality"), origClientIP: idx("original-client-ip"), customData: idx("custom-data"),
		related: idx("related-recipient-address"),
	}
}

// NewMessageTracking returns a parser for one message tracking stream.
func NewMessageTracking(parsers.Options) *MessageTrackingParser {
	return &MessageTrackingParser{}
}

// msgtrkEvents are the event-id values of message tracking logs that
// relaywatch knows; those not turned into events carry nothing it uses.
var msgtrkEvents = map[string]bool{
	"RECEIVE": true, "SEND": true, "SENDEXTERNAL": true, "DELIVER": true, "FAIL": true, "DSN": true, "DEFER": true,
	"EXPAND": true, "REDIRECT": true, "RESOLVE": true, "SUBMIT": true, "SUBMITDEFER": true, "SUBMITDROP": true,
	"HAREDIRECT": true, "HAREDIRECTFAIL": true, "HARECEIVE": true, "AGENTINFO": true, "AGENTSUBMIT": true,
	"NOTIFYMAPI": true, "DROP": true, "THROTTLE": true, "POISONMESSAGE": true, "BADMAIL": true, "TRANSFER": true,
	"PROCESS": true, "INITMESSAGECREATED": true, "MODERATORREJECT": true, "MODERATORAPPROVE": true,
	"MODERATIONEXPIRE": true, "DUPLICATEDELIVER": true, "DUPLICATEEXPAND": true, "DUPLICATEREDIRECT": true,
	"RECIPIENTLIMIT": true, "HADISCARD": true, "LOAD": true, "DELAYEDSEND": true, "SAFETYNETRESUBMIT": true,
	"PROCESSMEETINGMESSAGE": true, "CLIENTSUBMISSION": true, "MAILBOXRULE": true, "BIFURCATED": true,
}

// Parse implements parsers.Parser.
func (p *MessageTrackingParser) Parse(line string, dst []parsers.Event) ([]parsers.Event, parsers.Result) {
	line = stripBOM(line)
	if p.hdr.parseHeader(line) {
		if strings.HasPrefix(line, "#Fields:") {
			p.cols = indexCols(p.hdr.fields)
		}
		return dst, parsers.Irrelevant
	}
	n := splitCSV(line, p.buf[:])
	f := p.buf[:n]
	if p.cols.n == 0 {
		// No header seen (a file read from its middle): the Exchange
		// version whose column count matches.
		switch {
		case n >= len(msgtrkFields2016):
			p.cols = indexCols(msgtrkFields2016)
		case n == len(msgtrkFields2013):
			p.cols = indexCols(msgtrkFields2013)
		case n == len(msgtrkFields2010):
			p.cols = indexCols(msgtrkFields2010)
		default:
			return dst, parsers.Malformed
		}
	}
	get := func(i int) string {
		if i < 0 || i >= n {
			return ""
		}
		return f[i]
	}
	if n < p.cols.n-3 || p.cols.dateTime < 0 {
		return dst, parsers.Malformed
	}
	t, ok := parseTime(get(p.cols.dateTime))
	if !ok {
		return dst, parsers.Malformed
	}
	event := get(p.cols.eventID)
	if !msgtrkEvents[event] {
		return dst, parsers.Unrecognized
	}
	source := get(p.cols.source)
	base := parsers.Event{
		Time:      t,
		Program:   ProgramMessageTracking,
		QueueID:   get(p.cols.internalID),
		MessageID: strings.Trim(get(p.cols.messageID), "<>"),
		Subject:   get(p.cols.subject),
		Line:      line,
		Detail:    get(p.cols.connector),
		Direction: get(p.cols.directionality),
	}
	if base.QueueID == "" {
		return dst, parsers.Irrelevant
	}
	cd := get(p.cols.customData)
	switch {
	case event == "RECEIVE" && source == "SMTP":
		e := base
		e.Kind = parsers.KindAccept
		e.ClientIP, e.ClientName = clientAddress(get(p.cols.origClientIP), cd, get(p.cols.clientIP)), get(p.cols.clientHost)
		e.From, e.FromSet = get(p.cols.sender), true
		if e.From == "<>" {
			e.From = ""
		}
		if v, err := strconv.ParseInt(get(p.cols.totalBytes), 10, 64); err == nil {
			e.Size = v
		}
		if v, err := strconv.Atoi(get(p.cols.rcptCount)); err == nil {
			e.Nrcpt = v
		}
		if customData(cd, "FromEntity") == "Internet" {
			// Exchange 2016+ marks mail from the Internet explicitly.
			e.Direction = "Incoming"
		}
		return append(dst, e), parsers.Parsed
	case event == "RECEIVE" && source == "STOREDRIVER":
		// Submitted from a mailbox (Outlook, OWA, ActiveSync).
		e := base
		e.Kind = parsers.KindPickup
		e.From, e.FromSet = get(p.cols.sender), true
		e.Direction = "Originating"
		return append(dst, e), parsers.Parsed
	case event == "SEND" || event == "SENDEXTERNAL":
		return p.deliveries(dst, base, f, n, parsers.StatusSent, false, get(p.cols.serverHost), get(p.cols.serverIP))
	case event == "DELIVER":
		return p.deliveries(dst, base, f, n, parsers.StatusSent, true, "", "")
	case event == "FAIL":
		return p.deliveries(dst, base, f, n, parsers.StatusBounced, false, "", "")
	case event == "DEFER":
		return p.deliveries(dst, base, f, n, parsers.StatusDeferred, false, "", "")
	case event == "REDIRECT" || event == "EXPAND" || event == "RESOLVE":
		return redirects(dst, base, get(p.cols.recipients), get(p.cols.related))
	case event == "DSN":
		e := base
		e.Kind = parsers.KindNotification
		e.Reply = "delivery status notification"
		e.Detail = get(p.cols.reference)
		return append(dst, e), parsers.Parsed
	}
	return dst, parsers.Irrelevant
}

// clientAddress picks the real client: original-client-ip (set when a
// front end proxied the session), else S:ProxiedClientIPAddress, else
// client-ip.
func clientAddress(orig, cd, client string) string {
	if orig != "" {
		return stripZone(orig)
	}
	if v := customData(cd, "ProxiedClientIPAddress"); v != "" {
		return stripZone(v)
	}
	return stripZone(client)
}

// deliveries appends one delivery event per recipient of a SEND, DELIVER,
// FAIL or DEFER line; recipient-address and recipient-status hold one
// ';'-separated value per recipient.
func (p *MessageTrackingParser) deliveries(dst []parsers.Event, base parsers.Event, f []string, n int, status parsers.Status, mailbox bool, relayHost, relayIP string) ([]parsers.Event, parsers.Result) {
	get := func(i int) string {
		if i < 0 || i >= n {
			return ""
		}
		return f[i]
	}
	rcpts := get(p.cols.recipients)
	states := get(p.cols.rcptState)
	if rcpts == "" {
		return dst, parsers.Irrelevant
	}
	relay := relayHost
	if relayIP != "" {
		relay = relayHost + "[" + stripZone(relayIP) + "]"
	}
	count := strings.Count(rcpts, ";") + 1
	perRecipient := strings.Count(states, ";")+1 == count
	before := len(dst)
	for i := 0; rcpts != ""; i++ {
		var r string
		if j := strings.IndexByte(rcpts, ';'); j >= 0 {
			r, rcpts = rcpts[:j], rcpts[j+1:]
		} else {
			r, rcpts = rcpts, ""
		}
		st := states
		if perRecipient {
			if j := strings.IndexByte(states, ';'); j >= 0 {
				st, states = states[:j], states[j+1:]
			} else {
				st, states = states, ""
			}
		}
		if r == "" {
			continue
		}
		e := base
		e.Kind, e.Status, e.To, e.Mailbox, e.Relay, e.Reply = parsers.KindDelivery, status, r, mailbox, relay, st
		e.Code = replyCode(st)
		if status == parsers.StatusSent && perRecipient {
			// A SEND names each recipient's reply: a refused one was not sent.
			switch {
			case e.Code >= 500:
				e.Status = parsers.StatusBounced
			case e.Code >= 400:
				e.Status = parsers.StatusDeferred
			}
		}
		dst = append(dst, e)
	}
	if len(dst) == before {
		return dst, parsers.Irrelevant // only empty recipients
	}
	return dst, parsers.Parsed
}

// redirects appends one KindRedirect per recipient of a REDIRECT (mailbox
// forwarding, an alternate recipient), EXPAND (a distribution group) or
// RESOLVE (an alias resolved to the primary address) line: To is the new
// recipient (recipient-address), OrigTo the one it replaced
// (related-recipient-address), so that a later SEND to an outside address
// for a local recipient is known as a forward.
func redirects(dst []parsers.Event, base parsers.Event, rcpts, related string) ([]parsers.Event, parsers.Result) {
	if related == "" || rcpts == "" {
		return dst, parsers.Irrelevant
	}
	related, _, _ = strings.Cut(related, ";")
	before := len(dst)
	for rcpts != "" {
		var r string
		r, rcpts, _ = strings.Cut(rcpts, ";")
		if r == "" || strings.EqualFold(r, related) {
			continue
		}
		e := base
		e.Kind, e.To, e.OrigTo, e.Detail = parsers.KindRedirect, r, related, ""
		dst = append(dst, e)
	}
	if len(dst) == before {
		return dst, parsers.Irrelevant
	}
	return dst, parsers.Parsed
}

// replyCode reads the SMTP code at the start of a status: "550 5.7.54 ...".
func replyCode(s string) int {
	if len(s) >= 3 && s[0] >= '2' && s[0] <= '5' && isDigits(s[:3]) && (len(s) == 3 || s[3] == ' ' || s[3] == '-' || s[3] == '.') {
		n, _ := strconv.Atoi(s[:3])
		return n
	}
	return 0
}

// SniffMessageTracking recognizes the header or the data lines of a
// message tracking log.
func SniffMessageTracking(lines []string) int {
	n := 0
	for _, l := range lines {
		l = stripBOM(l)
		switch {
		case strings.HasPrefix(l, "#Log-type: Message Tracking Log"), strings.HasPrefix(l, "#Fields: date-time,client-ip,"):
			n += 5
		case len(l) > 24 && l[4] == '-' && l[10] == 'T' && strings.HasSuffix(l[:24], "Z") && l[24] == ',':
			var buf [maxFields]string
			k := splitCSV(l, buf[:])
			if k >= len(msgtrkFields2010) && msgtrkEvents[buf[8]] || k >= len(msgtrkFields2013) && msgtrkEvents[buf[8]] {
				n++
			}
		}
	}
	return n
}
