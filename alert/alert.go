// Package alert turns findings into alerts with a lifecycle and sends them
// to sinks: Slack (webhook or bot), Alertmanager, and a JSON lines log.
//
// An alert is keyed by (rule, key). It fires when its finding first
// appears, is updated when the finding grows (more messages, a higher
// severity), and resolves after a quiet period without new evidence. All of
// that runs on event time, so a batch replay behaves as watching live did.
// Sending is asynchronous: each sink has a bounded queue, a rate limit,
// retries with backoff, and counts what it had to drop; a slow or dead sink
// never blocks detection.
package alert

import (
	"sort"
	"strings"
	"time"

	"github.com/relaywatch/relaywatch/detect"
)

// DefaultResolveAfter is the quiet period after which an alert resolves.
const DefaultResolveAfter = 30 * time.Minute

// MaxOpen bounds the open alerts; beyond it the oldest is resolved early.
const MaxOpen = 10000

// Kind is the kind of a transition.
type Kind string

// Transition kinds.
const (
	Fired    Kind = "fired"
	Updated  Kind = "updated"
	Resolved Kind = "resolved"
	// Summary is a batch run's report: one message listing its alerts.
	Summary Kind = "summary"
)

// Alert is one alert: a finding over time. Its fields are the finding's,
// as of the last transition.
type Alert struct {
	detect.Finding
	// ResolvedAt is set (event time) once the alert resolved.
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
}

// MarshalJSON writes the finding's fields (see detect.Finding.MarshalJSON)
// and resolved_at, null while the alert is open.
func (a Alert) MarshalJSON() ([]byte, error) {
	b, err := a.Finding.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var resolved *time.Time
	if !a.ResolvedAt.IsZero() {
		resolved = &a.ResolvedAt
	}
	r, err := detect.MarshalNoEscape(resolved)
	if err != nil {
		return nil, err
	}
	b = append(b[:len(b)-1], `,"resolved_at":`...)
	return append(append(b, r...), '}'), nil
}

// ID identifies an alert: its rule and key.
func (a *Alert) ID() string { return a.Rule + " " + a.Key }

// Transition is a change of an alert's state, sent to the sinks.
type Transition struct {
	Kind  Kind  `json:"transition"`
	Alert Alert `json:"alert"`

	rest []Transition // the other members of a batch queued as one (EnqueueBatch)
}

// FromFinding makes an alert of a finding.
func FromFinding(f detect.Finding) Alert { return fromFinding(f) }

func fromFinding(f detect.Finding) Alert {
	f.Evidence = append([]string(nil), f.Evidence...)
	return Alert{Finding: f}
}

// Manager keeps the open alerts. It is not safe for concurrent use: call it
// from the goroutine that runs detection.
type Manager struct {
	resolveAfter time.Duration
	open         map[string]*Alert
	emit         func(Transition)
	now          time.Time
}

// NewManager returns a manager that hands every transition to emit.
// resolveAfter <= 0 means DefaultResolveAfter.
func NewManager(resolveAfter time.Duration, emit func(Transition)) *Manager {
	if resolveAfter <= 0 {
		resolveAfter = DefaultResolveAfter
	}
	return &Manager{resolveAfter: resolveAfter, open: map[string]*Alert{}, emit: emit}
}

// Observe takes a finding (from detect.Config.OnFinding): a new alert fires,
// an open one is updated when the finding grew. The same finding twice is
// no transition.
func (m *Manager) Observe(f detect.Finding) {
	if f.LastSeen.After(m.now) {
		m.now = f.LastSeen
	}
	a := fromFinding(f)
	id := a.ID()
	old, ok := m.open[id]
	if !ok {
		if len(m.open) >= MaxOpen {
			m.resolveOldest()
		}
		m.open[id] = &a
		m.emit(Transition{Kind: Fired, Alert: a})
		return
	}
	grew := a.Count > old.Count || a.Severity > old.Severity || !a.WindowStart.Equal(old.WindowStart)
	if a.FirstSeen.After(old.FirstSeen) || a.FirstSeen.IsZero() {
		a.FirstSeen = old.FirstSeen
	}
	*old = a
	if grew {
		m.emit(Transition{Kind: Updated, Alert: a})
	}
}

// Advance moves event time to now and resolves the alerts that were quiet
// for the resolve period.
func (m *Manager) Advance(now time.Time) {
	if now.After(m.now) {
		m.now = now
	}
	var quiet []*Alert
	for _, a := range m.open {
		if m.now.Sub(a.LastSeen) >= m.resolveAfter {
			quiet = append(quiet, a)
		}
	}
	sort.Slice(quiet, func(i, j int) bool { return quiet[i].ID() < quiet[j].ID() })
	for _, a := range quiet {
		m.resolve(a, a.LastSeen.Add(m.resolveAfter))
	}
}

func (m *Manager) resolve(a *Alert, at time.Time) {
	delete(m.open, a.ID())
	a.ResolvedAt = at
	m.emit(Transition{Kind: Resolved, Alert: *a})
}

func (m *Manager) resolveOldest() {
	var oldest *Alert
	for _, a := range m.open {
		if oldest == nil || a.LastSeen.Before(oldest.LastSeen) || a.LastSeen.Equal(oldest.LastSeen) && a.ID() < oldest.ID() {
			oldest = a
		}
	}
	if oldest != nil {
		m.resolve(oldest, m.now)
	}
}

// Open returns the open alerts, ordered by rule and key: the state a
// sidecar saves so that a restart does not announce them again.
func (m *Manager) Open() []Alert {
	out := make([]Alert, 0, len(m.open))
	for _, a := range m.open {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID() < out[j].ID() })
	return out
}

// Restore reopens saved alerts without announcing them.
func (m *Manager) Restore(alerts []Alert) {
	for _, a := range alerts {
		a := a
		a.Evidence = append([]string(nil), a.Evidence...)
		m.open[a.ID()] = &a
		if a.LastSeen.After(m.now) {
			m.now = a.LastSeen
		}
	}
}

// Escape makes text taken from a log safe for Slack's mrkdwn: '&', '<' and
// '>' become entities, so "<!channel>" or "<https://evil|click>" in a HELO
// name or a sender shows as text instead of pinging or linking.
func Escape(s string) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	return r.Replace(s)
}
