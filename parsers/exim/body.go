package exim

import (
	"net/netip"
	"strings"

	"github.com/relaywatch/relaywatch/parsers"
)

// parseBody reads what follows the timestamp (and pid).
func parseBody(e *parsers.Event, body string) parsers.Result {
	if id, rest, ok := messageID(body); ok {
		e.QueueID = id
		return parseMessageLine(e, rest)
	}
	return parseEventLine(e, body)
}

// parseMessageLine reads a line about one message: "<= sender ...",
// "=> rcpt ...", "== rcpt ... defer", "** rcpt ...: reason", "Completed".
func parseMessageLine(e *parsers.Event, s string) parsers.Result {
	if len(s) >= 3 && s[2] == ' ' {
		switch s[:2] {
		case "<=":
			return parseArrival(e, s[3:])
		case "=>", "->", ">>":
			return parseDelivery(e, s[3:], parsers.StatusSent)
		case "==":
			return parseDelivery(e, s[3:], parsers.StatusDeferred)
		case "**":
			return parseDelivery(e, s[3:], parsers.StatusBounced)
		case "*>":
			return parsers.Irrelevant // delivery suppressed (-N): nothing was sent
		}
	}
	if strings.HasPrefix(s, "Completed") {
		e.Kind = parsers.KindRemoved
		return parsers.Parsed
	}
	// "H=host [ip] F=<s> rejected after DATA: ..." with the id of the
	// message being received, "SMTP connection from ... closed by DROP in
	// ACL", "plain authenticator failed H=...".
	if r := parseEventLine(e, s); r == parsers.Parsed {
		return r
	}
	// Frozen, Unfrozen, Message is frozen, SMTP error from remote ...,
	// DKIM: ..., cwd=..., Spool file is locked, ...
	return parsers.Irrelevant
}

// parseArrival reads "sender H=host (helo) [ip]:port P=esmtpa A=plain:user
// U=user S=1234 id=msgid T="subject" R=parent".
func parseArrival(e *parsers.Event, s string) parsers.Result {
	sp := strings.IndexByte(s, ' ')
	sender := s
	if sp >= 0 {
		sender, s = s[:sp], s[sp+1:]
	} else {
		s = ""
	}
	if sender == "<>" {
		sender = ""
	}
	e.From, e.FromSet = sender, true
	hasHost := false
	bad := false // a field value that is not what it should be
	eachField(s, func(k, v string) {
		switch k {
		case "H":
			hasHost = true
			setHost(e, v)
		case "P":
			e.Proto = v
		case "A":
			// A=authenticator:user (the user part only with server_set_id).
			if c := strings.IndexByte(v, ':'); c >= 0 {
				e.AuthMethod, e.AuthUser = v[:c], v[c+1:]
			} else {
				e.AuthMethod, e.AuthUser = v, v
			}
		case "U":
			e.UID = v
		case "S":
			if n, ok := num(v); ok {
				e.Size = int64(n)
			} else {
				bad = true // S=sss in the Exim test suite: counted, not guessed
			}
		case "id":
			e.MessageID = v
		case "T":
			e.Subject = v
		case "R":
			e.Detail = v // the message this bounce is about
		}
	})
	e.Kind = parsers.KindAccept
	if !hasHost || strings.HasPrefix(e.Proto, "local") {
		// Submitted on this host: exim -bm, -bs, or a bounce (U=Debian-exim P=local).
		e.Kind = parsers.KindPickup
	}
	if bad {
		e.BadFields++
	}
	return parsers.Parsed
}

// parseDelivery reads "rcpt [<orig>] [(parent)] R=router T=transport
// H=host [ip] C="250 ok"" and, for deferrals and failures, the reason after
// "defer (errno): " or the first ": ".
func parseDelivery(e *parsers.Event, s string, status parsers.Status) parsers.Result {
	e.Kind, e.Status = parsers.KindDelivery, status
	sp := strings.IndexByte(s, ' ')
	addr := s
	rest := ""
	if sp >= 0 {
		addr, rest = s[:sp], s[sp+1:]
	}
	if status != parsers.StatusSent {
		// "** bob@null.corp: retry timeout exceeded"
		if strings.HasSuffix(addr, ":") {
			addr = addr[:len(addr)-1]
			e.Reply = rest
			rest = ""
		}
	}
	orig := ""
	for strings.HasPrefix(rest, "<") || strings.HasPrefix(rest, "(") {
		end := strings.IndexAny(rest, " ")
		tok := rest
		if end >= 0 {
			tok, rest = rest[:end], rest[end+1:]
		} else {
			rest = ""
		}
		if tok[0] == '<' && orig == "" {
			orig = strings.TrimSuffix(strings.TrimSuffix(tok[1:], ":"), ">")
		}
		if strings.HasSuffix(tok, ":") && status != parsers.StatusSent {
			e.Reply = rest
			rest = ""
		}
	}
	switch {
	case strings.IndexByte(addr, '@') >= 0:
		e.To, e.OrigTo = addr, orig
		if strings.EqualFold(e.OrigTo, e.To) {
			e.OrigTo = ""
		}
	case orig != "":
		// "=> bob <bob@example.org>": a local part (or a file or pipe)
		// and the address it came from.
		e.To = orig
	default:
		e.To = addr
	}
	if rest != "" {
		fields, reason := splitReason(rest, status)
		if reason != "" {
			e.Reply = reason
		}
		router := ""
		eachField(fields, func(k, v string) {
			switch k {
			case "R":
				router = v
			case "T":
				e.Mailbox = isMailboxTransport(v)
			case "H":
				e.Relay = v
			case "C":
				e.Reply = v
			}
		})
		if router == "local_user" {
			e.Mailbox = true
		}
		// Detail: "R=router T=transport", as logged (a slice of the line).
		if i := strings.Index(fields, "R="); i >= 0 {
			d := fields[i:]
			if t := strings.Index(d, " T="); t >= 0 {
				end := strings.IndexByte(d[t+3:], ' ')
				if end < 0 {
					end = len(d) - t - 3
				}
				d = d[:t+3+end]
			} else if sp := strings.IndexByte(d, ' '); sp >= 0 {
				d = d[:sp]
			}
			e.Detail = d
		}
	}
	e.Code = replyCodeIn(e.Reply)
	return parsers.Parsed
}

// splitReason separates the fields of a deferral or failure from its reason:
// "R=x T=y defer (110): Connection timed out" or "R=x T=y H=h [ip]: SMTP
// error ...". Quoted values are skipped.
func splitReason(s string, status parsers.Status) (fields, reason string) {
	if status == parsers.StatusSent {
		return s, ""
	}
	if i := strings.Index(s, " defer ("); i >= 0 || strings.HasPrefix(s, "defer (") {
		if i < 0 {
			i = -1
		}
		head := s[:max(i, 0)]
		tail := s[i+1:]
		j := strings.IndexByte(tail, ')')
		if j < 0 {
			return head, tail
		}
		tail = tail[j+1:]
		if strings.HasPrefix(tail, ": ") {
			return head, tail[2:]
		}
		// "defer (-44) H=(helo) [ip]: SMTP error from remote ...": more
		// fields, then the reason.
		more, reason := firstColon(tail)
		return head + more, reason
	}
	return firstColon(s)
}

// firstColon splits at the first ": " outside double quotes.
func firstColon(s string) (before, after string) {
	inQuote := false
	for i := 0; i+1 < len(s); i++ {
		switch {
		case s[i] == '"':
			inQuote = !inQuote
		case !inQuote && s[i] == ':' && s[i+1] == ' ':
			return s[:i], s[i+2:]
		}
	}
	return s, ""
}

// isMailboxTransport tells local mailbox transports (local_delivery,
// dovecot_lmtp, maildir_home, address_file, ...) from remote ones.
func isMailboxTransport(t string) bool {
	for _, s := range []string{"local", "lmtp", "maildir", "mailbox", "appendfile", "dovecot", "spool", "address_file", "address_directory", "procmail"} {
		if strings.Contains(t, s) {
			return true
		}
	}
	return false
}

// replyCodeIn finds the first SMTP reply code in a reason: "...: 550 5.1.1 ...".
func replyCodeIn(s string) int {
	for i := 0; i+4 <= len(s); i++ {
		if (i == 0 || s[i-1] == ' ' || s[i-1] == '"') && s[i] >= '2' && s[i] <= '5' && isDigit(s[i+1]) && isDigit(s[i+2]) && (i+3 == len(s) || s[i+3] == ' ' || s[i+3] == '-') {
			return int(s[i]-'0')*100 + int(s[i+1]-'0')*10 + int(s[i+2]-'0')
		}
	}
	return 0
}

// eachField calls fn for every K=V field of s. Quoted values ("...") may
// hold spaces; H= (and I=) values run to their [address] token:
// "H=name (helo) [192.0.2.1]:25".
func eachField(s string, fn func(k, v string)) {
	for len(s) > 0 {
		for len(s) > 0 && s[0] == ' ' {
			s = s[1:]
		}
		eq := strings.IndexByte(s, '=')
		sp := strings.IndexByte(s, ' ')
		if eq <= 0 || (sp >= 0 && sp < eq) {
			// A word that is not a field: skip it.
			if sp < 0 {
				return
			}
			s = s[sp+1:]
			continue
		}
		key := s[:eq]
		s = s[eq+1:]
		var val string
		switch {
		case strings.HasPrefix(s, "\""):
			end := 1
			for end < len(s) && s[end] != '"' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) {
				val, s = s[1:], ""
			} else {
				val, s = s[1:end], s[end+1:]
			}
		case key == "H" || key == "I":
			val, s = hostValue(s)
		default:
			end := strings.IndexByte(s, ' ')
			if end < 0 {
				val, s = s, ""
			} else {
				val, s = s[:end], s[end:]
			}
		}
		fn(key, val)
	}
}

// hostValue takes "name (helo) [ip]:port rest" and returns the host part up
// to and including the [ip] token.
func hostValue(s string) (val, rest string) {
	i := 0
	for i < len(s) {
		end := strings.IndexByte(s[i:], ' ')
		var tok string
		if end < 0 {
			tok = s[i:]
			end = len(s) - i
		} else {
			tok = s[i : i+end]
		}
		if strings.HasPrefix(tok, "[") {
			return s[:i+end], s[i+end:]
		}
		if strings.IndexByte(tok, '=') >= 0 && i > 0 {
			// The next field began: no address token.
			return strings.TrimSuffix(s[:i], " "), s[i:]
		}
		i += end + 1
	}
	return s, ""
}

// setHost fills client name, HELO and address from an H= value:
// "name (helo) [ip]:port", "(helo) [ip]", "name [ip]" or "[ip]".
func setHost(e *parsers.Event, v string) {
	lb := strings.LastIndexByte(v, '[')
	if lb < 0 {
		e.ClientName = v
		return
	}
	ipPart := v[lb+1:]
	if rb := strings.IndexByte(ipPart, ']'); rb >= 0 {
		ipPart = ipPart[:rb]
	}
	e.ClientIP = ipPart
	if _, err := netip.ParseAddr(ipPart); err != nil {
		e.BadFields++ // "ip4.ip4.ip4.ip4" in the Exim test suite: kept, never guessed
	}
	names := strings.TrimSpace(v[:lb])
	if lp := strings.IndexByte(names, '('); lp >= 0 {
		if rp := strings.LastIndexByte(names, ')'); rp > lp {
			e.Helo = names[lp+1 : rp]
		}
		names = strings.TrimSpace(names[:lp])
	}
	e.ClientName = names
	if e.Helo == "" {
		e.Helo = names
	}
}

// parseEventLine reads a line without a message id: connections, rejections,
// authentication failures.
func parseEventLine(e *parsers.Event, s string) parsers.Result {
	switch {
	case strings.HasPrefix(s, "SMTP connection from "):
		rest := s[len("SMTP connection from "):]
		host, after := hostValue(rest)
		setHost(e, host)
		after = strings.TrimSpace(after)
		switch {
		case strings.HasPrefix(after, "lost"), strings.HasPrefix(after, "timed out"):
			e.Kind, e.Stage = parsers.KindLostConnection, after
		case strings.HasPrefix(after, "closed"):
			e.Kind, e.Detail = parsers.KindDisconnect, after
		default:
			e.Kind = parsers.KindConnect
		}
		if e.ClientIP == "" {
			return parsers.Irrelevant
		}
		return parsers.Parsed
	case strings.HasPrefix(s, "SMTP call from ") && strings.Contains(s, " dropped: "):
		// "SMTP call from host [ip] dropped: too many nonmail commands
		// (last was "RSET")": Exim hung up on the client; eximstats counts
		// it as a reject, and so do the totals.
		rest := s[len("SMTP call from "):]
		d := strings.Index(rest, " dropped: ")
		if d < 0 {
			return parsers.Irrelevant // "SMTP call from dropped: " (found by fuzzing)
		}
		host, _ := hostValue(rest[:d])
		setHost(e, host)
		e.Kind, e.Action, e.Stage = parsers.KindReject, "reject", "CONNECT"
		e.Reply = rest[d+len(" dropped: "):]
		return parsers.Parsed
	case strings.Contains(s, " authenticator failed "):
		i := strings.Index(s, " authenticator failed ")
		e.Kind, e.AuthMethod = parsers.KindAuthFailure, s[:i]
		// "custom-message: login authenticator failed ..." (server_set_msg)
		if c := strings.LastIndexByte(e.AuthMethod, ' '); c >= 0 {
			e.AuthMethod = e.AuthMethod[c+1:]
		}
		rest := s[i+len(" authenticator failed "):]
		switch {
		case strings.HasPrefix(rest, "for "):
			rest = rest[len("for "):]
		case strings.HasPrefix(rest, "H="):
			rest = rest[len("H="):]
		default:
			return parsers.Irrelevant
		}
		host, after := hostValue(rest)
		setHost(e, host)
		// " I=[10.0.0.1]:25 Ci=123 U=CALLER: 535 Incorrect authentication data (set_id=user)"
		if c := strings.Index(after, ": "); c >= 0 && replyCodeIn(after[:c]) == 0 {
			after = after[c+2:]
		}
		after = strings.TrimSpace(after)
		if j := strings.LastIndex(after, "(set_id="); j >= 0 {
			if k := strings.IndexByte(after[j:], ')'); k > 0 {
				e.AuthUser = after[j+len("(set_id=") : j+k]
			}
		}
		e.Reply = after
		e.Code = replyCodeIn(after)
		return parsers.Parsed
	case strings.HasPrefix(s, "rejected EHLO from "), strings.HasPrefix(s, "rejected HELO from "):
		e.Kind, e.Action, e.Stage = parsers.KindReject, "reject", s[len("rejected "):len("rejected ")+4]
		host, after := hostValue(s[len("rejected EHLO from "):])
		setHost(e, host)
		e.Reply = strings.TrimPrefix(strings.TrimSpace(after), ": ")
		e.Helo = ""
		return parsers.Parsed
	case strings.HasPrefix(s, "rejected MAIL "), strings.HasPrefix(s, "rejected from "), strings.HasPrefix(s, "rejected XCLIENT "):
		// "rejected MAIL from [ip]: no HELO/EHLO given",
		// "rejected MAIL FROM:<a@b> U=CALLER: message too big",
		// "rejected from <a@b> H=(helo) [ip]: Non-CRLF-terminated header".
		e.Kind, e.Action = parsers.KindReject, "reject"
		what, reason, _ := strings.Cut(s[len("rejected "):], ": ")
		e.Reply = reason
		e.Code = replyCodeIn(reason)
		e.Stage = "MAIL"
		if strings.HasPrefix(what, "XCLIENT ") {
			e.Stage = "XCLIENT"
		}
		if j := strings.Index(what, "H="); j >= 0 {
			host, _ := hostValue(what[j+2:])
			setHost(e, host)
		} else if j := strings.Index(what, "from "); j >= 0 && strings.IndexByte(what, '[') > j {
			host, _ := hostValue(what[j+len("from "):])
			setHost(e, host)
		}
		if lt := strings.IndexByte(what, '<'); lt >= 0 {
			if gt := strings.IndexByte(what[lt:], '>'); gt > 0 {
				e.From, e.FromSet = what[lt+1:lt+gt], true
			}
		}
		return parsers.Parsed
	}
	i := strings.Index(s, " rejected ")
	if i < 0 || !(strings.HasPrefix(s, "H=") || strings.HasPrefix(s, "F=") || strings.HasPrefix(s, "U=")) {
		// SMTP protocol errors, dropped connections, sender verify
		// failures (followed by their rejection), queue runs, ...
		return parsers.Irrelevant
	}
	e.Kind, e.Action = parsers.KindReject, "reject"
	head := s[:i]
	if strings.HasSuffix(head, " temporarily") {
		e.Action = "tempfail"
		head = strings.TrimSuffix(head, " temporarily")
	}
	eachField(head, func(k, v string) {
		switch k {
		case "H":
			setHost(e, v)
		case "F":
			from := strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")
			e.From, e.FromSet = from, true
		case "A":
			if c := strings.IndexByte(v, ':'); c >= 0 {
				e.AuthMethod, e.AuthUser = v[:c], v[c+1:]
			}
		case "P":
			e.Proto = v
		}
	})
	what := s[i+len(" rejected "):]
	reason := ""
	if c := strings.Index(what, ": "); c >= 0 {
		what, reason = what[:c], what[c+2:]
	}
	switch {
	case strings.HasPrefix(what, "RCPT "):
		e.Stage = "RCPT"
		e.To = strings.TrimSuffix(strings.TrimPrefix(what[len("RCPT "):], "<"), ">")
	case strings.HasPrefix(what, "MAIL "):
		e.Stage = "MAIL"
		if !e.FromSet {
			e.From, e.FromSet = strings.TrimSuffix(strings.TrimPrefix(what[len("MAIL "):], "<"), ">"), true
		}
	case strings.HasPrefix(what, "after DATA"):
		e.Stage = "DATA"
	case strings.HasPrefix(what, "connection"):
		e.Stage = "CONNECT"
	default:
		if sp := strings.IndexByte(what, ' '); sp > 0 {
			e.Stage = what[:sp]
		} else {
			e.Stage = what
		}
	}
	e.Reply = strings.Trim(reason, "\"")
	e.Code = replyCodeIn(e.Reply)
	// The default configuration's "relay not permitted"; "Relaying
	// denied" is the Sendmail wording some ACLs copy.
	e.RelayDenied = e.Stage == "RCPT" && (strings.HasSuffix(e.Reply, "relay not permitted") || strings.Contains(e.Reply, "Relaying denied"))
	return parsers.Parsed
}
