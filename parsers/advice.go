package parsers

import "strings"

// Advice is what an on-call engineer is told to do about relaying, in the
// words of the MTA that logged the evidence. Each format package keeps its
// own (postfix.Advice, exim.Advice, exchange.Advice); detect only fills in
// the client. In the texts, CLIENT stands for the relaying client's address
// and SENDER for the envelope sender of its messages.
type Advice struct {
	// MTA names the mail server software ("Postfix").
	MTA string
	// CloseRelay says how to close an open relay and purge what it queued.
	CloseRelay string
	// FindOut says how to find out why a client may relay, and how to let a
	// legitimate one relay on purpose.
	FindOut string
	// Spike says how to see who is sending and stop a compromised sender.
	Spike string
}

// For returns a text of the advice with CLIENT replaced by client and
// SENDER by sender. Both come from the log (chosen by the attacker) and end
// up in commands an operator may paste into a shell: a value with anything
// but letters, digits and "._+=@:-" is left as the placeholder.
func (a *Advice) For(text, client, sender string) string {
	if shellSafe(client) {
		text = strings.ReplaceAll(text, "CLIENT", client)
	}
	if shellSafe(sender) {
		text = strings.ReplaceAll(text, "SENDER", sender)
	}
	return text
}

func shellSafe(s string) bool {
	if s == "" || len(s) > 200 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._+=@:-", c) >= 0) {
			return false
		}
	}
	return true
}

// AdviceFor returns the advice of the format that logs lines under a program
// name (the Program of an Event), or nil.
func (r *Registry) AdviceFor(program string) *Advice {
	for i := range r.formats {
		f := &r.formats[i]
		if f.Advice != nil && f.OwnsProgram != nil && f.OwnsProgram(program) {
			return f.Advice
		}
	}
	return nil
}
