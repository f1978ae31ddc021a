package detect

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
)

// RuleQueueStorm is raised when failing outbound deliveries or backscatter
// jump far above their baseline.
const RuleQueueStorm = "queue-storm"

// StormConfig configures the queue-storm rule. Zero values take the defaults.
type StormConfig struct {
	// Window is the counting window, aligned to the epoch. Default 1h.
	Window time.Duration
	// Factor: a window must reach Factor times its learned baseline. Default 5.
	Factor float64
	// MinFailed is the floor for deferred (first deferral of a message),
	// bounced and expired outbound deliveries in a window. Default 100.
	MinFailed int
	// MinBackscatter is the floor for null-sender deliveries to foreign
	// recipients in a window. Default 50.
	MinBackscatter int
}

// Defaults of StormConfig.
const (
	DefaultStormWindow         = time.Hour
	DefaultStormFactor         = 5.0
	DefaultStormMinFailed      = 100
	DefaultStormMinBackscatter = 50
)

// The keys of queue-storm: fixed, so its state is bounded by construction.
const (
	stormFailed      = "failed"
	stormBackscatter = "backscatter"
)

type stormRule struct {
	cfg   StormConfig
	rates *spikeRule // its window arithmetic (roll), not its findings
	keys  map[string]*spikeState
}

func newStormRule(cfg StormConfig) (*stormRule, error) {
	if cfg.Window == 0 {
		cfg.Window = DefaultStormWindow
	}
	if cfg.Factor == 0 {
		cfg.Factor = DefaultStormFactor
	}
	if cfg.MinFailed == 0 {
		cfg.MinFailed = DefaultStormMinFailed
	}
	if cfg.MinBackscatter == 0 {
		cfg.MinBackscatter = DefaultStormMinBackscatter
	}
	switch {
	case cfg.Window < time.Minute:
		return nil, fmt.Errorf("storm window %v: must be at least 1m", cfg.Window)
	case cfg.Factor < 1:
		return nil, fmt.Errorf("storm factor %v: must be at least 1", cfg.Factor)
	case cfg.MinFailed < 1 || cfg.MinBackscatter < 1:
		return nil, fmt.Errorf("storm minimums must be at least 1")
	}
	rates := &spikeRule{cfg: SpikeConfig{Window: cfg.Window, Factor: cfg.Factor, Alpha: DefaultSpikeAlpha}}
	return &stormRule{cfg: cfg, rates: rates, keys: map[string]*spikeState{}}, nil
}

// delivered counts an outbound or forwarded delivery attempt of m: a
// message's first deferral, a bounce, and a null-sender delivery to a
// foreign domain (outbound only).
func (s *stormRule) delivered(d *Detector, e *parsers.Event, m *message, class DeliveryClass, firstAttempt bool) {
	if d.clock.isAhead {
		return
	}
	switch {
	case e.Status == parsers.StatusBounced, e.Status == parsers.StatusExpired,
		e.Status == parsers.StatusDeferred && firstAttempt:
		s.count(d, e, m, stormFailed, s.cfg.MinFailed)
	}
	if class == DeliveryOutbound && m.fromSet && m.from == "" && firstAttempt {
		s.count(d, e, m, stormBackscatter, s.cfg.MinBackscatter)
	}
}

// expired counts a message returned to its sender after the queue lifetime.
func (s *stormRule) expired(d *Detector, e *parsers.Event) {
	if !d.clock.isAhead {
		s.count(d, e, nil, stormFailed, s.cfg.MinFailed)
	}
}

func (s *stormRule) count(d *Detector, e *parsers.Event, m *message, key string, floor int) {
	ws := e.Time.Truncate(s.cfg.Window)
	st, ok := s.keys[key]
	if !ok {
		st = &spikeState{windowStart: ws, fromStart: e.Time.Before(d.start.Add(s.cfg.Window))}
		s.keys[key] = st
	}
	s.rates.roll(st, ws, d.start)
	st.count++
	threshold := math.Max(float64(floor), s.cfg.Factor*st.ewma)
	if (st.fromStart && st.windows == 0) || float64(st.count) < threshold {
		return
	}
	f := d.finding(RuleQueueStorm, key, e, SeverityWarning)
	if !st.fired || f.WindowStart.Equal(ws) {
		st.fired = true
		if st.count >= f.Count {
			f.Count, f.WindowStart, f.WindowEnd, f.Baseline = st.count, ws, ws.Add(s.cfg.Window), math.Round(st.ewma*10)/10
		}
		f.Recipients++
		if f.program == "" {
			f.program = strings.Clone(e.Program)
		}
		if m != nil {
			f.addMessageEvidence(m)
		}
		f.addEvidence(e.Line)
		d.notify(f)
	}
}

// describeStorm writes a queue-storm finding's summary and next step.
func (d *Detector) describeStorm(f *Finding) {
	threshold := math.Max(float64(d.cfg.Storm.MinFailed), d.storm.cfg.Factor*f.Baseline)
	what := "deferred, bounced or expired outbound deliveries"
	if f.Key == stormBackscatter {
		threshold = math.Max(float64(d.storm.cfg.MinBackscatter), d.storm.cfg.Factor*f.Baseline)
		what = "bounces (null sender) sent to foreign recipients: backscatter"
	}
	f.Summary = fmt.Sprintf("queue storm on %s: %d %s in %v (baseline %.1f per window, threshold %.0f); a relay incident shows in the queue even when the relaying itself was missed", serverName(f.Host), f.Count, what, d.storm.cfg.Window, f.Baseline, threshold)
	f.NextStep = "See what fills the queue (Postfix: qshape deferred, qshape -s deferred; Exim: exim -bp | exiqsumm): a compromised sender, a relayed spam run or backscatter; purge the junk, and refuse unknown recipients at RCPT so no bounce is owed."
	if a := d.advice(f.program); a != nil && a.QueueStorm != "" {
		f.NextStep = a.QueueStorm
	}
}
