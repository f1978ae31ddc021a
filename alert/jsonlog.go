package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"unicode/utf8"
)

// JSONLog writes every transition as one JSON line: the audit trail, for
// log shippers. It is not fed through a Dispatcher: a local file needs no
// rate limit, and its queue must never drop. Write it from the goroutine
// that makes the transitions (a write may block briefly).
type JSONLog struct {
	// Log, if set, hears of the first failure of a run of failures.
	Log func(msg string)

	mu      sync.Mutex
	w       io.Writer
	buf     bytes.Buffer
	enc     *json.Encoder
	written uint64
	failed  uint64
	lastErr error
}

// NewJSONLog writes to w.
func NewJSONLog(w io.Writer) *JSONLog {
	l := &JSONLog{w: w}
	l.enc = json.NewEncoder(&l.buf)
	l.enc.SetEscapeHTML(false) // evidence lines keep their <, > and &
	return l
}

// encode writes one transition as a JSON line. encoding/json escapes C0
// control characters but leaves DEL, C1 controls and the bidirectional
// overrides as they are; they are escaped too (\u009b), so that reading the
// log in a terminal (tail, jq) cannot be hijacked. l.mu is held.
func (l *JSONLog) encode(t *Transition) error {
	l.buf.Reset()
	if err := l.enc.Encode(t); err != nil {
		return err
	}
	_, err := l.w.Write(EscapeJSONControls(l.buf.Bytes()))
	return err
}

// EscapeJSONControls rewrites DEL, C1 controls and bidi overrides in JSON
// text as \u escapes (the same string to a JSON reader), which
// encoding/json leaves raw: JSON read in a terminal cannot act on them.
func EscapeJSONControls(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == 0x7f || r >= 0x80 && r < 0xa0 || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 {
			if out == nil {
				out = append(make([]byte, 0, len(b)+16), b[:i]...)
			}
			out = fmt.Appendf(out, `\u%04x`, r)
		} else if out != nil {
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	if out == nil {
		return b
	}
	return out
}

// Name implements Sink.
func (l *JSONLog) Name() string { return "alerts-log" }

// Write writes one transition. It returns an error only for the first
// failure of a run of failures (the rest are counted), so that a full disk
// is logged once.
func (l *JSONLog) Write(t *Transition) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.encode(t)
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
		if err := l.encode(&batch[i]); err != nil {
			l.failed++
			return err
		}
		l.written++
	}
	return nil
}
