package alert

import (
	"context"
	"encoding/json"
	"io"
	"sync"
)

// JSONLog writes every transition as one JSON line, for log shippers.
type JSONLog struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// NewJSONLog writes to w.
func NewJSONLog(w io.Writer) *JSONLog {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // evidence lines keep their <, > and &
	return &JSONLog{enc: enc}
}

// Name implements Sink.
func (l *JSONLog) Name() string { return "alerts-log" }

// Send implements Sink.
func (l *JSONLog) Send(_ context.Context, batch []Transition) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range batch {
		if err := l.enc.Encode(&batch[i]); err != nil {
			return err
		}
	}
	return nil
}
