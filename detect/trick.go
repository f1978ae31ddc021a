package detect

import (
	"fmt"
	"strings"

	"github.com/relaywatch/relaywatch/parsers"
)

// RuleRelayTrick is raised when a recipient in routing syntax was accepted.
const RuleRelayTrick = "relay-trick-accepted"

// Routing-syntax forms of a recipient, the classic relay tests (nmap's
// smtp-open-relay tries them all).
const (
	trickPercent     = "percent hack"      // user%victim.example@ours
	trickSourceRoute = "source route"      // @hop:user@victim.example
	trickBangPath    = "bang path"         // victim.example!user@ours
	trickQuoted      = "quoted local part" // "user@victim.example"@ours
)

// relayTrick returns the routing form of addr and the domain it routes to,
// or "" when addr is an ordinary address.
func relayTrick(addr string) (form, target string) {
	if strings.HasPrefix(addr, "@") {
		if c := strings.LastIndexByte(addr, ':'); c > 0 {
			return trickSourceRoute, Domain(addr[c+1:])
		}
		return "", ""
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return "", ""
	}
	local := addr[:at]
	switch {
	case len(local) > 2 && local[0] == '"' && local[len(local)-1] == '"' && strings.IndexByte(local[1:len(local)-1], '@') >= 0:
		inner := local[1 : len(local)-1]
		return trickQuoted, strings.ToLower(inner[strings.LastIndexByte(inner, '@')+1:])
	case strings.IndexByte(local, '%') >= 0:
		return trickPercent, strings.ToLower(local[strings.LastIndexByte(local, '%')+1:])
	case strings.IndexByte(local, '!') > 0:
		return trickBangPath, strings.ToLower(local[:strings.IndexByte(local, '!')])
	}
	return "", ""
}

// trickRecipient returns the recipient of a delivery in routing syntax,
// its form and the domain it routes to ("" when none): the original
// recipient (Postfix orig_to, Exim's parent address, an Exchange rewrite)
// or the recipient as logged.
func (d *Detector) trickRecipient(e *parsers.Event, m *message) (addr, form, target string) {
	for _, a := range [...]string{e.OrigTo, m.redirectedFrom(e.To), e.To} {
		if a == "" {
			continue
		}
		if form, target := relayTrick(a); form != "" && strings.IndexByte(target, '.') > 0 && !d.policy.IsLocalDomain(target) {
			return a, form, target
		}
	}
	return "", "", ""
}

// relayTrickAccepted runs on an accepted or delivered recipient of a
// message from a client that may not relay: a recipient in routing syntax
// that routes to a foreign domain means a partially open relay, whether
// or not this delivery succeeded.
func (d *Detector) relayTrickAccepted(e *parsers.Event, m *message, class DeliveryClass) {
	if m.submission.MayRelay() || m.submission == SubmissionUnknown {
		return
	}
	if class != DeliveryOutbound && e.Status != parsers.StatusAccepted {
		return
	}
	addr, form, _ := d.trickRecipient(e, m)
	if addr == "" {
		return
	}
	key := m.clientIP
	if key == "" {
		key = m.clientText
	}
	f := d.finding(RuleRelayTrick, key, e, SeverityCritical)
	if m.counted&countedTrick == 0 || f.Count == 0 {
		m.counted |= countedTrick
		f.Count++
	}
	f.Recipients++
	if f.Recipients == 1 {
		// The episode's first trick is named in the summary.
		f.subject, f.program = m.clientText, strings.Clone(e.Program)
		f.detail = form + ", first " + strings.Clone(addr)
	}
	f.addMessageEvidence(m)
	f.addEvidence(e.Line)
	d.notify(f)
}

// describeTrick writes a relay-trick-accepted finding's summary and next step.
func (d *Detector) describeTrick(f *Finding) {
	f.Summary = fmt.Sprintf("%s accepted recipients in routing syntax (%s) from %s, which may not relay: a partially open relay, even if no spam went out yet (%d messages, %d recipients)", serverName(f.Host), f.detail, f.subject, f.Count, f.Recipients)
	f.NextStep = "Stop routing in the local part (Postfix: allow_percent_hack = no, swap_bangpath = no; Exim: empty percent_hack_domains), keep the relay check (reject_unauth_destination; Exim's acl_smtp_rcpt), and purge what " + f.Key + " queued."
	if a := d.advice(f.program); a != nil {
		f.NextStep = a.For(a.RelayTrick, f.Key, "")
	}
}
