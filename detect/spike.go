package detect

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
)

// SpikeConfig configures the outbound-spike rule. Zero values take the defaults.
type SpikeConfig struct {
	// Window is the length of the counting windows, aligned to the epoch.
	// Default 10m.
	Window time.Duration
	// Factor: a window's outbound deliveries must reach Factor times the
	// learned baseline. Default 5.
	Factor float64
	// Min is the absolute floor: fewer outbound deliveries in a window never
	// raise a finding. Default 50.
	Min int
	// Alpha is the weight of the newest window in the baseline (an
	// exponentially weighted moving average of per-window counts). Default 0.1.
	Alpha float64
	// MaxKeys caps the clients, users and sender domains tracked. Default 10,000.
	MaxKeys int
}

// Defaults of SpikeConfig.
const (
	DefaultSpikeWindow  = 10 * time.Minute
	DefaultSpikeFactor  = 5.0
	DefaultSpikeMin     = 50
	DefaultSpikeAlpha   = 0.1
	DefaultSpikeMaxKeys = 10000
)

type spikeKey struct{ kind, val string }

func (k spikeKey) String() string {
	if k.val == "" {
		return k.kind
	}
	return k.kind + ":" + k.val
}

type spikeState struct {
	windowStart time.Time
	count       int
	ewma        float64
	windows     int  // completed windows in the baseline
	fromStart   bool // seen in the stream's first window: judged only with history
	fired       bool // a finding was raised for the current window
}

type spikeRule struct {
	cfg  SpikeConfig
	keys *lru[spikeKey, *spikeState]
}

func newSpikeRule(cfg SpikeConfig) (*spikeRule, error) {
	if cfg.Window == 0 {
		cfg.Window = DefaultSpikeWindow
	}
	if cfg.Factor == 0 {
		cfg.Factor = DefaultSpikeFactor
	}
	if cfg.Min == 0 {
		cfg.Min = DefaultSpikeMin
	}
	if cfg.Alpha == 0 {
		cfg.Alpha = DefaultSpikeAlpha
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultSpikeMaxKeys
	}
	switch {
	case cfg.Window < time.Second:
		return nil, fmt.Errorf("spike window %v: must be at least 1s", cfg.Window)
	case cfg.Factor < 1:
		return nil, fmt.Errorf("spike factor %v: must be at least 1", cfg.Factor)
	case cfg.Min < 1:
		return nil, fmt.Errorf("spike minimum %d: must be at least 1", cfg.Min)
	case cfg.Alpha <= 0 || cfg.Alpha > 1:
		return nil, fmt.Errorf("spike alpha %v: must be in (0, 1]", cfg.Alpha)
	}
	return &spikeRule{cfg: cfg, keys: newLRU[spikeKey, *spikeState](cfg.MaxKeys)}, nil
}

// count records one outbound delivery under every key it belongs to.
func (s *spikeRule) count(d *Detector, e *parsers.Event, m *message) {
	ws := e.Time.Truncate(s.cfg.Window)
	stranger := !m.submission.MayRelay()
	s.countKey(d, e, m, spikeKey{kind: "all"}, ws, stranger)
	if m.clientIP != "" {
		s.countKey(d, e, m, spikeKey{"client", m.clientIP}, ws, stranger)
	}
	if m.authUser != "" {
		s.countKey(d, e, m, spikeKey{"user", m.authUser}, ws, stranger)
	}
	if dom := Domain(m.from); dom != "" {
		s.countKey(d, e, m, spikeKey{"sender-domain", dom}, ws, stranger)
	}
}

// countForwarded records one forwarded delivery: under "all" (forwarded
// spam gets a server blocklisted too) and "forwarded", never under the
// client or sender that sent it to the local recipient.
func (s *spikeRule) countForwarded(d *Detector, e *parsers.Event, m *message) {
	ws := e.Time.Truncate(s.cfg.Window)
	s.countKey(d, e, m, spikeKey{kind: "all"}, ws, false)
	s.countKey(d, e, m, spikeKey{kind: "forwarded"}, ws, false)
}

func (s *spikeRule) countKey(d *Detector, e *parsers.Event, m *message, k spikeKey, ws time.Time, stranger bool) {
	st, ok := s.keys.get(k)
	if !ok {
		st = &spikeState{windowStart: ws, fromStart: e.Time.Before(d.start.Add(s.cfg.Window))}
		s.keys.put(spikeKey{k.kind, strings.Clone(k.val)}, st)
	}
	s.roll(st, ws, d.start)
	st.count++
	threshold := math.Max(float64(s.cfg.Min), s.cfg.Factor*st.ewma)
	judged := (stranger && k.kind == "client") || !st.fromStart || st.windows >= 1
	if !judged || float64(st.count) < threshold {
		return
	}
	f := d.finding(RuleOutboundSpike, k.String(), e, SeverityWarning)
	if f == nil {
		return
	}
	if !st.fired || f.WindowStart.Equal(ws) {
		st.fired = true
		if st.count >= f.Count {
			f.Count, f.WindowStart, f.WindowEnd, f.Baseline = st.count, ws, ws.Add(s.cfg.Window), math.Round(st.ewma*10)/10
		}
		f.Recipients++
		if k.kind != "client" {
			d.noteSpikeCause(findingKey{RuleOutboundSpike, f.Key}, m)
		}
		f.addMessageEvidence(m)
		f.addEvidence(e.Line)
		d.notify(f)
	}
}

// describe writes a spike finding's summary and next step.
func (s *spikeRule) describe(f *Finding) {
	what := f.Key
	switch what {
	case "all":
		what = "all outbound mail of " + serverName(f.Host)
	case "forwarded":
		what = "mail forwarded by " + serverName(f.Host) + " for local recipients (aliases, .forward, redirects)"
	}
	f.Summary = fmt.Sprintf("outbound spike: %s sent %d deliveries to foreign domains in %v (baseline %.1f per window, threshold %.0f)", what, f.Count, s.cfg.Window, f.Baseline, math.Max(float64(s.cfg.Min), s.cfg.Factor*f.Baseline))
	f.NextStep = "See who is sending (postqueue -p | tail; qshape deferred). If an account is compromised, disable it and reset its password; if a host, block it; then hold or purge its queued mail (postsuper -h / -d)."
}

// roll moves a key's state to the window starting at ws.
func (s *spikeRule) roll(st *spikeState, ws, streamStart time.Time) {
	if !ws.After(st.windowStart) {
		return
	}
	partial := st.windowStart.Before(streamStart) || st.windowStart.Equal(streamStart.Truncate(s.cfg.Window))
	switch {
	case st.fromStart && st.windows == 0 && partial:
		// The stream began inside this window: it is not a full sample.
	case st.fromStart && st.windows == 0:
		st.ewma = float64(st.count)
		st.windows = 1
	default:
		st.ewma = s.cfg.Alpha*float64(st.count) + (1-s.cfg.Alpha)*st.ewma
		st.windows++
	}
	if gap := int(ws.Sub(st.windowStart)/s.cfg.Window) - 1; gap > 0 {
		if st.windows > 0 || !st.fromStart {
			st.ewma *= math.Pow(1-s.cfg.Alpha, float64(min(gap, 10000)))
			st.windows += gap
		}
	}
	st.windowStart, st.count, st.fired = ws, 0, false
}
