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
	// Probing says what to do while clients are refused relaying (CLIENT:
	// one of them).
	Probing string
	// ProbeAccepted says what to do when a client that was refused relaying
	// is later accepted for a foreign recipient: the relay just opened.
	ProbeAccepted string
	// RelayTrick says how to stop accepting recipients in routing syntax
	// (percent hack, bang path, source route, quoted local part).
	RelayTrick string
	// Blocklisted says how to find what got the server listed, before
	// asking for delisting (detect adds the list's delisting page).
	Blocklisted string
	// Compromised says how to lock an authenticated account (USER) and
	// purge what it queued.
	Compromised string
	// QueueStorm says how to see what fills the queue with deferred and
	// bounced mail or backscatter.
	QueueStorm string
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

// ForUser returns a text of the advice with USER replaced by an
// authenticated user's name and SENDER by its envelope sender, under the
// same rule as For.
func (a *Advice) ForUser(text, user, sender string) string {
	if shellSafe(user) {
		text = strings.ReplaceAll(text, "USER", user)
	}
	return a.For(text, "", sender)
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
