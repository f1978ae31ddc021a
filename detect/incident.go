package detect

import (
	"fmt"
	"hash/maphash"
	"sort"
	"strings"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
)

// An Incident groups the findings about one relaying client: the rules it
// matched (foreign-to-foreign, unknown-relaying-client, and the
// outbound-spike findings it caused) with one set of counts that agree
// wherever they are shown. The findings themselves, with their rule ids,
// severities and JSON fields, stay as they are; an incident is a view.
type Incident struct {
	// Client is the relaying client's address, the key of its findings.
	Client string `json:"client"`
	// Name is how the log named the client ("unknown[192.0.2.1]").
	Name     string   `json:"name"`
	Host     string   `json:"host"`
	Severity Severity `json:"severity"`
	Summary  string   `json:"summary"`
	// Rules are the rule ids it matched; Findings name each finding by
	// rule and key, worst first.
	Rules    []string     `json:"rules"`
	Findings []FindingRef `json:"findings"`
	// Messages is the number of distinct messages relayed for the client.
	Messages int `json:"messages"`
	// Recipients is the number of distinct recipients of those messages
	// (RecipientsCapped: a lower bound).
	Recipients       int  `json:"recipients"`
	RecipientsCapped bool `json:"recipients_capped"`
	// Attempts counts delivery attempts of those messages by status.
	Attempts  Attempts  `json:"attempts"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Evidence  []string  `json:"evidence"`
	NextStep  string    `json:"next_step"`
	// MTA is the format family of the evidence (postfix, exim, exchange).
	MTA string `json:"mta"`
}

// FindingRef names a finding that belongs to an incident.
type FindingRef struct {
	Rule     string   `json:"rule"`
	Key      string   `json:"key"`
	Severity Severity `json:"severity"`
}

// Attempts are delivery attempts by status.
type Attempts struct {
	Sent     int `json:"sent"`
	Deferred int `json:"deferred"`
	Bounced  int `json:"bounced"`
	Other    int `json:"other"`
}

// Total is the number of attempts.
func (a Attempts) Total() int { return a.Sent + a.Deferred + a.Bounced + a.Other }

// relayer is what the detector counts for one relaying client, for its
// incident.
type relayer struct {
	messages int
	attempts Attempts
	rcpts    map[uint64]struct{}
	capped   bool
	program  string
	sender   string // the envelope sender of its first relayed message, for the advice
}

// maxIncidentRecipients bounds the distinct recipients kept for all
// relaying clients together (64-bit hashes).
const maxIncidentRecipients = 1 << 20

// noteRelayed counts one outbound delivery attempt of m, from a client that
// may not relay, for the client's incident.
func (d *Detector) noteRelayed(e *parsers.Event, m *message) {
	r, ok := d.relayers.get(m.clientIP)
	if !ok {
		r = &relayer{rcpts: map[uint64]struct{}{}, program: strings.Clone(e.Program), sender: m.from}
		d.relayers.put(strings.Clone(m.clientIP), r)
	}
	if m.counted&countedIncident == 0 {
		m.counted |= countedIncident
		r.messages++
	}
	switch e.Status {
	case parsers.StatusSent, parsers.StatusAccepted:
		r.attempts.Sent++
	case parsers.StatusDeferred:
		r.attempts.Deferred++
	case parsers.StatusBounced, parsers.StatusExpired:
		r.attempts.Bounced++
	default:
		r.attempts.Other++
	}
	h := maphash.String(d.seed, strings.ToLower(e.To))
	if _, ok := r.rcpts[h]; ok {
		return
	}
	if d.incidentRcpts >= maxIncidentRecipients {
		r.capped = true
		return
	}
	r.rcpts[h] = struct{}{}
	d.incidentRcpts++
}

// spikeCause finds which relaying client, if any, caused a spike on a key
// that is not a client's (all, sender-domain:): a majority vote (Boyer-Moore)
// over the deliveries counted into the spike finding, "" standing for mail
// from clients that may relay.
type spikeCause struct {
	candidate string
	votes     int
	exact     int // deliveries of the current candidate since it was chosen
	total     int
}

func (d *Detector) noteSpikeCause(fk findingKey, m *message) {
	c, ok := d.causes.get(fk)
	if !ok {
		c = &spikeCause{}
		d.causes.put(findingKey{fk.rule, strings.Clone(fk.key)}, c)
	}
	who := ""
	if !m.submission.MayRelay() {
		who = m.clientIP
	}
	c.total++
	switch {
	case c.votes == 0:
		c.candidate, c.votes, c.exact = strings.Clone(who), 1, 1
	case c.candidate == who:
		c.votes++
		c.exact++
	default:
		c.votes--
	}
}

// causedBy returns the relaying client that sent at least half of a spike's
// deliveries, or "".
func (c *spikeCause) causedBy() string {
	if c == nil || c.candidate == "" || 2*c.exact < c.total {
		return ""
	}
	return c.candidate
}

// Incidents groups the reportable findings into one incident per relaying
// client, worst first. Spikes on the client's own key fold in, and so do
// spikes on all or on a sender domain that the client caused (at least half
// of their deliveries). Findings about no relaying client (a spike of a
// trusted host, a new relayer warning) belong to no incident.
func (d *Detector) Incidents() []Incident {
	fs := d.Findings()
	byClient := map[string]*Incident{}
	var order []string
	add := func(client string, f *Finding) {
		in, ok := byClient[client]
		if !ok {
			in = &Incident{Client: client, Host: f.Host, FirstSeen: f.FirstSeen, LastSeen: f.LastSeen}
			byClient[client] = in
			order = append(order, client)
		}
		in.Findings = append(in.Findings, FindingRef{f.Rule, f.Key, f.Severity})
		if !contains1(in.Rules, f.Rule) {
			in.Rules = append(in.Rules, f.Rule)
		}
		if f.Severity > in.Severity {
			in.Severity = f.Severity
		}
		if f.FirstSeen.Before(in.FirstSeen) {
			in.FirstSeen = f.FirstSeen
		}
		if f.LastSeen.After(in.LastSeen) {
			in.LastSeen = f.LastSeen
		}
		for _, l := range f.Evidence {
			if len(in.Evidence) < MaxEvidence && !contains1(in.Evidence, l) {
				in.Evidence = append(in.Evidence, l)
			}
		}
		if f.Rule == RuleUnknownRelayingClient && f.subject != "" {
			in.Name = f.subject
		}
		if in.NextStep == "" || f.Rule == RuleForeignToForeign {
			in.NextStep = f.NextStep // an open relay: close it first
		}
	}
	// Relay findings first: they define the incidents.
	for i := range fs {
		f := &fs[i]
		if (f.Rule == RuleForeignToForeign || f.Rule == RuleUnknownRelayingClient) && f.Severity == SeverityCritical {
			add(f.Key, f)
		}
	}
	for i := range fs {
		f := &fs[i]
		if f.Rule != RuleOutboundSpike {
			continue
		}
		client := ""
		if ip, ok := strings.CutPrefix(f.Key, "client:"); ok {
			client = ip
		} else if c, ok := d.causes.peek(findingKey{f.Rule, f.Key}); ok {
			client = c.causedBy()
		}
		if _, ok := byClient[client]; ok && client != "" {
			add(client, f)
		}
	}
	for i := range fs {
		if f := &fs[i]; joinsIncident(f) {
			if _, ok := byClient[f.Key]; ok {
				add(f.Key, f)
			}
		}
	}
	out := make([]Incident, 0, len(order))
	for _, client := range order {
		in := byClient[client]
		if r, ok := d.relayers.peek(client); ok {
			in.Messages, in.Recipients, in.RecipientsCapped, in.Attempts = r.messages, len(r.rcpts), r.capped, r.attempts
			if a := d.advice(r.program); a != nil {
				in.MTA = a.MTA
			}
		}
		sort.SliceStable(in.Findings, func(i, j int) bool { return in.Findings[i].Severity > in.Findings[j].Severity })
		name := in.Name
		if name == "" {
			name = in.Client
		}
		in.Summary = fmt.Sprintf("%s relayed %d messages to %d distinct recipients through %s without being allowed to relay (rules: %s)",
			name, in.Messages, in.Recipients, serverName(in.Host), strings.Join(in.Rules, ", "))
		out = append(out, *in)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if a.Messages != b.Messages {
			return a.Messages > b.Messages
		}
		return a.Client < b.Client
	})
	return out
}

func contains1(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// advice returns the advice of the MTA that logs under program, or nil.
func (d *Detector) advice(program string) *parsers.Advice {
	if d.cfg.Advice == nil || program == "" {
		return nil
	}
	return d.cfg.Advice(program)
}

// relayerAdvice returns the advice of the MTA that logged a relaying
// client's deliveries (nil if unknown) and the sender of its first message.
func (d *Detector) relayerAdvice(client string) (*parsers.Advice, string) {
	if r, ok := d.relayers.peek(client); ok {
		return d.advice(r.program), r.sender
	}
	return nil, ""
}
