package alert

import (
	"context"
	"errors"
	"math/rand/v2"
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
	// beyond it new ones are dropped and counted.
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
	// retries (default 1s and 2m); jitter spreads it.
	BaseBackoff, MaxBackoff time.Duration
	// MaxAttempts bounds the tries of one batch (default 8); then it is
	// dropped and counted.
	MaxAttempts int
	// Timeout bounds one send (default 10s).
	Timeout time.Duration
	// Clock is the clock to wait on (default RealClock).
	Clock Clock
}

// Stats are a dispatcher's counters.
type Stats struct {
	Sent, Failed, Retried, Dropped uint64
	Queued                         int
}

// Dispatcher feeds one sink from a bounded queue in its own goroutine.
type Dispatcher struct {
	sink  Sink
	cfg   DispatchConfig
	queue chan Transition
	done  chan struct{}

	sent, failed, retried, dropped atomic.Uint64
	closeOnce                      sync.Once
}

// NewDispatcher starts a dispatcher for sink. Stop it with Close.
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
	d := &Dispatcher{sink: sink, cfg: cfg, queue: make(chan Transition, cfg.QueueSize), done: make(chan struct{})}
	return d
}

// Name is the sink's name.
func (d *Dispatcher) Name() string { return d.sink.Name() }

// Enqueue queues a transition without blocking; when the queue is full the
// transition is dropped and counted.
func (d *Dispatcher) Enqueue(t Transition) {
	select {
	case d.queue <- t:
	default:
		d.dropped.Add(1)
	}
}

// EnqueueBatch queues transitions to be sent together as one batch (a
// batch run's summary). Like Enqueue it never blocks.
func (d *Dispatcher) EnqueueBatch(batch []Transition) {
	if len(batch) == 0 {
		return
	}
	t := batch[0]
	t.rest = append([]Transition(nil), batch[1:]...)
	d.Enqueue(t)
}

// Stats returns the counters.
func (d *Dispatcher) Stats() Stats {
	return Stats{Sent: d.sent.Load(), Failed: d.failed.Load(), Retried: d.retried.Load(), Dropped: d.dropped.Load(), Queued: len(d.queue)}
}

// Run sends until ctx is done or Close was called and the queue is empty.
// When ctx ends first, what is still queued is counted as dropped.
func (d *Dispatcher) Run(ctx context.Context) {
	// A token bucket: Burst sends at once, then one per MinInterval.
	tokens := float64(d.cfg.Burst)
	var last time.Time
	for {
		var first Transition
		select {
		case first = <-d.queue:
		case <-d.done:
			// Drain what is left, then stop.
			select {
			case first = <-d.queue:
			default:
				return
			}
		case <-ctx.Done():
			d.dropped.Add(uint64(len(d.queue)))
			return
		}
		batch := d.group(first)
		if d.cfg.MinInterval > 0 {
			now := d.cfg.Clock.Now()
			if !last.IsZero() {
				tokens = min(float64(d.cfg.Burst), tokens+float64(now.Sub(last))/float64(d.cfg.MinInterval))
			}
			last = now
			if tokens < 1 {
				wait := time.Duration((1 - tokens) * float64(d.cfg.MinInterval))
				if d.cfg.Clock.Sleep(ctx, wait) != nil {
					d.dropped.Add(uint64(len(batch) + len(d.queue)))
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

// group adds to first the queued Fired transitions of the same rule.
func (d *Dispatcher) group(first Transition) []Transition {
	if first.rest != nil {
		rest := first.rest
		first.rest = nil
		return append([]Transition{first}, rest...)
	}
	batch := []Transition{first}
	if first.Kind != Fired {
		return batch
	}
	var keep []Transition
	for len(batch) < d.cfg.MaxGroup {
		select {
		case t := <-d.queue:
			if t.Kind == Fired && t.Alert.Rule == first.Alert.Rule {
				batch = append(batch, t)
			} else {
				keep = append(keep, t)
			}
			continue
		default:
		}
		break
	}
	// Put back what belongs to other messages, in order, without blocking.
	for _, t := range keep {
		d.requeue(t)
	}
	return batch
}

func (d *Dispatcher) requeue(t Transition) {
	select {
	case d.queue <- t:
	default:
		d.dropped.Add(1)
	}
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
			return
		}
		var perm *PermanentError
		if errors.As(err, &perm) || ctx.Err() != nil {
			d.failed.Add(uint64(len(batch)))
			d.dropped.Add(uint64(len(batch)))
			return
		}
		if attempt >= d.cfg.MaxAttempts {
			d.failed.Add(uint64(len(batch)))
			d.dropped.Add(uint64(len(batch)))
			return
		}
		d.retried.Add(1)
		wait := d.backoff(attempt)
		var ra *RetryAfterError
		if errors.As(err, &ra) && ra.After > 0 {
			wait = ra.After
		}
		if d.cfg.Clock.Sleep(ctx, wait) != nil {
			d.dropped.Add(uint64(len(batch)))
			return
		}
	}
}

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

// Fanout hands transitions to several dispatchers.
type Fanout []*Dispatcher

// Emit enqueues t on every dispatcher; it never blocks.
func (f Fanout) Emit(t Transition) {
	for _, d := range f {
		d.Enqueue(t)
	}
}
