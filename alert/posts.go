package alert

import (
	"encoding/json"
	"regexp"
	"sort"
)

// PostRef says where a chat sink (the Slack bot) showed an alert: the
// message, by its channel and timestamp, and the alert's place in it. A
// Store keeps it with the alert, so that after a restart the sink edits
// that message and replies in its thread instead of posting a new one.
type PostRef struct {
	// To is the channel the sink was configured with when it posted
	// (--slack-channel): a restart with another channel does not edit
	// messages in the old one.
	To string `json:"to"`
	// Channel is the channel's ID, as Slack answered (chat.update needs
	// it; a name is not enough).
	Channel string `json:"channel"`
	// TS is the message's timestamp, its ID in the channel.
	TS string `json:"ts"`
	// N is the alert's place among the alerts the message lists.
	N int `json:"n,omitempty"`
}

// Post is a message and the alerts it shows, in order.
type Post struct {
	To, Channel, TS string
	Alerts          []Alert
}

// PostJournal keeps, across restarts, which message shows which alerts;
// Store is one.
type PostJournal interface {
	// SetPost notes that the message ref shows alerts, in order.
	SetPost(sink string, ref PostRef, alerts []Alert)
	// ClearPost forgets the messages of the alerts ids.
	ClearPost(sink string, ids ...string)
}

var _ PostJournal = (*Store)(nil)

// maxPostAlerts bounds an alert's place in a message (a batch holds
// DispatchConfig.MaxGroup alerts, 50 by default).
const maxPostAlerts = 1000

// Slack's message timestamps are "1700000000.000100"; channel IDs are
// upper-case letters and digits (C0123456, G…, D…).
var (
	tsPattern        = regexp.MustCompile(`^[0-9]{1,16}\.[0-9]{1,16}$`)
	channelIDPattern = regexp.MustCompile(`^[A-Z0-9]{2,40}$`)
)

// valid says whether a reference read from the journal (or answered by
// Slack) may be used: a timestamp's shape, and a channel that is either
// the configured one or shaped like an ID, so that nothing else reaches
// Slack's API from the journal.
func (r PostRef) valid() bool {
	return tsPattern.MatchString(r.TS) && r.To != "" && len(r.To) <= 200 &&
		(r.Channel == r.To || channelIDPattern.MatchString(r.Channel)) && r.N >= 0 && r.N < maxPostAlerts
}

// postRefs are an alert's messages, by sink. Reading the journal never
// fails on it: a value that is not what it should be is left out (and
// the reference is dropped when the journal is read, see sanitize), so a
// corrupt or hostile reference costs that reference, not the journal's
// lines after it.
type postRefs map[string]PostRef

// UnmarshalJSON implements json.Unmarshaler.
func (p *postRefs) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if json.Unmarshal(b, &raw) != nil {
		*p = nil
		return nil
	}
	out := postRefs{}
	for sink, v := range raw {
		var r PostRef
		if json.Unmarshal(v, &r) == nil {
			out[sink] = r
		}
	}
	*p = out
	return nil
}

// sanitize keeps the references of known sinks that are valid.
func (p postRefs) sanitize(sinks []string) postRefs {
	var out postRefs
	for _, sink := range sinks {
		if r, ok := p[sink]; ok && r.valid() {
			if out == nil {
				out = postRefs{}
			}
			out[sink] = r
		}
	}
	return out
}

// SetPost implements PostJournal: each alert's entry (of the same episode)
// notes the message and its place in it; it is saved with the next
// snapshot. An alert the store no longer holds is skipped.
func (s *Store) SetPost(sink string, ref PostRef, alerts []Alert) {
	if !s.tracks(sink) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, a := range alerts {
		r := ref
		r.N = i
		id := a.ID()
		e := s.entries[id]
		if e == nil || e.Alert.Episode != a.Episode || !r.valid() {
			continue
		}
		if e.Posts == nil {
			e.Posts = postRefs{}
		}
		e.Posts[sink] = r
		s.dirty[id] = true
	}
}

// ClearPost implements PostJournal.
func (s *Store) ClearPost(sink string, ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if e := s.entries[id]; e != nil {
			if _, ok := e.Posts[sink]; ok {
				delete(e.Posts, sink)
				s.dirty[id] = true
			}
		}
	}
}

// Posts returns the messages sink showed alerts in that the store still
// holds (open, or resolved and not yet delivered everywhere), oldest
// first, each with its alerts in their places.
func (s *Store) Posts(sink string) []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	type member struct {
		n int
		a Alert
	}
	msgs := map[PostRef][]member{}
	for _, e := range s.entries {
		r, ok := e.Posts[sink]
		if !ok {
			continue
		}
		n := r.N
		r.N = 0
		a := e.Alert
		a.Evidence = append([]string(nil), a.Evidence...)
		msgs[r] = append(msgs[r], member{n, a})
	}
	out := make([]Post, 0, len(msgs))
	for r, ms := range msgs {
		sort.Slice(ms, func(i, j int) bool {
			if ms[i].n != ms[j].n {
				return ms[i].n < ms[j].n
			}
			return ms[i].a.ID() < ms[j].a.ID()
		})
		p := Post{To: r.To, Channel: r.Channel, TS: r.TS}
		for _, m := range ms {
			p.Alerts = append(p.Alerts, m.a)
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.TS != b.TS {
			return a.TS < b.TS
		}
		if a.Channel != b.Channel {
			return a.Channel < b.Channel
		}
		return a.To < b.To
	})
	return out
}

// tracks says whether the store tracks deliveries to sink.
func (s *Store) tracks(sink string) bool {
	for _, n := range s.sinks {
		if n == sink {
			return true
		}
	}
	return false
}
