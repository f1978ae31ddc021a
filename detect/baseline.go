package detect

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/relaywatch/relaywatch/parsers/source"
)

// MaxBaselineRelayers bounds the relayers a baseline remembers.
const MaxBaselineRelayers = 10000

// Baseline is what earlier runs learned, kept in a JSON file between runs:
// the trusted clients and authenticated users seen relaying, and the local
// domains learned from local deliveries.
type Baseline struct {
	Version int `json:"version"`
	// FirstEvent is the event time at which the baseline began; new relayers
	// are learned silently for the learn period after it.
	FirstEvent   time.Time                 `json:"first_event,omitzero"`
	Relayers     map[string]*RelayerRecord `json:"relayers"`
	LocalDomains []string                  `json:"local_domains,omitempty"`
	// Accounts are the authenticated users' baselines (compromised-account).
	Accounts map[string]*AccountRecord `json:"accounts,omitempty"`
}

// AccountRecord is one authenticated user's learned baseline.
type AccountRecord struct {
	Mean     AccountMeasures `json:"mean"`
	Windows  int             `json:"windows"`
	LastSeen time.Time       `json:"last_seen"`
}

// noteAccount records a user's baseline after a window, bounded like the
// relayers (the stalest forgotten).
func (b *Baseline) noteAccount(name string, mean AccountMeasures, windows int, t time.Time) {
	if b.Accounts == nil {
		b.Accounts = map[string]*AccountRecord{}
	}
	if r, ok := b.Accounts[name]; ok {
		r.Mean, r.Windows, r.LastSeen = mean, windows, t
		return
	}
	if len(b.Accounts) >= MaxBaselineRelayers {
		delete(b.Accounts, stalest(b.Accounts, func(r *AccountRecord) time.Time { return r.LastSeen }))
	}
	b.Accounts[strings.Clone(name)] = &AccountRecord{Mean: mean, Windows: windows, LastSeen: t}
}

// RelayerRecord is one relaying client ("client:10.0.0.5") or user ("user:alice").
type RelayerRecord struct {
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Count     int       `json:"count"`
}

// NewBaseline returns an empty baseline.
func NewBaseline() *Baseline {
	return &Baseline{Version: 1, Relayers: map[string]*RelayerRecord{}}
}

// LoadBaseline reads a baseline file. A missing file gives an empty baseline.
func LoadBaseline(path string) (*Baseline, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return NewBaseline(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	b := NewBaseline()
	if err := json.Unmarshal(data, b); err != nil {
		return nil, fmt.Errorf("baseline %s: %w", path, err)
	}
	if b.Relayers == nil {
		b.Relayers = map[string]*RelayerRecord{}
	}
	return b, nil
}

// Save writes the baseline atomically: a temporary file in the same
// directory, fsync, rename. A failed write leaves the old file in place.
func (b *Baseline) Save(path string) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	return WriteFileAtomic(path, append(data, '\n'))
}

// seen records that key relayed at t and reports whether it was known, and
// when the baseline began.
func (b *Baseline) seen(key string, t time.Time) (bool, time.Time) {
	if b.FirstEvent.IsZero() || t.Before(b.FirstEvent) {
		b.FirstEvent = t
	}
	if r, ok := b.Relayers[key]; ok {
		r.Count++
		if t.After(r.LastSeen) {
			r.LastSeen = t
		}
		return true, b.FirstEvent
	}
	if len(b.Relayers) >= MaxBaselineRelayers {
		delete(b.Relayers, stalest(b.Relayers, func(r *RelayerRecord) time.Time { return r.LastSeen }))
	}
	b.Relayers[strings.Clone(key)] = &RelayerRecord{FirstSeen: t, LastSeen: t, Count: 1}
	return false, b.FirstEvent
}

// MergeLocalDomains adds learned domains (kept sorted, bounded).
func (b *Baseline) MergeLocalDomains(domains []string) {
	set := map[string]bool{}
	for _, d := range append(b.LocalDomains, domains...) {
		set[d] = true
	}
	out := make([]string, 0, len(set))
	for d := range set {
		out = append(out, d)
	}
	sort.Strings(out)
	if len(out) > MaxLearnedDomains {
		out = out[:MaxLearnedDomains]
	}
	b.LocalDomains = out
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory that is synced and renamed into place; on any failure the
// temporary file is removed and path is untouched.
func WriteFileAtomic(path string, data []byte) error {
	return source.WriteFileAtomic(path, data)
}

// stalest returns the key of m whose record was seen last the longest ago.
func stalest[V any](m map[string]V, lastSeen func(V) time.Time) string {
	oldest, oldestT := "", time.Time{}
	for k, r := range m {
		if t := lastSeen(r); oldest == "" || t.Before(oldestT) {
			oldest, oldestT = k, t
		}
	}
	return oldest
}
