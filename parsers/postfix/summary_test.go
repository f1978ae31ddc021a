package postfix

import (
	"fmt"
	"strings"

	"github.com/relaywatch/relaywatch/parsers"
)

// summary renders the fields of an event that a test checks, as
// "kind=accept queue_id=ABC client_ip=1.2.3.4 ...": every non-empty field
// except time, host, program and the raw line, in a fixed order.
func summary(e parsers.Event) string {
	var b strings.Builder
	add := func(k, v string) {
		if v == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if strings.ContainsAny(v, " \"") {
			v = fmt.Sprintf("%q", v)
		}
		b.WriteString(k + "=" + v)
	}
	add("kind", e.Kind.String())
	add("queue_id", e.QueueID)
	add("client_name", e.ClientName)
	add("client_ip", e.ClientIP)
	add("helo", e.Helo)
	add("proto", e.Proto)
	add("auth_method", e.AuthMethod)
	add("auth_user", e.AuthUser)
	if e.FromSet {
		add("from", "<"+e.From+">")
	}
	add("to", e.To)
	add("orig_to", e.OrigTo)
	add("relay", e.Relay)
	add("delay", e.Delay)
	add("status", e.Status.String())
	if e.Mailbox {
		add("mailbox", "true")
	}
	add("dsn", e.DSN)
	if e.Code != 0 {
		add("code", fmt.Sprint(e.Code))
	}
	add("action", e.Action)
	add("stage", e.Stage)
	add("reply", e.Reply)
	add("message_id", e.MessageID)
	if e.Size != 0 {
		add("size", fmt.Sprint(e.Size))
	}
	if e.Nrcpt != 0 {
		add("nrcpt", fmt.Sprint(e.Nrcpt))
	}
	add("uid", e.UID)
	add("detail", e.Detail)
	return b.String()
}
