package detect

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Severity orders findings.
type Severity uint8

// Severities, in increasing order.
const (
	SeverityInfo Severity = iota
	SeverityWarning
	SeverityCritical
)

var severityNames = [...]string{"info", "warning", "critical"}

// String returns "info", "warning" or "critical".
func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return "unknown"
}

// MarshalText encodes the severity by name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a severity name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	*s = v
	return err
}

// ParseSeverity parses "info", "warning" or "critical".
func ParseSeverity(name string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(name, n) {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q: use info, warning or critical", name)
}

// Rule ids. Scripts rely on them; they never change.
const (
	RuleForeignToForeign      = "foreign-to-foreign"
	RuleUnknownRelayingClient = "unknown-relaying-client"
	RuleOutboundSpike         = "outbound-spike"
	RuleRelayProbing          = "relay-probing"
)

// Rules lists every rule id, in the README's order (for metrics that
// report each rule, even at zero).
var Rules = []string{RuleForeignToForeign, RuleUnknownRelayingClient, RuleOutboundSpike, RuleRelayProbing, RuleRelayTrick, RuleBlocklisted, RuleCompromisedAccount, RuleQueueStorm}

// MaxEvidence is the number of log lines a finding keeps.
const MaxEvidence = 5

// Finding is what a rule found: enough for an on-call engineer to act.
type Finding struct {
	Rule     string   `json:"rule"`
	Key      string   `json:"key"`
	Severity Severity `json:"severity"`
	Host     string   `json:"host,omitempty"`
	Summary  string   `json:"summary"`
	// Count is what the rule counts: relayed messages, or outbound deliveries
	// in the window for outbound-spike.
	Count int `json:"count"`
	// Recipients is the number of delivery attempts behind Count.
	Recipients int       `json:"recipients,omitempty"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	// WindowStart and WindowEnd bound the window a rate rule measured.
	WindowStart time.Time `json:"window_start,omitzero"`
	WindowEnd   time.Time `json:"window_end,omitzero"`
	// Baseline is the learned per-window rate a spike was compared with.
	Baseline float64  `json:"baseline,omitempty"`
	Evidence []string `json:"evidence"`
	NextStep string   `json:"next_step"`
	// Episode counts the earlier episodes of this rule and key (0 for the
	// first): an episode ends after a quiet period of event time, and the
	// next evidence starts a new one whose counts start again.
	Episode int `json:"episode,omitempty"`
	// TotalCount is Count summed over the earlier episodes of the key.
	TotalCount int `json:"total_count,omitempty"`
	// EndedAt is set (event time) once the episode ended.
	EndedAt time.Time `json:"ended_at,omitzero"`

	// subject names the client in the summary ("unknown[192.0.2.1]").
	subject string
	// distinct is a rule's count of distinct things in the episode
	// (probing clients, receiving domains); program is the MTA that
	// logged the evidence, for its advice.
	distinct int
	program  string
	// detail is a rule's extra words for its summary.
	detail string
	// What OnFinding was last told, so that it hears of growth, not of
	// every event.
	notifiedCount  int
	notifiedSev    Severity
	notifiedWindow time.Time
	// lastActive is the episode clock at the latest evidence.
	lastActive time.Time
}

func (f *Finding) addEvidence(lines ...string) {
	for _, l := range lines {
		if len(f.Evidence) >= MaxEvidence {
			return
		}
		if l == "" {
			continue
		}
		dup := false
		for _, have := range f.Evidence {
			if have == l {
				dup = true
				break
			}
		}
		if !dup {
			f.Evidence = append(f.Evidence, strings.Clone(l))
		}
	}
}

// addMessageEvidence adds the lines a message kept, while there is room.
func (f *Finding) addMessageEvidence(m *message) {
	if len(f.Evidence) < MaxEvidence {
		f.addEvidence(m.evidenceLines()...)
	}
}

// SortFindings orders findings worst first: severity, then count, then
// first seen, then rule and key.
func SortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if !a.FirstSeen.Equal(b.FirstSeen) {
			return a.FirstSeen.Before(b.FirstSeen)
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return a.Key < b.Key
	})
}
