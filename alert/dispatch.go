package alert

import (
	"github.com/relaywatch/relaywatch/detect"

	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Sink delivers transitions somewhere. A batch holds one transition, or
// several Fired transitions of one rule that were queued together (a relay
// incident from many addresses becomes one message).
type Sink interface {
	// Name names the sink in metrics and logs ("slack-webhook", ...); it
	// never contains a secret.
	Name() string
	// Send delivers a batch. A returned error that is Permanent is not
	// retried; a RetryAfter error waits as long as it says.
	Send(ctx context.Context, batch []Transition) error
}

// PermanentError marks a failure that retrying cannot fix (a bad token, an
// unknown channel).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// RetryAfterError asks for a retry after a delay (HTTP 429 Retry-After).
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// Clock is the time a dispatcher waits on; tests pass one that does not
// sleep.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx is done.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RealClock is the wall clock.
var RealClock Clock = realClock{}

// DispatchConfig configures a Dispatcher. Zero values take the defaults.
type DispatchConfig struct {
	// QueueSize bounds the transitions waiting for the sink (default 1000);
	// beyond it new ones are dropped, counted and logged.
	QueueSize int
	// MinInterval is the average least time between two sends (default 1s:
	// Slack allows about one message per second per channel, with short
	// bursts); negative means no limit.
	MinInterval time.Duration
	// Burst is how many sends may go out back to back before MinInterval
	// applies (default 3), so that the first alerts of an incident are not
	// queued behind each other.
	Burst int
	// MaxGroup bounds the transitions sent as one batch (default 50).
	MaxGroup int
	// BaseBackoff and MaxBackoff bound the exponential backoff between
	// retries (default 1s and 2m); jitter spreads it. A Retry-After longer
	// than MaxBackoff waits MaxBackoff.
	BaseBackoff, MaxBackoff time.Duration
	// MaxAttempts bounds the tries of one batch (default 8); then it is
	// dropped and counted.
	MaxAttempts int
	// Timeout bounds one send (default 10s).
	Timeout time.Duration
	// Clock is the clock to wait on (default RealClock).
	Clock Clock
	// Log, if set, hears of a sink's trouble: the first failure of an
	// outage with its reason, the recovery, and drops.
	Log func(msg string)
	// OnDelivered, if set, is called from the dispatcher's goroutine with
	// every batch the sink took (the delivery state a restart reads).
	OnDelivered func(sink string, batch []Transition)
	// UpdateInterval is the least time between two notifications of one
	// alert when the later one is an update of the same severity (default
	// 0: none). A held update is merged with the ones after it, so the sink
	// gets the alert's latest state once per interval; a rise in severity,
	// a resolution and a new alert are never held. What is still held when
	// Run ends after Close is counted as dropped and logged (see
	// leaveHeld). Slack's is minutes: an attack that doubles a count every
	// few seconds is one message, not one per doubling.
	UpdateInterval time.Duration
	// MinSeverity keeps transitions of alerts below it off the sink (Slack
	// pages people: an info finding such as relay-probing, which every
	// Internet-facing server shows, must not). Summaries pass.
	MinSeverity detect.Severity
}

// Failure reasons, the label values of a sink's failure counts.
const (
	ReasonTimeout     = "timeout"
	ReasonNetwork     = "network"
	ReasonRateLimited = "rate_limited"
	ReasonServer      = "server_error"
	ReasonRejected    = "rejected" // a permanent error: bad token, unknown channel, 4xx
	ReasonOther       = "other"
)

// Reasons lists the failure reasons.
func Reasons() []string {
	return []string{ReasonTimeout, ReasonNetwork, ReasonRateLimited, ReasonServer, ReasonRejected, ReasonOther}
}

// Stats are a dispatcher's counters.
type Stats struct {
	Sent, Failed, Retried, Dropped uint64
	// Merged counts updates folded into a queued transition of the same
	// alert (see Enqueue): not sent on their own, not lost either.
	Merged uint64
	Queued int
	// Failures counts failed attempts by reason (see Reasons).
	Failures map[string]uint64
}

// Dispatcher feeds one sink from a bounded queue in its own goroutine. The
// transitions of one alert reach the sink in the order they were queued,
// whatever the grouping.
type Dispatcher struct {
	sink Sink
	cfg  DispatchConfig
	done chan struct{}

	mu    sync.Mutex
	queue []*Transition
	// pending maps an alert ID to its queued Fired or Updated transition
	// not yet taken, into which a later Updated of the same episode is
	// merged: a sink that is behind shows an alert's latest state once
	// instead of every step it went through.
	pending map[string]*Transition
	// unshown holds the IDs of alerts whose Fired was kept off the sink
	// by MinSeverity, in arrival order (bounded by maxUnshown): when such
	// an alert grows past MinSeverity its update is the sink's first word
	// of it and goes as Fired; its resolution is not sent.
	unshown      map[string]uint64 // alert ID -> its entry's sequence number
	unshownOrder []unshownEntry
	unshownSeq   uint64
	leaps        int // transitions taken ahead of the queue's head in a row
	// shown is when each open alert was last delivered, and at what
	// severity (UpdateInterval); only Run's goroutine uses it.
	shown    map[string]shownAlert
	wake     chan struct{} // signalled when the queue grows
	failures map[string]uint64
	failing  bool // the last attempt failed: an outage is logged once

	sent, failed, retried, dropped, merged atomic.Uint64
	closeOnce                              sync.Once
}

// NewDispatcher returns a dispatcher for sink. Run it, stop it with Close.
func NewDispatcher(sink Sink, cfg DispatchConfig) *Dispatcher {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1000
	}
	if cfg.MinInterval == 0 {
		cfg.MinInterval = time.Second
	}
	if cfg.MaxGroup <= 0 {
		cfg.MaxGroup = 50
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 3
	}
	if cfg.BaseBackoff <= 0 {
		cfg.BaseBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 2 * time.Minute
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock
	}
	return &Dispatcher{sink: sink, cfg: cfg, done: make(chan struct{}), wake: make(chan struct{}, 1), failures: map[string]uint64{},
		pending: map[string]*Transition{}, unshown: map[string]uint64{}, shown: map[string]shownAlert{}}
}

// Name is the sink's name.
func (d *Dispatcher) Name() string { return d.sink.Name() }

// unshownEntry is one alert kept off a sink by MinSeverity, in arrival
// order; seq tells a stale entry (the alert was shown since) from the
// current one.
type unshownEntry struct {
	id  string
	seq uint64
}

// shownAlert is when an alert was last delivered, and at what severity.
type shownAlert struct {
	at  time.Time
	sev detect.Severity
}

// maxShown bounds the alerts whose last delivery a dispatcher remembers;
// beyond it the record starts afresh (an update may then go early).
const maxShown = 20000

// maxUnshown bounds the alerts a dispatcher remembers as kept off its sink
// by MinSeverity (their keys are attacker-chosen).
const maxUnshown = 10000

// Enqueue queues a transition without blocking; when the queue is full the
// transition is dropped, counted and logged (the first of a run of drops).
// An Updated transition of an alert whose Fired or Updated is still queued
// is merged into it (counted as merged): the sink gets the latest state.
func (d *Dispatcher) Enqueue(t Transition) {
	if t.Kind != Summary && t.rest == nil && !d.admit(&t) {
		return
	}
	d.mu.Lock()
	if d.merge(t) {
		d.mu.Unlock()
		d.merged.Add(1)
		// A merge can release a held update (a resolution, a rise in
		// severity): Run must look again.
		d.signal()
		return
	}
	full := len(d.queue) >= d.cfg.QueueSize
	if !full {
		q := &t
		d.queue = append(d.queue, q)
		if t.rest == nil && (t.Kind == Fired || t.Kind == Updated) {
			d.pending[t.Alert.ID()] = q
		}
	}
	d.mu.Unlock()
	if full {
		if d.dropped.Add(1) == 1 {
			d.logf("queue full (%d): dropping notifications; they are counted in relaywatch_notifications_total{result=\"dropped\"}", d.cfg.QueueSize)
		}
		return
	}
	d.signal()
}

// signal wakes Run without blocking (one pending wake-up is enough).
func (d *Dispatcher) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// admit applies MinSeverity to t, turning the first update of an alert
// that grew past it into a Fired; false keeps t off the sink.
func (d *Dispatcher) admit(t *Transition) bool {
	if d.cfg.MinSeverity <= 0 {
		return true
	}
	id := t.Alert.ID()
	d.mu.Lock()
	defer d.mu.Unlock()
	if t.Alert.Severity < d.cfg.MinSeverity {
		if t.Kind == Resolved {
			delete(d.unshown, id) // its stale order entry is skipped when evicted
			return false
		}
		if _, ok := d.unshown[id]; t.Kind == Fired && !ok {
			d.unshownSeq++
			d.unshown[id] = d.unshownSeq
			d.unshownOrder = append(d.unshownOrder, unshownEntry{id, d.unshownSeq})
			for len(d.unshown) > maxUnshown || len(d.unshownOrder) > 2*maxUnshown {
				e := d.unshownOrder[0]
				d.unshownOrder = d.unshownOrder[1:]
				if d.unshown[e.id] == e.seq {
					delete(d.unshown, e.id)
				}
			}
		}
		return false
	}
	if _, ok := d.unshown[id]; ok {
		delete(d.unshown, id) // its stale order entry is skipped when evicted
		if t.Kind == Resolved {
			return false // the sink never heard of it
		}
		t.Kind = Fired
	}
	return true
}

// merge folds t into the queued transition of the same alert episode when
// it can (called with d.mu held): an Updated into a queued Fired or
// Updated, a Resolved into a queued Updated (which becomes the Resolved).
func (d *Dispatcher) merge(t Transition) bool {
	if t.rest != nil || (t.Kind != Updated && t.Kind != Resolved) {
		return false
	}
	id := t.Alert.ID()
	p := d.pending[id]
	if p == nil || p.Alert.Episode != t.Alert.Episode {
		return false
	}
	switch {
	case t.Kind == Updated:
		p.Alert = t.Alert
	case p.Kind == Updated: // and t resolves it
		p.Kind, p.Alert = Resolved, t.Alert
		delete(d.pending, id)
	default: // a Fired still queued: it goes, then its resolution
		delete(d.pending, id)
		return false
	}
	return true
}

// EnqueueBatch queues transitions to be sent together as one batch (a
// batch run's summary). Like Enqueue it never blocks.
func (d *Dispatcher) EnqueueBatch(batch []Transition) {
	if len(batch) == 0 {
		return
	}
	t := batch[0]
	t.rest = append([]Transition{}, batch[1:]...)
	d.Enqueue(t)
}

// Stats returns the counters.
func (d *Dispatcher) Stats() Stats {
	d.mu.Lock()
	queued := len(d.queue)
	failures := make(map[string]uint64, len(d.failures))
	for k, v := range d.failures {
		failures[k] = v
	}
	d.mu.Unlock()
	return Stats{Sent: d.sent.Load(), Failed: d.failed.Load(), Retried: d.retried.Load(), Dropped: d.dropped.Load(), Merged: d.merged.Load(), Queued: queued, Failures: failures}
}

func (d *Dispatcher) logf(format string, args ...any) {
	if d.cfg.Log != nil {
		d.cfg.Log(d.sink.Name() + ": " + fmt.Sprintf(format, args...))
	}
}

// Run sends until ctx is done or Close was called and the queue is empty.
// When ctx ends first, what is still queued is counted as dropped.
func (d *Dispatcher) Run(ctx context.Context) {
	// A token bucket: Burst sends at once, then one per MinInterval.
	tokens := float64(d.cfg.Burst)
	var last time.Time
	for {
		closing := d.closing()
		batch, hold := d.next(d.cfg.Clock.Now())
		if batch == nil && hold > 0 {
			if closing {
				d.leaveHeld()
				return
			}
			// Only held updates: wait for the first to be due, or for news.
			if d.pause(ctx, hold) != nil {
				d.dropQueued(0)
				return
			}
			continue
		}
		if batch == nil {
			if closing {
				return
			}
			select {
			case <-d.wake:
				continue
			case <-d.done:
				continue // the next round sends what is left, or returns
			case <-ctx.Done():
				d.dropQueued(0)
				return
			}
		}
		if d.cfg.MinInterval > 0 {
			now := d.cfg.Clock.Now()
			if !last.IsZero() {
				tokens = min(float64(d.cfg.Burst), tokens+float64(now.Sub(last))/float64(d.cfg.MinInterval))
			}
			last = now
			if tokens < 1 {
				wait := time.Duration((1 - tokens) * float64(d.cfg.MinInterval))
				if d.cfg.Clock.Sleep(ctx, wait) != nil {
					d.dropQueued(len(batch))
					return
				}
				tokens = 1
				last = d.cfg.Clock.Now()
			}
			tokens--
		}
		d.send(ctx, batch)
	}
}

// closing says whether Close was called.
func (d *Dispatcher) closing() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// pause waits for wait, or until a transition is queued, Close is called
// or ctx is done (its error).
func (d *Dispatcher) pause(ctx context.Context, wait time.Duration) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-d.wake:
		case <-d.done:
		case <-sctx.Done():
		}
		cancel()
	}()
	d.cfg.Clock.Sleep(sctx, wait)
	return ctx.Err()
}

// leaveHeld gives up the updates still held at exit: they are counted as
// dropped and logged, and a sidecar's next start sends each sink the state
// it missed (alert.Store.Pending), so nothing is lost; flushing them would
// make the exit wait a second per update under Slack's rate limit.
func (d *Dispatcher) leaveHeld() {
	d.mu.Lock()
	n := len(d.queue)
	d.mu.Unlock()
	d.dropQueued(0)
	d.logf("%d held updates not sent at exit (the next start sends what was missed)", n)
}

func (d *Dispatcher) dropQueued(inHand int) {
	d.mu.Lock()
	n := len(d.queue) + inHand
	d.queue = nil
	clear(d.pending)
	d.mu.Unlock()
	d.dropped.Add(uint64(n))
}

// maxScan bounds how far into the queue a batch looks for members.
const maxScan = 500

// next takes the next batch off the queue, or nil. A new alert goes first:
// the queued Fired transition of the highest severity (the earliest of
// those) is taken ahead of updates and resolutions of other alerts, with
// the queued Fired transitions that share its rule or its key (an incident
// from many addresses, or one client caught by several rules, is one
// message). A transition is never taken ahead of an earlier one of the
// same alert, so each alert's transitions stay in order.
//
// An update held by UpdateInterval is not taken; when only held ones are
// queued, next returns nil and how long until the first is due.
func (d *Dispatcher) next(now time.Time) ([]Transition, time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.queue) == 0 {
		return nil, 0
	}
	lead, hold := d.lead(now)
	if lead < 0 {
		return nil, hold
	}
	first := d.take(lead)
	if first.rest != nil {
		rest := first.rest
		first.rest = nil
		return append([]Transition{first}, rest...), 0
	}
	batch := []Transition{first}
	if first.Kind != Fired {
		return batch, 0
	}
	var skipped map[string]bool
	kept := d.queue[:0:0]
	i := 0
	for ; i < len(d.queue) && i < maxScan && len(batch) < d.cfg.MaxGroup; i++ {
		t := d.queue[i]
		id := t.Alert.ID()
		if t.Kind == Fired && t.rest == nil && !skipped[id] && (t.Alert.Rule == first.Alert.Rule || t.Alert.Key == first.Alert.Key) {
			if d.pending[id] == t {
				delete(d.pending, id)
			}
			batch = append(batch, *t)
			continue
		}
		if skipped == nil {
			skipped = map[string]bool{}
		}
		skipped[id] = true
		kept = append(kept, t)
	}
	d.queue = append(kept, d.queue[i:]...)
	return batch, 0
}

// maxLeaps bounds the transitions taken ahead of the queue's head in a row.
const maxLeaps = 5

// lead is the index of the transition to send next (see next), or -1 when
// every one is held, with how long until the first held one is due;
// called with d.mu held. It looks at the whole queue (QueueSize bounds it),
// so that any number of held updates cannot hide a new alert.
func (d *Dispatcher) lead(now time.Time) (int, time.Duration) {
	best, head := -1, -1
	var hold time.Duration
	var seen map[string]bool
	for i, t := range d.queue {
		id := t.Alert.ID()
		if !seen[id] {
			if h := d.held(t, now); h > 0 {
				if hold == 0 || h < hold {
					hold = h
				}
			} else {
				if head < 0 {
					head = i
				}
				if t.Kind == Fired && t.rest == nil && (best < 0 || t.Alert.Severity > d.queue[best].Alert.Severity) {
					best = i
				}
			}
		}
		if seen == nil {
			seen = map[string]bool{}
		}
		seen[id] = true
	}
	if head < 0 {
		return -1, hold
	}
	// A steady stream of new alerts does not starve the rest: after
	// maxLeaps in a row the head of the queue goes.
	if best < 0 || best == head || d.leaps >= maxLeaps {
		d.leaps = 0
		return head, 0
	}
	d.leaps++
	return best, 0
}

// held is how long UpdateInterval still holds t, 0 if it may go.
func (d *Dispatcher) held(t *Transition, now time.Time) time.Duration {
	if d.cfg.UpdateInterval <= 0 || t.Kind != Updated || t.rest != nil {
		return 0
	}
	s, ok := d.shown[t.Alert.ID()]
	if !ok || t.Alert.Severity > s.sev {
		return 0
	}
	return max(0, s.at.Add(d.cfg.UpdateInterval).Sub(now))
}

// delivered records what the sink took, for UpdateInterval.
func (d *Dispatcher) delivered(batch []Transition) {
	if d.cfg.UpdateInterval <= 0 {
		return
	}
	now := d.cfg.Clock.Now()
	for _, t := range batch {
		if t.Kind == Summary {
			continue
		}
		id := t.Alert.ID()
		if t.Kind == Resolved {
			delete(d.shown, id)
			continue
		}
		if len(d.shown) >= maxShown {
			clear(d.shown)
		}
		d.shown[id] = shownAlert{at: now, sev: t.Alert.Severity}
	}
}

// take removes the transition at i from the queue and returns it; called
// with d.mu held.
func (d *Dispatcher) take(i int) Transition {
	t := d.queue[i]
	d.queue = append(d.queue[:i], d.queue[i+1:]...)
	if id := t.Alert.ID(); d.pending[id] == t {
		delete(d.pending, id)
	}
	return *t
}

// send tries a batch until it is delivered, fails for good, or runs out of
// attempts.
func (d *Dispatcher) send(ctx context.Context, batch []Transition) {
	for attempt := 1; ; attempt++ {
		sctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
		err := d.sink.Send(sctx, batch)
		cancel()
		if err == nil {
			d.sent.Add(uint64(len(batch)))
			d.mu.Lock()
			recovered := d.failing
			d.failing = false
			d.mu.Unlock()
			if recovered {
				d.logf("delivering again")
			}
			d.delivered(batch)
			if d.cfg.OnDelivered != nil {
				d.cfg.OnDelivered(d.sink.Name(), batch)
			}
			return
		}
		if ctx.Err() != nil {
			d.dropped.Add(uint64(len(batch)))
			return
		}
		reason := Reason(err)
		d.mu.Lock()
		d.failures[reason]++
		first := !d.failing
		d.failing = true
		d.mu.Unlock()
		var perm *PermanentError
		if errors.As(err, &perm) {
			d.logf("dropping %d notifications: %s: %v", len(batch), reason, err)
			d.failed.Add(uint64(len(batch)))
			d.dropped.Add(uint64(len(batch)))
			return
		}
		if attempt >= d.cfg.MaxAttempts {
			d.logf("dropping %d notifications after %d attempts: %s: %v", len(batch), attempt, reason, err)
			d.failed.Add(uint64(len(batch)))
			d.dropped.Add(uint64(len(batch)))
			return
		}
		if first {
			d.logf("failing, will retry: %s: %v", reason, err)
		}
		d.retried.Add(1)
		wait := d.backoff(attempt)
		var ra *RetryAfterError
		if errors.As(err, &ra) && ra.After > 0 {
			wait = min(ra.After, d.cfg.MaxBackoff)
		}
		if d.cfg.Clock.Sleep(ctx, wait) != nil {
			d.dropped.Add(uint64(len(batch)))
			return
		}
	}
}

// Reason classifies a send error into one of Reasons.
func Reason(err error) string {
	var perm *PermanentError
	var ra *RetryAfterError
	var ne net.Error
	var se *StatusError
	switch {
	case errors.As(err, &ra):
		return ReasonRateLimited
	case errors.As(err, &perm):
		return ReasonRejected
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout
	case errors.As(err, &se):
		if se.Code == http.StatusTooManyRequests {
			return ReasonRateLimited
		}
		if se.Code >= 500 {
			return ReasonServer
		}
		return ReasonRejected
	case errors.As(err, &ne):
		return ReasonNetwork
	}
	return ReasonOther
}

// StatusError is an HTTP answer that was not a success.
type StatusError struct {
	Code int
	Err  error
}

func (e *StatusError) Error() string { return e.Err.Error() }
func (e *StatusError) Unwrap() error { return e.Err }

// backoff is base·2^(attempt-1), capped, with ±25 % jitter.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	b := d.cfg.BaseBackoff << min(attempt-1, 20)
	if b > d.cfg.MaxBackoff || b <= 0 {
		b = d.cfg.MaxBackoff
	}
	j := time.Duration(rand.Int64N(int64(b)/2+1)) - b/4
	return b + j
}

// Close lets Run finish the queue and return.
func (d *Dispatcher) Close() { d.closeOnce.Do(func() { close(d.done) }) }

// Notifier takes the transitions for one sink: a Dispatcher (queued, sent
// in the background) or the alerts log (written at once).
type Notifier interface {
	Name() string
	// Enqueue takes a transition; it never blocks for long.
	Enqueue(Transition)
	// EnqueueBatch takes transitions to be sent together.
	EnqueueBatch([]Transition)
	Stats() Stats
	// Close says no more transitions come.
	Close()
}

var (
	_ Notifier = (*Dispatcher)(nil)
	_ Notifier = (*JSONLog)(nil)
)

// Fanout hands transitions to several notifiers.
type Fanout []Notifier

// Emit enqueues t on every dispatcher; it never blocks.
func (f Fanout) Emit(t Transition) {
	for _, d := range f {
		d.Enqueue(t)
	}
}
