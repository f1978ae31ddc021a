package detect

import (
	"fmt"
	"strings"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
)

// ProbingConfig configures the relay-probing rule. Zero values take the
// defaults.
type ProbingConfig struct {
	// Window is how long (event time) after its last refused attempt a
	// client is remembered as a prober: its outbound delivery within it is
	// critical. Default 7 days.
	Window time.Duration
	// MaxClients caps the probing clients remembered (keys are chosen by
	// whoever connects); the least recently seen is forgotten. Default
	// 10,000.
	MaxClients int
}

// Defaults of ProbingConfig.
const (
	DefaultProbingWindow     = 7 * 24 * time.Hour
	DefaultProbingMaxClients = 10000
)

// probeKeyAll is the key of the relay-probing info finding: one per
// detector, counting every refused attempt.
const probeKeyAll = "all"

// prober is what the rule remembers of a client that was refused relaying.
type prober struct {
	attempts int
	last     time.Time
	// episode is the FirstSeen of the info episode that counted it as a
	// distinct client.
	episode time.Time
	// line is its first refused attempt, kept as evidence for the day it
	// gets through.
	line string
}

type probingRule struct {
	cfg     ProbingConfig
	clients *lru[string, *prober]
}

func newProbingRule(cfg ProbingConfig) (*probingRule, error) {
	if cfg.Window == 0 {
		cfg.Window = DefaultProbingWindow
	}
	if cfg.MaxClients == 0 {
		cfg.MaxClients = DefaultProbingMaxClients
	}
	if cfg.Window < time.Minute {
		return nil, fmt.Errorf("probing window %v: must be at least 1m", cfg.Window)
	}
	if cfg.MaxClients < 1 {
		return nil, fmt.Errorf("probing clients %d: must be at least 1", cfg.MaxClients)
	}
	return &probingRule{cfg: cfg, clients: newLRU[string, *prober](cfg.MaxClients)}, nil
}

// refused records a recipient refused because the client may not relay:
// the info finding counts the attempts and distinct clients of the episode.
func (p *probingRule) refused(d *Detector, e *parsers.Event) {
	if e.ClientIP == "" {
		return
	}
	c, ok := p.clients.get(e.ClientIP)
	if !ok {
		c = &prober{line: strings.Clone(e.Line)}
		p.clients.put(strings.Clone(e.ClientIP), c)
	}
	c.attempts++
	if e.Time.After(c.last) {
		c.last = e.Time
	}
	f := d.finding(RuleRelayProbing, probeKeyAll, e, SeverityInfo)
	if f.Count == 0 {
		f.distinct = 0
	}
	if !c.episode.Equal(f.FirstSeen) {
		c.episode = f.FirstSeen
		f.distinct++
	}
	f.Count++
	if f.program == "" {
		f.program = strings.Clone(e.Program)
	}
	f.addEvidence(e.Line)
	d.notify(f)
}

// delivered runs on an outbound delivery of a message from a client that
// may not relay: a client refused earlier and now accepted means the relay
// just opened.
func (p *probingRule) delivered(d *Detector, e *parsers.Event, m *message) {
	if m.clientIP == "" {
		return
	}
	c, ok := p.clients.peek(m.clientIP)
	if !ok || e.Time.Sub(c.last) > p.cfg.Window {
		return
	}
	f := d.finding(RuleRelayProbing, m.clientIP, e, SeverityCritical)
	if m.counted&countedProbe == 0 || f.Count == 0 {
		m.counted |= countedProbe
		f.Count++
	}
	f.Recipients++
	f.distinct = c.attempts
	if f.subject == "" {
		f.subject = m.clientText
		f.program = strings.Clone(e.Program)
	}
	f.addEvidence(c.line)
	f.addMessageEvidence(m)
	f.addEvidence(e.Line)
	d.notify(f)
}

// describe writes a relay-probing finding's summary and next step.
func (p *probingRule) describe(d *Detector, f *Finding) {
	a := d.advice(f.program)
	if f.Severity == SeverityCritical {
		f.Summary = fmt.Sprintf("%s was refused relaying (%d attempts), and now %s accepted it for foreign recipients (%d messages, %d deliveries): the relay has just been opened", f.subject, f.distinct, serverName(f.Host), f.Count, f.Recipients)
		f.NextStep = "A client that was refused relaying is now accepted for foreign recipients: something opened the relay. Restore the relay restrictions (Postfix: smtpd_relay_restrictions with reject_unauth_destination; Exim: relay_from_hosts and acl_smtp_rcpt), block " + f.Key + " and purge its queued mail."
		if a != nil {
			f.NextStep = a.For(a.ProbeAccepted, f.Key, "")
		}
		return
	}
	f.Summary = fmt.Sprintf("someone is testing whether %s is an open relay: %d relay attempts from %d distinct clients, every one refused", serverName(f.Host), f.Count, f.distinct)
	f.NextStep = "Nothing got through; keep the relay restrictions as they are (Postfix: reject_unauth_destination in smtpd_relay_restrictions; Exim: the relay check in acl_smtp_rcpt). relaywatch raises this to critical if one of these clients is later accepted for a foreign recipient."
	if a != nil {
		f.NextStep = a.For(a.Probing, "", "")
	}
}

// joinsIncident tells whether a finding keyed by a client address belongs
// to that client's incident (when it has one).
func joinsIncident(f *Finding) bool {
	return (f.Rule == RuleRelayProbing || f.Rule == RuleRelayTrick) && f.Severity == SeverityCritical
}
