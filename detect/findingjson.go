package detect

import (
	"bytes"
	"encoding/json"
	"time"
)

// findingJSON is a Finding as JSON: every field present, the window and the
// baseline null when the rule measures none, ended_at null while the episode
// goes on, nothing HTML-escaped (the
// evidence is log lines that scripts grep for `from=<`).
type findingJSON struct {
	Rule        string     `json:"rule"`
	Key         string     `json:"key"`
	Severity    Severity   `json:"severity"`
	Host        string     `json:"host"`
	Summary     string     `json:"summary"`
	Count       int        `json:"count"`
	Recipients  int        `json:"recipients"`
	FirstSeen   time.Time  `json:"first_seen"`
	LastSeen    time.Time  `json:"last_seen"`
	WindowStart *time.Time `json:"window_start"`
	WindowEnd   *time.Time `json:"window_end"`
	Baseline    *float64   `json:"baseline"`
	Evidence    []string   `json:"evidence"`
	NextStep    string     `json:"next_step"`
	Episode     int        `json:"episode"`
	TotalCount  int        `json:"total_count"`
	EndedAt     *time.Time `json:"ended_at"`
}

// MarshalJSON writes every documented field, null where the rule has no
// value (window and baseline outside rate rules), without HTML escaping.
func (f Finding) MarshalJSON() ([]byte, error) {
	j := findingJSON{
		Rule: f.Rule, Key: f.Key, Severity: f.Severity, Host: f.Host, Summary: f.Summary,
		Count: f.Count, Recipients: f.Recipients, FirstSeen: f.FirstSeen, LastSeen: f.LastSeen,
		Evidence: f.Evidence, NextStep: f.NextStep, Episode: f.Episode, TotalCount: f.TotalCount,
	}
	if !f.EndedAt.IsZero() {
		ended := f.EndedAt
		j.EndedAt = &ended
	}
	if j.Evidence == nil {
		j.Evidence = []string{}
	}
	if !f.WindowStart.IsZero() {
		start, end, base := f.WindowStart, f.WindowEnd, f.Baseline
		j.WindowStart, j.WindowEnd, j.Baseline = &start, &end, &base
	}
	return MarshalNoEscape(j)
}

// MarshalNoEscape is json.Marshal without HTML escaping: log lines keep
// their `<`, `>` and `&`.
func MarshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
