package probe

import (
	"context"
	"sync"
	"time"
)

// Confirmation is a probe's outcome in the form an alert carries it.
type Confirmation struct {
	// Target is the probed address.
	Target string `json:"target"`
	// Verdict is Open, Closed or Untested.
	Verdict string `json:"verdict"`
	// Summary is one line ("open relay: 2 of 17 variants accepted"), or why
	// the server could not be tested.
	Summary string `json:"summary"`
	// Accepted names the accepted variants.
	Accepted []string `json:"accepted,omitempty"`
	// At is when the probe ended (wall clock: a probe is an action, not an
	// event of the log).
	At time.Time `json:"at"`
}

// Confirm probes cfg.Addr once and sums the outcome up. It blocks for as
// long as the probe takes (Postfix slows down a client after 10 errors: about
// 20 s for a closed Postfix), so call it off the alert path.
func Confirm(ctx context.Context, cfg Config) Confirmation {
	res, err := Run(ctx, cfg)
	c := Confirmation{Target: cfg.Addr, Verdict: Untested}
	if res != nil {
		c.Verdict, c.Summary, c.Accepted = res.Verdict, res.Summary(), res.AcceptedVariants()
	}
	if err != nil {
		c.Verdict = Untested
		c.Summary = "could not test: " + Escape(err.Error(), 2*maxShownRunes)
	}
	c.At = time.Now()
	return c
}

// Confirmer confirms findings about one server with a probe, at most one at
// a time, and reuses a result for a while, so that a burst of findings is
// one probe, not a burst of them. It is safe for concurrent use.
type Confirmer struct {
	cfg Config
	ttl time.Duration
	// now is the clock (tests set it).
	now func() time.Time

	mu      sync.Mutex
	last    Confirmation
	have    bool
	running chan struct{} // closed when the probe in flight ends; nil when none
}

// NewConfirmer returns a Confirmer that probes cfg.Addr and reuses a result
// for ttl.
func NewConfirmer(cfg Config, ttl time.Duration) *Confirmer {
	return &Confirmer{cfg: cfg, ttl: ttl, now: time.Now}
}

// Confirm returns the latest result when it is younger than the TTL, waits
// for the probe in flight if there is one (should that probe be cut short,
// the previous result, if any), or else runs a probe. ok is false when there
// is no result: ctx ended first.
func (c *Confirmer) Confirm(ctx context.Context) (conf Confirmation, ok bool) {
	c.mu.Lock()
	if c.have && c.now().Sub(c.last.At) < c.ttl {
		defer c.mu.Unlock()
		return c.last, true
	}
	if c.running != nil {
		done := c.running
		c.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return Confirmation{}, false
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.last, c.have
	}
	done := make(chan struct{})
	c.running = done
	c.mu.Unlock()

	conf = Confirm(ctx, c.cfg)
	conf.At = c.now()

	c.mu.Lock()
	defer c.mu.Unlock()
	c.running = nil
	close(done)
	if ctx.Err() != nil {
		// Cut short: not a result to reuse.
		return conf, false
	}
	c.last, c.have = conf, true
	return conf, true
}
