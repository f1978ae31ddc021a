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

// DefaultResolveAfter is the quiet period after which an alert resolves:
// the end of its finding's episode.
const DefaultResolveAfter = detect.DefaultEpisodeGap

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
	// Notes are lines shown with a batch run's Summary, above its findings
	// (incidents, notes about the run); they may hold log-derived text,
	// which each sink escapes.
	Notes []string `json:"-"`

	rest []Transition // the other members of a batch queued as one (EnqueueBatch)
}

// FromFinding makes an alert of a finding.
func FromFinding(f detect.Finding) Alert { return fromFinding(f) }

func fromFinding(f detect.Finding) Alert {
	f.Evidence = append([]string(nil), f.Evidence...)
	return Alert{Finding: f}
}

// Manager keeps the open alerts. It mirrors the episodes of detect's
// findings, which own the lifecycle on event time: a finding's first
// report fires an alert, its growth updates it, the end of its episode
// resolves it, and a later episode of the same key fires again (a group
// whose last notification was a resolution is notified as new). It is not
// safe for concurrent use: call it from the goroutine that runs detection.
type Manager struct {
	open map[string]*Alert
	emit func(Transition)
}

// NewManager returns a manager that hands every transition to emit.
func NewManager(emit func(Transition)) *Manager {
	return &Manager{open: map[string]*Alert{}, emit: emit}
}

// Observe takes a finding (from detect.Config.OnFinding): a new episode
// fires, growth of an open one is an update, an ended one resolves. The
// same finding twice is no transition.
func (m *Manager) Observe(f detect.Finding) {
	id := f.Rule + " " + f.Key
	old, ok := m.open[id]
	if ok && old.Episode != f.Episode {
		// An episode whose end was not seen (the finding was evicted
		// and came back): the old one is over.
		m.resolve(old, f.FirstSeen)
		ok = false
	}
	if !f.EndedAt.IsZero() {
		if ok {
			old.Finding = f
			old.Evidence = append([]string(nil), f.Evidence...)
			m.resolve(old, f.EndedAt)
		}
		return
	}
	a := fromFinding(f)
	if !ok {
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

func (m *Manager) resolve(a *Alert, at time.Time) {
	delete(m.open, a.ID())
	a.ResolvedAt = at
	m.emit(Transition{Kind: Resolved, Alert: *a})
}

// Len is the number of open alerts.
func (m *Manager) Len() int { return len(m.open) }

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

// Restore reopens saved alerts without announcing them. Give their
// findings to detect's Detector.Restore too, so that their episodes go on.
func (m *Manager) Restore(alerts []Alert) {
	for _, a := range alerts {
		a := a
		a.Evidence = append([]string(nil), a.Evidence...)
		a.ResolvedAt = time.Time{}
		m.open[a.ID()] = &a
	}
}

// Findings returns the findings of the open alerts, for
// detect's Detector.Restore.
func (m *Manager) Findings() []detect.Finding {
	out := make([]detect.Finding, 0, len(m.open))
	for _, a := range m.Open() {
		out = append(out, a.Finding)
	}
	return out
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
