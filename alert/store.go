package alert

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// Store persists what the alerting must not forget across a restart: the
// open alerts, resolutions not yet delivered, and for each sink the last
// transition of each alert it took. A restart reads it to re-open the
// alerts without announcing them again, and to re-send each sink what it
// missed (a Slack outage before the restart, a queue dropped at exit).
//
// It is a journal of JSON lines, one per changed alert: a save appends
// only the alerts that changed since the last one (10,000 unchanged open
// alerts cost nothing), and the journal is compacted (rewritten atomically)
// when it has grown to four times its size at the last compaction. Like Alertmanager's
// notification log, it is written by the process that notifies; it is safe
// for concurrent use.
type Store struct {
	path  string
	sinks []string

	mu      sync.Mutex
	entries map[string]*storeEntry
	dirty   map[string]bool

	fmu       sync.Mutex // guards the journal file
	f         *os.File
	size      int64 // bytes in the journal
	compacted int64 // bytes in the journal when it was last compacted
}

// storeEntry is one alert and what the sinks were told of it.
type storeEntry struct {
	Alert Alert `json:"alert"`
	// Open is false once the alert resolved: the entry stays until every
	// sink that was told of the alert was told of its resolution.
	Open      bool            `json:"open"`
	Delivered map[string]Mark `json:"delivered,omitempty"`
	// Posts is, for a chat sink that edits its messages (the Slack bot),
	// the message that shows the alert; it goes when the sink took the
	// resolution.
	Posts postRefs `json:"posts,omitempty"`
}

// Mark is the last transition of an alert a sink took.
type Mark struct {
	Kind    Kind `json:"kind"`
	Episode int  `json:"episode,omitempty"`
	Count   int  `json:"count"`
}

// storeRecord is one journal line: an alert's entry, or its removal.
type storeRecord struct {
	ID    string      `json:"id"`
	Entry *storeEntry `json:"entry,omitempty"`
}

// OpenStore reads the journal at path (a missing file is an empty store)
// and opens it for appending. sinks names the sinks whose delivery is
// tracked.
func OpenStore(path string, sinks []string) (*Store, error) {
	s := &Store{path: path, sinks: sinks, entries: map[string]*storeEntry{}, dirty: map[string]bool{}}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("alert store: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		var r storeRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			// A line torn by a crash mid-append ends the journal.
			break
		}
		if r.Entry == nil || r.Entry.Alert.ID() != r.ID {
			// A removal, or a line whose alert is not the one it names
			// (only a hand-edited journal has one): the latter is dropped
			// rather than trusted to say which message shows which alert.
			delete(s.entries, r.ID)
		} else {
			r.Entry.Posts = r.Entry.Posts.sanitize(sinks)
			s.entries[r.ID] = r.Entry
		}
	}
	if err := s.compact(); err != nil {
		return nil, err
	}
	return s, nil
}

// Open returns the open alerts, ordered by rule and key.
func (s *Store) Open() []Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Alert
	for _, e := range s.entries {
		if e.Open {
			out = append(out, e.Alert)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID() < out[j].ID() })
	return out
}

// Len is the number of alerts the store holds (open, or resolved and not
// yet delivered everywhere).
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// Pending returns what sink missed, in order: a Fired for each open alert
// it was not told of (or only of an earlier episode), an Updated for one
// that grew since, and a Resolved for each resolved alert it was told of
// but not of its end.
func (s *Store) Pending(sink string) []Transition {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Transition
	for _, e := range s.entries {
		m, told := e.Delivered[sink]
		sameEpisode := told && m.Episode == e.Alert.Episode
		switch {
		case e.Open && (!sameEpisode || m.Kind == Resolved):
			out = append(out, Transition{Kind: Fired, Alert: e.Alert})
		case e.Open && m.Count < e.Alert.Count:
			out = append(out, Transition{Kind: Updated, Alert: e.Alert})
		case !e.Open && sameEpisode && m.Kind != Resolved:
			out = append(out, Transition{Kind: Resolved, Alert: e.Alert})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Alert.ID() < out[j].Alert.ID() })
	return out
}

// Record notes a transition the manager made.
func (s *Store) Record(t Transition) {
	if t.Kind == Summary {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := t.Alert.ID()
	e := s.entries[id]
	if e == nil {
		if t.Kind == Resolved {
			return
		}
		e = &storeEntry{}
		s.entries[id] = e
	}
	if e.Alert.Episode != t.Alert.Episode {
		e.Posts = nil // the messages of the alert's last episode
	}
	e.Alert = t.Alert
	e.Alert.Evidence = append([]string(nil), t.Alert.Evidence...)
	e.Open = t.Kind != Resolved
	s.dirty[id] = true
	s.forgetIfDone(id, e)
}

// Delivered notes that sink took the batch (DispatchConfig.OnDelivered).
func (s *Store) Delivered(sink string, batch []Transition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range batch {
		if t.Kind == Summary {
			continue
		}
		id := t.Alert.ID()
		e := s.entries[id]
		if e == nil || t.Alert.Episode != e.Alert.Episode {
			continue
		}
		if e.Delivered == nil {
			e.Delivered = map[string]Mark{}
		}
		e.Delivered[sink] = Mark{Kind: t.Kind, Episode: t.Alert.Episode, Count: t.Alert.Count}
		if t.Kind == Resolved {
			delete(e.Posts, sink)
		}
		s.dirty[id] = true
		s.forgetIfDone(id, e)
	}
}

// forgetIfDone drops a resolved alert once no sink waits for its
// resolution; s.mu is held.
func (s *Store) forgetIfDone(id string, e *storeEntry) {
	if e.Open {
		return
	}
	for _, sink := range s.sinks {
		if m, told := e.Delivered[sink]; told && m.Episode == e.Alert.Episode && m.Kind != Resolved {
			return
		}
	}
	delete(s.entries, id)
}

// Save appends the alerts that changed since the last save to the journal
// and syncs it, and compacts the journal when it has grown.
func (s *Store) Save() error { return s.Snapshot()() }

// Snapshot takes the alerts that changed since the last save, now, and
// returns the function that appends them to the journal, so that a caller
// can take it under the same lock as the positions it saves with them. If
// the write fails, they are saved with the next snapshot.
func (s *Store) Snapshot() func() error {
	s.mu.Lock()
	buf, ids, err := encode(s, s.dirty)
	clear(s.dirty)
	s.mu.Unlock()
	if err != nil {
		return func() error { return err }
	}
	return func() error {
		if buf.Len() == 0 {
			return nil
		}
		err := s.append(buf.Bytes())
		if err != nil {
			s.mu.Lock()
			for _, id := range ids {
				s.dirty[id] = true
			}
			s.mu.Unlock()
			return err
		}
		s.fmu.Lock()
		grown := s.size > 1<<20 && s.size > 4*s.compacted
		s.fmu.Unlock()
		if grown {
			return s.compact()
		}
		return nil
	}
}

// encode writes the journal lines of the alerts named by the keys of ids,
// in order; s.mu is held.
func encode[V any](s *Store, ids map[string]V) (*bytes.Buffer, []string, error) {
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	var buf bytes.Buffer
	for _, id := range sorted {
		b, err := json.Marshal(storeRecord{ID: id, Entry: s.entries[id]})
		if err != nil {
			return nil, nil, fmt.Errorf("alert store: %w", err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	return &buf, sorted, nil
}

func (s *Store) append(b []byte) error {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if _, err := s.f.Write(b); err != nil {
		return fmt.Errorf("alert store: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("alert store: %w", err)
	}
	s.size += int64(len(b))
	return nil
}

// compact rewrites the journal with what it holds (temporary file, fsync,
// rename) and reopens it for appending.
func (s *Store) compact() error {
	s.mu.Lock()
	buf, _, err := encode(s, s.entries)
	clear(s.dirty)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), filepath.Base(s.path)+".tmp*")
	if err != nil {
		return fmt.Errorf("alert store: %w", err)
	}
	_, err = tmp.Write(buf.Bytes())
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("alert store: %w", err)
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("alert store: %w", err)
	}
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.f != nil {
		s.f.Close()
	}
	s.f, s.size, s.compacted = f, int64(buf.Len()), int64(buf.Len())
	return nil
}

// Close closes the journal (after a last Save).
func (s *Store) Close() error {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.f == nil {
		return nil
	}
	return s.f.Close()
}
