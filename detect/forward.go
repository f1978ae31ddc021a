package detect

import "strings"

// isForward reports whether a delivery to a foreign recipient to is a
// forward: its original recipient orig (an alias, .forward, redirect router
// or mailbox forwarding rewrote it) is local, a bare local name or an
// address in a local domain. An original recipient in routing syntax (the
// percent hack "user%victim@ours", a source route "@hop:user@victim", a bang
// path "victim!user@ours", a quoted local part hiding an '@') is a relay
// trick, not a forward.
func (d *Detector) isForward(orig, to string) bool {
	if orig == "" || strings.EqualFold(orig, to) || routingSyntax(orig) {
		return false
	}
	at := strings.LastIndexByte(orig, '@')
	return at < 0 || d.policy.IsLocalDomain(Domain(orig))
}

// routingSyntax reports whether an address routes through its local part or
// a source route: '%', '!', '@' or a quote before the domain, or a leading '@'.
func routingSyntax(addr string) bool {
	local := addr
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		local = addr[:at]
	}
	return strings.HasPrefix(addr, "@") || strings.ContainsAny(local, "%!@\":")
}
