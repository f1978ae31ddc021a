package postfix

import (
	"strings"

	"github.com/relaywatch/relaywatch/parsers"
)

// smtpdIrrelevant are smtpd message prefixes that carry nothing relaywatch uses.
var smtpdIrrelevant = []string{
	"Anonymous TLS connection", "Trusted TLS connection", "Untrusted TLS connection",
	"Verified TLS connection", "TLS connection established", "SSL_accept error",
	"too many errors after", "improper command pipelining", "statistics:",
	"fatal:", "panic:", "error:", "table ", "discarding EHLO keywords",
	"setting up TLS connection", "proxy-accept", "NOQUEUE: lost connection", "bare <LF> received",
	"NOQUEUE: client=", "Connection", "getpeername:", "dict_", "hostname ", "address ",
}

func parseSMTPD(e *parsers.Event, msg string) parsers.Result {
	switch {
	case strings.HasPrefix(msg, "connect from "):
		e.Kind = parsers.KindConnect
		if _, ok := setClient(e, msg[len("connect from "):]); !ok {
			return parsers.Malformed
		}
		return parsers.Parsed
	case strings.HasPrefix(msg, "disconnect from "):
		e.Kind = parsers.KindDisconnect
		rest, ok := setClient(e, msg[len("disconnect from "):])
		if !ok {
			return parsers.Malformed
		}
		e.Detail = strings.TrimPrefix(rest, " ")
		return parsers.Parsed
	case strings.HasPrefix(msg, "lost connection after "), strings.HasPrefix(msg, "timeout after "):
		e.Kind = parsers.KindLostConnection
		rest := msg[strings.Index(msg, " after ")+len(" after "):]
		from := strings.Index(rest, " from ")
		if from < 0 {
			return parsers.Malformed
		}
		e.Stage = rest[:from]
		if _, ok := setClient(e, rest[from+len(" from "):]); !ok {
			return parsers.Malformed
		}
		return parsers.Parsed
	case strings.HasPrefix(msg, "warning: "):
		return parseSMTPDWarning(e, msg[len("warning: "):])
	}
	if strings.HasPrefix(msg, "proxy-reject: ") {
		r, _ := parseActionLine(e, "NOQUEUE", msg)
		return r
	}
	qid, rest, ok := queueID(msg)
	if ok {
		if strings.HasPrefix(rest, "client=") {
			return parseClientLine(e, qid, rest[len("client="):])
		}
		if r, ok := parseActionLine(e, qid, rest); ok {
			return r
		}
	}
	for _, p := range smtpdIrrelevant {
		if strings.HasPrefix(msg, p) {
			return parsers.Irrelevant
		}
	}
	if ok {
		// "QID: ..." lines we do not use: "QID: enabling PIX workarounds", ...
		return parsers.Irrelevant
	}
	return parsers.Unrecognized
}

// parseSMTPDWarning handles "warning: name[ip]: SASL LOGIN authentication
// failed: reason, sasl_username=user"; other warnings are irrelevant.
func parseSMTPDWarning(e *parsers.Event, w string) parsers.Result {
	rest, ok := setClient(e, w)
	if !ok || !strings.HasPrefix(rest, ": SASL ") {
		e.ClientIP, e.ClientName = "", ""
		return parsers.Irrelevant
	}
	rest = rest[len(": SASL "):]
	sp := strings.IndexByte(rest, ' ')
	if sp < 0 || !strings.HasPrefix(rest[sp:], " authentication failed") {
		return parsers.Irrelevant
	}
	e.Kind = parsers.KindAuthFailure
	e.AuthMethod = rest[:sp]
	rest = strings.TrimPrefix(rest[sp+len(" authentication failed"):], ":")
	rest = strings.TrimPrefix(rest, " ")
	if i := strings.LastIndex(rest, ", sasl_username="); i >= 0 {
		e.AuthUser = rest[i+len(", sasl_username="):]
		rest = rest[:i]
	}
	e.Reply = rest
	return parsers.Parsed
}

// parseClientLine handles "client=name[ip](:port)?(, sasl_method=M,
// sasl_username=U, sasl_sender=S, orig_queue_id=Q, orig_client=C)?".
func parseClientLine(e *parsers.Event, qid, s string) parsers.Result {
	e.Kind, e.QueueID = parsers.KindAccept, qid
	rest, ok := setClient(e, s)
	if !ok {
		return parsers.Malformed
	}
	for len(rest) > 2 && rest[0] == ',' {
		rest = rest[2:]
		end := strings.Index(rest, ", ")
		var kv string
		if end < 0 {
			kv, rest = rest, ""
		} else {
			kv, rest = rest[:end], rest[end:]
		}
		eq := strings.IndexByte(kv, '=')
		if eq < 0 {
			continue
		}
		switch v := kv[eq+1:]; kv[:eq] {
		case "sasl_method":
			e.AuthMethod = v
		case "sasl_username":
			e.AuthUser = v
		case "orig_queue_id":
			e.OrigQueueID = v
		case "orig_client":
			// A re-injected message (content filter, XFORWARD): the
			// original client is who matters.
			e.Detail = v
		}
	}
	return parsers.Parsed
}

// actions are the verbs of smtpd/cleanup access decisions.
var actions = []string{"reject", "reject_warning", "milter-reject", "hold", "discard", "warning", "filter", "redirect", "bcc", "replace", "prepend", "milter-hold", "milter-discard", "info", "proxy-reject"}

// parseActionLine handles "ACTION: STAGE from name[ip]: 554 5.7.1 reason;
// from=<s> to=<r> proto=ESMTP helo=<h>" after the queue id (or NOQUEUE), in
// smtpd, postscreen and cleanup. It reports false when rest is no action line.
func parseActionLine(e *parsers.Event, qid, rest string) (parsers.Result, bool) {
	colon := strings.Index(rest, ": ")
	if colon <= 0 || colon > 16 {
		return 0, false
	}
	act := rest[:colon]
	known := false
	for _, a := range actions {
		if a == act {
			known = true
			break
		}
	}
	if !known {
		return 0, false
	}
	e.Kind, e.Action = parsers.KindReject, act
	if qid != "NOQUEUE" {
		e.QueueID = qid
	}
	body := rest[colon+2:]
	// The trailing envelope: "; from=<...> to=<...> proto=... helo=<...>".
	tail := ""
	if i := strings.LastIndex(body, "; from=<"); i >= 0 {
		body, tail = body[:i], body[i+2:]
	} else if i := strings.LastIndex(body, "; proto="); i >= 0 {
		body, tail = body[:i], body[i+2:]
	}
	after := parseEnvelopeTail(e, tail)
	sp := strings.IndexByte(body, ' ')
	if sp < 0 {
		e.Stage = body
		return parsers.Parsed, true
	}
	e.Stage = strings.TrimSuffix(body[:sp], ":")
	body = body[sp+1:]
	switch e.Stage {
	case "header", "body":
		// cleanup: "header Subject: xyz from name[ip]; from=<..> ...: 5.7.1 reason"
		if i := strings.LastIndex(body, " from "); i >= 0 {
			if _, ok := setClient(e, body[i+len(" from "):]); ok {
				body = body[:i]
			}
		}
		e.Detail = body
		code, dsn, text := replyCode(strings.TrimPrefix(after, ": "))
		e.Code, e.DSN, e.Reply = code, dsn, text
		return parsers.Parsed, true
	}
	if !strings.HasPrefix(body, "from ") {
		// "proxy-reject: END-OF-MESSAGE: 554 5.7.0 reason", postscreen
		// "CONNECT from [ip]:port: too many connections" is handled below.
		e.Code, e.DSN, e.Reply = replyCode(body)
		return parsers.Parsed, true
	}
	r, ok := setClient(e, body[len("from "):])
	if !ok {
		return parsers.Malformed, true
	}
	r = strings.TrimPrefix(r, ": ")
	e.Code, e.DSN, e.Reply = replyCode(r)
	e.RelayDomain = e.To != "" && strings.HasSuffix(e.Reply, "User unknown in relay recipient table")
	e.RelayDenied = e.Stage == "RCPT" && strings.HasSuffix(e.Reply, ": Relay access denied")
	return parsers.Parsed, true
}

// parseEnvelopeTail reads "from=<s> to=<r> proto=P helo=<h>" (smtpd) or the
// same separated by ", " (postscreen) and returns what follows it.
func parseEnvelopeTail(e *parsers.Event, s string) string {
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || eq > 10 {
			return s
		}
		key := s[:eq]
		var val string
		val, s = angle(s[eq+1:])
		switch key {
		case "from":
			e.From, e.FromSet = val, true
		case "to":
			e.To = val
		case "proto":
			e.Proto = val
		case "helo":
			e.Helo = val
		default:
			return s
		}
		s = strings.TrimPrefix(s, ",")
		if !strings.HasPrefix(s, " ") {
			return s
		}
		s = s[1:]
	}
	return s
}

func parsePostscreen(e *parsers.Event, msg string) parsers.Result {
	if strings.HasPrefix(msg, "NOQUEUE: ") {
		if r, ok := parseActionLine(e, "NOQUEUE", msg[len("NOQUEUE: "):]); ok {
			return r
		}
	}
	// CONNECT, PASS NEW/OLD, DNSBL rank, PREGREET, HANGUP, WHITELISTED, ...
	return parsers.Irrelevant
}

func parseCleanup(e *parsers.Event, msg string) parsers.Result {
	qid, rest, ok := queueID(msg)
	if !ok {
		return parsers.Irrelevant // warnings, statistics
	}
	e.QueueID = qid
	if strings.HasPrefix(rest, "message-id=") {
		e.Kind = parsers.KindMessageID
		id := rest[len("message-id="):]
		if len(id) >= 2 && id[0] == '<' && id[len(id)-1] == '>' {
			id = id[1 : len(id)-1]
		}
		e.MessageID = id
		return parsers.Parsed
	}
	if r, ok := parseActionLine(e, qid, rest); ok {
		return r
	}
	return parsers.Irrelevant // resent-message-id=, ...
}

func parseQmgr(e *parsers.Event, msg string) parsers.Result {
	qid, rest, ok := queueID(msg)
	if !ok {
		return parsers.Irrelevant // warnings
	}
	e.QueueID = qid
	if rest == "removed" {
		e.Kind = parsers.KindRemoved
		return parsers.Parsed
	}
	if !strings.HasPrefix(rest, "from=") {
		return parsers.Irrelevant // "skipped, still being delivered", ...
	}
	e.From, rest = angle(rest[len("from="):])
	e.FromSet = true
	e.Kind = parsers.KindQueued
	for len(rest) > 2 && rest[0] == ',' {
		rest = rest[2:]
		end := strings.IndexAny(rest, ", ")
		var kv string
		if end < 0 {
			kv, rest = rest, ""
		} else {
			kv, rest = rest[:end], rest[end:]
		}
		eq := strings.IndexByte(kv, '=')
		if eq < 0 {
			continue
		}
		switch v := kv[eq+1:]; kv[:eq] {
		case "size":
			e.Size, _ = atoi(v)
		case "nrcpt":
			n, _ := atoi(v)
			e.Nrcpt = int(n)
		case "status":
			if v == "expired" || v == "force-expired" {
				e.Kind = parsers.KindExpired
				e.Status = parsers.StatusExpired
				e.Reply = strings.TrimPrefix(rest, ", ")
			}
		}
	}
	return parsers.Parsed
}

// parseDelivery handles "QID: to=<r>, orig_to=<o>, relay=R, conn_use=N,
// delay=D, delays=a/b/c/d, dsn=X.Y.Z, status=S (reply)".
func parseDelivery(e *parsers.Event, msg string) parsers.Result {
	qid, rest, ok := queueID(msg)
	if !ok || !strings.HasPrefix(rest, "to=") {
		// "connect to ...", TLS lines, "QID: host ... said", "QID: lost
		// connection with ...", "QID: enabling PIX workarounds", warnings.
		return parsers.Irrelevant
	}
	e.QueueID, e.Kind = qid, parsers.KindDelivery
	e.To, rest = angle(rest[len("to="):])
	for len(rest) > 2 && rest[0] == ',' {
		rest = rest[2:]
		eq := strings.IndexByte(rest, '=')
		if eq < 0 {
			break
		}
		key := rest[:eq]
		rest = rest[eq+1:]
		var v string
		if key == "orig_to" {
			v, rest = angle(rest)
			e.OrigTo = v
			continue
		}
		if key == "status" {
			sp := strings.IndexByte(rest, ' ')
			if sp < 0 {
				e.Status = parsers.ParseStatus(rest)
				rest = ""
				break
			}
			e.Status = parsers.ParseStatus(rest[:sp])
			reply := rest[sp+1:]
			if len(reply) >= 2 && reply[0] == '(' {
				if j := strings.LastIndexByte(reply, ')'); j > 0 {
					reply = reply[1:j]
				} else {
					reply = reply[1:]
				}
			}
			e.Reply = reply
			if code, _, _ := replyCode(reply); code != 0 {
				e.Code = code
			} else if i := strings.Index(reply, " said: "); i >= 0 {
				e.Code, _, _ = replyCode(reply[i+len(" said: "):])
			}
			rest = ""
			break
		}
		end := strings.Index(rest, ", ")
		if end < 0 {
			v, rest = rest, ""
		} else {
			v, rest = rest[:end], rest[end:]
		}
		switch key {
		case "relay":
			e.Relay = v
		case "delay":
			e.Delay = v
		case "dsn":
			e.DSN = v
		}
	}
	if e.Status == parsers.StatusNone {
		return parsers.Malformed
	}
	if e.Status == parsers.StatusSent {
		setRequeued(e)
	}
	return parsers.Parsed
}

// setRequeued fills Requeued on a delivery that created a new message on
// this host: local(8)'s "forwarded as ID" (an alias or .forward), or a
// server on loopback that answered "queued as ID" (a content filter's
// re-injection, or a tunnel to a relay host: detect tells them apart by
// whether ID shows up in the log).
func setRequeued(e *parsers.Event) {
	if i := strings.Index(e.Reply, "forwarded as "); i >= 0 {
		e.Requeued, e.Forwarded = idAt(e.Reply[i+len("forwarded as "):]), true
		return
	}
	if !isLoopbackRelay(e.Relay) {
		return
	}
	if i := strings.LastIndex(e.Reply, "queued as "); i >= 0 {
		e.Requeued = idAt(e.Reply[i+len("queued as "):])
	}
}

// idAt returns the queue id at the start of s, up to a space or punctuation.
func idAt(s string) string {
	i := 0
	for i < len(s) && i < 40 && isAlnum(s[i]) {
		i++
	}
	return s[:i]
}

// isLoopbackRelay reports whether a relay "name[ip]:port" is on loopback
// (127.0.0.0/8 or ::1).
func isLoopbackRelay(relay string) bool {
	lb := strings.IndexByte(relay, '[')
	if lb < 0 {
		return false
	}
	ip := relay[lb+1:]
	if rb := strings.IndexByte(ip, ']'); rb >= 0 {
		ip = ip[:rb]
	}
	ip = strings.TrimPrefix(strings.ToLower(ip), "ipv6:")
	return strings.HasPrefix(ip, "127.") || ip == "::1"
}

// parseBounce handles "QID: sender non-delivery notification: NEWQID" and the
// delivery-status and postmaster variants.
func parseBounce(e *parsers.Event, msg string) parsers.Result {
	qid, rest, ok := queueID(msg)
	if !ok {
		return parsers.Irrelevant
	}
	i := strings.Index(rest, " notification: ")
	if i < 0 {
		return parsers.Irrelevant
	}
	e.QueueID, e.Kind = qid, parsers.KindNotification
	e.Reply = rest[:i+len(" notification")]
	e.Detail = rest[i+len(" notification: "):]
	return parsers.Parsed
}

// parsePickup handles "QID: uid=1000 from=<user>" and "QID: sender=<s> uid=N".
func parsePickup(e *parsers.Event, msg string) parsers.Result {
	qid, rest, ok := queueID(msg)
	if !ok {
		return parsers.Irrelevant
	}
	if !strings.HasPrefix(rest, "uid=") && !strings.HasPrefix(rest, "sender=") {
		return parsers.Irrelevant
	}
	e.QueueID, e.Kind = qid, parsers.KindPickup
	for rest != "" {
		eq := strings.IndexByte(rest, '=')
		if eq < 0 {
			break
		}
		key := rest[:eq]
		var v string
		v, rest = angle(rest[eq+1:])
		switch key {
		case "uid":
			e.UID = v
		case "from", "sender":
			e.From, e.FromSet = v, true
		}
		rest = strings.TrimLeft(rest, " ,")
	}
	return parsers.Parsed
}

// parseAmavis handles amavisd-new's result line for a message it passed
// and re-queued: "(237978-11) Passed CLEAN {RelayedOutbound}, [192.0.2.1]:41695
// [198.51.100.7] <sender> -> <rcpt>,<rcpt2>, Queue-ID: PARENT, ...,
// queued_as: CHILD, ...". It gives the client Postfix saw (the first
// address), the sender, and the link from the parent message to its
// re-queued copy. Other amavis lines (blocked, discarded, not re-queued,
// debug) are irrelevant.
func parseAmavis(e *parsers.Event, msg string) parsers.Result {
	if strings.HasPrefix(msg, "(") {
		if i := strings.IndexByte(msg, ')'); i >= 0 {
			msg = strings.TrimPrefix(msg[i+1:], " ")
		}
	}
	if !strings.HasPrefix(msg, "Passed ") {
		return parsers.Irrelevant
	}
	q := strings.Index(msg, ", Queue-ID: ")
	a := strings.Index(msg, ", queued_as: ")
	if q < 0 || a < 0 {
		return parsers.Irrelevant
	}
	e.Kind = parsers.KindRequeued
	e.QueueID = idAt(msg[q+len(", Queue-ID: "):])
	e.Requeued = idAt(msg[a+len(", queued_as: "):])
	if e.QueueID == "" || e.Requeued == "" {
		return parsers.Malformed
	}
	head := msg[:q]
	if i := strings.Index(head, "}, ["); i >= 0 {
		ip := head[i+len("}, ["):]
		if rb := strings.IndexByte(ip, ']'); rb > 0 {
			e.ClientIP = ip[:rb]
		}
	}
	if i := strings.Index(head, " <"); i >= 0 {
		if j := strings.Index(head[i:], "> -> "); j >= 0 {
			e.From, e.FromSet = head[i+2:i+j], true
		}
	}
	return parsers.Parsed
}
