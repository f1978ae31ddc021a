package alert

import (
	"context"
	"encoding/json"
	"io"
	"sync"
)

// JSONLog writes every transition as one JSON line: the audit trail, for
// log shippers. It is not fed through a Dispatcher: a local file needs no
// rate limit, and its queue must never drop. Write it from the goroutine
// that makes the transitions (a write may block briefly).
type JSONLog struct {
	// Log, if set, hears of the first failure of a run of failures.
	Log func(msg string)

	mu      sync.Mutex
	enc     *json.Encoder
	written uint64
	failed  uint64
	lastErr error
}

// NewJSONLog writes to w.
func NewJSONLog(w io.Writer) *JSONLog { return &JSONLog{enc: json.NewEncoder(w)} }

// Name implements Sink.
func (l *JSONLog) Name() string { return "alerts-log" }

// Write writes one transition. It returns an error only for the first
// failure of a run of failures (the rest are counted), so that a full disk
// is logged once.
func (l *JSONLog) Write(t *Transition) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.enc.Encode(t)
	if err != nil {
		l.failed++
		first := l.lastErr == nil
		l.lastErr = err
		if first {
			return err
		}
		return nil
	}
	l.lastErr = nil
	l.written++
	return nil
}

// Stats returns the transitions written (as Sent) and those that could not
// be (as Failed).
func (l *JSONLog) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Sent: l.written, Failed: l.failed}
}

// Enqueue writes t at once (Notifier).
func (l *JSONLog) Enqueue(t Transition) {
	if err := l.Write(&t); err != nil && l.Log != nil {
		l.Log("alerts log: " + err.Error() + " (transitions are counted as failed until it works again)")
	}
}

// EnqueueBatch writes the transitions at once (Notifier).
func (l *JSONLog) EnqueueBatch(batch []Transition) {
	for _, t := range batch {
		l.Enqueue(t)
	}
}

// Close implements Notifier; the caller closes the file.
func (l *JSONLog) Close() {}

// Send implements Sink.
func (l *JSONLog) Send(_ context.Context, batch []Transition) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range batch {
		if err := l.enc.Encode(&batch[i]); err != nil {
			l.failed++
			return err
		}
		l.written++
	}
	return nil
}
