package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/relaywatch/relaywatch/alert"
	"github.com/relaywatch/relaywatch/detect"
	"github.com/relaywatch/relaywatch/detect/probe"
)

// confirmOptions are the flags that confirm a relay finding with an active
// probe of the server (relaywatch probe), for analyze and watch.
type confirmOptions struct {
	Host string
	TTL  time.Duration
}

// AddFlags registers the confirmation flags.
func (o *confirmOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Host, "confirm-with-probe", "", "when a critical relay finding fires, probe this server (HOST[:PORT], a server you run) as `relaywatch probe` does and add the verdict to the report and the log; never sends DATA")
	fs.DurationVar(&o.TTL, "confirm-reuse", 15*time.Minute, "how long a probe's verdict is reused for later findings (a burst of findings is one probe)")
}

// check validates the confirmation settings.
func (o *confirmOptions) check() []settingError {
	var errs []settingError
	if o.Host != "" {
		if _, err := probe.Addr(o.Host, false); err != nil {
			errs = append(errs, settingError{"confirm-with-probe", fmt.Errorf("--confirm-with-probe %q: %w", o.Host, err)})
		}
	}
	if o.TTL <= 0 {
		errs = append(errs, settingError{"confirm-reuse", fmt.Errorf("--confirm-reuse %v: must be positive", o.TTL)})
	}
	return errs
}

// confirmer returns the probe to confirm findings with, or nil when none
// was asked for. localDomains give the probe's forged local sender.
func (o *confirmOptions) confirmer(localDomains []string) *probe.Confirmer {
	if o.Host == "" {
		return nil
	}
	addr, _ := probe.Addr(o.Host, false) // checked
	return probe.NewConfirmer(probe.Config{Addr: addr, LocalDomains: localDomains, Timeout: 10 * time.Second}, o.TTL)
}

// callsForConfirmation reports whether a finding says the server relays
// for strangers: what a probe can confirm (an outbound spike can be a
// stolen account on a closed server).
func callsForConfirmation(f *detect.Finding) bool {
	return f.Severity >= detect.SeverityCritical && f.Rule != detect.RuleOutboundSpike
}

// confirmFindings probes the server when a finding calls for it (analyze:
// once, at the end). It returns nil when no probe was asked for or needed.
func confirmFindings(ctx context.Context, c *probe.Confirmer, findings []detect.Finding) *probe.Confirmation {
	if c == nil {
		return nil
	}
	for i := range findings {
		if callsForConfirmation(&findings[i]) {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			if conf, ok := c.Confirm(ctx); ok {
				return &conf
			}
			return nil
		}
	}
	return nil
}

// writeConfirmation says what the probe found, for the text report.
func writeConfirmation(w io.Writer, conf *probe.Confirmation) {
	if conf == nil {
		return
	}
	fmt.Fprintf(w, "\nConfirmed with relaywatch probe %s: %s (%s)\n", conf.Target, conf.Verdict, conf.Summary)
	for _, v := range conf.Accepted {
		fmt.Fprintf(w, "  accepted: %s\n", v)
	}
}

// liveConfirmer probes the server when a new critical relay finding shows
// up in watch, off the pipeline, and keeps the latest verdict for /metrics
// and the log.
type liveConfirmer struct {
	c   *probe.Confirmer
	log *slog.Logger
	// announce, if set, adds a verdict to the open alert of the finding
	// that called for it (an update to every sink).
	announce func(rule, key string, conf probe.Confirmation)

	mu       sync.Mutex
	asked    map[string]bool // findings (rule and key) already confirmed, bounded
	running  bool
	last     *probe.Confirmation
	runs     uint64
	inFlight sync.WaitGroup
}

// consider looks at the open findings and starts a probe for a new one that
// calls for it. It never blocks.
func (lc *liveConfirmer) consider(ctx context.Context, findings []detect.Finding) {
	if lc == nil {
		return
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.asked == nil || len(lc.asked) > 10000 {
		lc.asked = map[string]bool{}
	}
	var why *detect.Finding
	for i := range findings {
		f := &findings[i]
		id := f.Rule + "\x00" + f.Key
		if callsForConfirmation(f) && !lc.asked[id] {
			lc.asked[id] = true
			why = f
		}
	}
	if why == nil || lc.running {
		return
	}
	lc.running = true
	rule, key := why.Rule, why.Key
	lc.inFlight.Add(1)
	go func() {
		defer lc.inFlight.Done()
		pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		conf, ok := lc.c.Confirm(pctx)
		lc.mu.Lock()
		lc.running = false
		if ok {
			if lc.last == nil || !conf.At.Equal(lc.last.At) {
				lc.runs++ // a verdict reused within --confirm-reuse is not a run
			}
			lc.last = &conf
		}
		lc.mu.Unlock()
		if ok && lc.announce != nil {
			lc.announce(rule, key, conf)
		}
		if ok {
			lc.log.Warn("relay finding confirmed with a probe of the server", "rule", rule, "key", alert.EscapeControl(key, ""),
				"target", conf.Target, "verdict", conf.Verdict, "summary", conf.Summary, "accepted", conf.Accepted)
		}
	}()
}

// confirmationLine is how a verdict reads in an alert.
func confirmationLine(conf probe.Confirmation) string {
	return fmt.Sprintf("Confirmed with relaywatch probe %s: %s (%s).", conf.Target, conf.Verdict, conf.Summary)
}

// latest returns the latest verdict and how many probes ran.
func (lc *liveConfirmer) latest() (*probe.Confirmation, uint64) {
	if lc == nil {
		return nil, 0
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.last, lc.runs
}

// wait waits for a probe in flight (shutdown: its context is cancelled).
func (lc *liveConfirmer) wait() {
	if lc != nil {
		lc.inFlight.Wait()
	}
}
