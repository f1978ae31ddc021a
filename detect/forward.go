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

// redirect is one recipient rewrite logged apart from the delivery.
type redirect struct{ to, orig string }

// maxRedirects bounds the rewrites remembered per message.
const maxRedirects = 32

func (m *message) addRedirect(to, orig string) {
	if to == "" || orig == "" || len(m.redirects) >= maxRedirects {
		return
	}
	m.redirects = append(m.redirects, redirect{strings.Clone(to), strings.Clone(orig)})
}

// redirectedFrom returns the recipient that to replaced, following a chain
// of rewrites to the first ("" when to was not rewritten).
func (m *message) redirectedFrom(to string) string {
	orig := ""
	for range m.redirects {
		found := false
		for _, r := range m.redirects {
			if strings.EqualFold(r.to, to) {
				orig, to, found = r.orig, r.orig, true
				break
			}
		}
		if !found {
			break
		}
	}
	return orig
}
