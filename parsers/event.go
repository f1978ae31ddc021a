// Package parsers defines the normalized log event that every log format is
// turned into, the contract a format parser fulfils, and the registry of
// formats with sniffing from a stream's first lines.
//
// Data flows one way: parsers know nothing of detection or alerting.
package parsers

import (
	"time"
)

// Kind says what a log record reports.
type Kind uint8

// The kinds of events. New kinds are appended; their names are stable and
// appear in `relaywatch parse` output.
const (
	KindUnknown        Kind = iota
	KindConnect             // a client connected (smtpd "connect from")
	KindDisconnect          // a client disconnected; Detail holds the command counters
	KindLostConnection      // the client went away mid-session; Stage holds the last command
	KindAuthFailure         // a SASL authentication attempt failed
	KindReject              // the server refused something (Action says how: reject, reject_warning, hold, discard, milter-reject)
	KindAccept              // the server accepted a message from a network client (Postfix "client=")
	KindPickup              // a message was submitted locally (Postfix pickup)
	KindMessageID           // the message's Message-ID header is known (Postfix cleanup)
	KindQueued              // the message entered the active queue with its sender, size and recipient count
	KindDelivery            // one delivery attempt for one recipient, with Status
	KindRemoved             // the message left the queue
	KindExpired             // the message stayed too long and was returned to sender
	KindNotification        // the server created a notification (bounce); Detail holds the new message id
	KindRequeued            // a content filter reports that it re-queued message QueueID as Requeued (amavis "Passed ... queued_as:")
	KindRedirect            // a recipient of message QueueID was rewritten: To is the new recipient, OrigTo the one it replaced (Exchange REDIRECT, EXPAND)

	// NumKinds is the number of kinds (for arrays indexed by Kind).
	NumKinds = iota
)

var kindNames = [...]string{
	KindUnknown:        "unknown",
	KindConnect:        "connect",
	KindDisconnect:     "disconnect",
	KindLostConnection: "lost-connection",
	KindAuthFailure:    "auth-failure",
	KindReject:         "reject",
	KindAccept:         "accept",
	KindPickup:         "pickup",
	KindMessageID:      "message-id",
	KindQueued:         "queued",
	KindDelivery:       "delivery",
	KindRemoved:        "removed",
	KindExpired:        "expired",
	KindNotification:   "notification",
	KindRequeued:       "requeued",
	KindRedirect:       "redirect",
}

// String returns the kind's stable name.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// MarshalText encodes the kind by name.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Status is the outcome of a delivery attempt.
type Status uint8

// Delivery statuses.
const (
	StatusNone     Status = iota
	StatusSent            // delivered (or handed to the next hop)
	StatusDeferred        // temporary failure; will be retried
	StatusBounced         // permanent failure; the sender gets a bounce
	StatusExpired         // gave up after the queue lifetime
	StatusOther           // a status word this version does not know
	StatusAccepted        // the server accepted the recipient (protocol logs); the delivery is not in this log
)

var statusNames = [...]string{
	StatusNone:     "",
	StatusSent:     "sent",
	StatusDeferred: "deferred",
	StatusBounced:  "bounced",
	StatusExpired:  "expired",
	StatusOther:    "other",
	StatusAccepted: "accepted",
}

// String returns the status's stable name ("" for none).
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "other"
}

// MarshalText encodes the status by name.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// ParseStatus maps a status word ("sent", "deferred", ...) to a Status.
func ParseStatus(word string) Status {
	switch word {
	case "sent", "delivered":
		return StatusSent
	case "deferred":
		return StatusDeferred
	case "bounced":
		return StatusBounced
	case "expired":
		return StatusExpired
	case "":
		return StatusNone
	}
	return StatusOther
}

// Event is one normalized fact from one log record. It is flat and
// format-neutral; a field a format does not have stays empty.
//
// The string fields of an Event produced by the batch pipeline share memory
// with the block of input they were read from: a consumer that keeps a field
// beyond the call that handed it the event must copy it (strings.Clone), or
// it pins the whole block in memory.
type Event struct {
	Time time.Time `json:"time"`
	// YearGuessed is set when the line's timestamp had no year (RFC 3164) and
	// the year in Time is provisional; see syslog.YearTracker.
	YearGuessed bool   `json:"-"`
	Host        string `json:"host,omitempty"`
	// Program is the syslog tag without the pid, e.g. "postfix/submission/smtpd".
	Program string `json:"program,omitempty"`
	Kind    Kind   `json:"kind"`
	// QueueID is the MTA's id of the message (Postfix queue id, Exim message id).
	QueueID    string `json:"queue_id,omitempty"`
	ClientIP   string `json:"client_ip,omitempty"`
	ClientName string `json:"client_name,omitempty"`
	Helo       string `json:"helo,omitempty"`
	Proto      string `json:"proto,omitempty"`
	AuthMethod string `json:"auth_method,omitempty"`
	AuthUser   string `json:"auth_user,omitempty"`
	// From is the envelope sender; FromSet tells "<>" (null sender) from absent.
	From    string `json:"from,omitempty"`
	FromSet bool   `json:"from_set,omitempty"`
	To      string `json:"to,omitempty"`
	// OrigTo is the recipient as the message carried it before an alias,
	// .forward, redirect router or mailbox forwarding rewrote it into To
	// (Postfix orig_to, Exim's parent address, Exchange's
	// related-recipient-address).
	OrigTo string `json:"orig_to,omitempty"`
	// OrigQueueID is the id of the message this one is a copy of, where the
	// arrival names it (Postfix "orig_queue_id=" on a re-injection's client=
	// line, sent by a content filter with XFORWARD).
	OrigQueueID string `json:"orig_queue_id,omitempty"`
	// Requeued is the id of a new message on this host that a delivery or a
	// content filter created: local(8)'s "forwarded as ID" (Forwarded is
	// set), a content filter on loopback that answered "queued as ID" (a
	// claim that detect confirms when ID shows up in the log), amavis'
	// "queued_as: ID".
	Requeued string `json:"requeued,omitempty"`
	// Forwarded is set on a delivery that forwarded the message to other
	// recipients in the new message Requeued (an alias or .forward).
	Forwarded bool `json:"forwarded,omitempty"`
	// RelayDomain is set on a reject that proves the recipient's domain is
	// one this server relays for (a gateway or backup MX): Postfix's "User
	// unknown in relay recipient table".
	RelayDomain bool   `json:"relay_domain,omitempty"`
	Relay       string `json:"relay,omitempty"`
	Delay       string `json:"delay,omitempty"`
	Status      Status `json:"status,omitempty"`
	// Mailbox is set on a delivery into a mailbox on this system (Postfix
	// local, virtual, lmtp, or a pipe to dovecot/maildrop/cyrus): its
	// recipient domain is one of ours.
	Mailbox bool   `json:"mailbox,omitempty"`
	DSN     string `json:"dsn,omitempty"`
	// Code is the SMTP reply code of a reject or of a remote reply.
	Code int `json:"code,omitempty"`
	// Action is how a reject acted: reject, reject_warning, hold, discard,
	// milter-reject, ...
	Action string `json:"action,omitempty"`
	// Stage is the SMTP stage of a reject (CONNECT, HELO, MAIL, RCPT, DATA,
	// END-OF-MESSAGE, header, body) or the last command before a lost connection.
	Stage string `json:"stage,omitempty"`
	// Reply is the reject reason or the remote server's reply.
	Reply     string `json:"reply,omitempty"`
	MessageID string `json:"message_id,omitempty"`
	// Subject is the message's subject where the log has it (Exim T= on
	// arrivals, Exchange message tracking). Chosen by the sender: never a
	// metric label, always escaped in alerts.
	Subject string `json:"subject,omitempty"`
	// Direction is Exchange's directionality: "Incoming" (from outside the
	// organization) or "Originating" (submitted by its own users).
	Direction string `json:"direction,omitempty"`
	Size      int64  `json:"size,omitempty"`
	Nrcpt     int    `json:"nrcpt,omitempty"`
	UID       string `json:"uid,omitempty"`
	// Detail holds kind-specific extra text: disconnect counters, the queue id
	// of a notification, the original client of a re-injected message.
	Detail string `json:"detail,omitempty"`
	// BadFields counts field values the parser could not read and left
	// empty rather than guess (the Exim test suite's "S=sss").
	BadFields uint8 `json:"bad_fields,omitempty"`
	// Line is the raw log line, kept for evidence.
	Line string `json:"line"`
}
