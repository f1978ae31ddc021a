package detect

import (
	"sort"
	"strings"
	"time"
)

// DefaultEpisodeGap is the quiet period (event time) after which a
// finding's episode ends; the next relayed message starts a new one.
const DefaultEpisodeGap = 30 * time.Minute

// findingStore keeps the findings, bounded and ordered by event time.
//
// Every finding belongs to an episode. An episode is open while its key
// keeps producing evidence; it ends when the key has been quiet for gap
// (on the store's clock), and the next evidence for the key starts a new
// episode whose counts start again. Open episodes are kept in the order of
// their last activity on the store's clock, which never goes backwards, so
// the one due to end next is always the oldest: the cost per event does not
// depend on how many are open. Ended episodes stay (for the report) until
// room is needed: when the store is full, the stalest finding is evicted
// (ended ones first, then the longest-quiet open one, whose episode is
// ended early), and a new finding is never refused.
type findingStore struct {
	max   int
	gap   time.Duration
	open  *lru[findingKey, *Finding] // front: quiet the longest
	ended *lru[findingKey, *Finding] // front: ended first
	now   time.Time                  // the episode clock: never goes backwards
	// onEnd hears of every episode that ends (quiet, or evicted early).
	onEnd   func(*Finding)
	evicted uint64
}

func newFindingStore(max int, gap time.Duration) *findingStore {
	// The lists never evict by themselves: the store decides what goes.
	return &findingStore{
		max: max, gap: gap,
		open:  newLRU[findingKey, *Finding](max + 1),
		ended: newLRU[findingKey, *Finding](max + 1),
	}
}

func (s *findingStore) len() int { return s.open.len() + s.ended.len() }

// get returns the finding of (rule, key) at the start of an episode or
// inside one, marking it active now, and creates it if needed. isNew tells
// that this event starts an episode; prev is when an open one was last
// active.
func (s *findingStore) get(rule, key, host string, sev Severity, at time.Time) (f *Finding, isNew bool, prev time.Time) {
	fk := findingKey{rule, key}
	if f, ok := s.open.get(fk); ok {
		prev, f.lastActive = f.lastActive, s.now
		return f, false, prev
	}
	if f, ok := s.ended.peek(fk); ok {
		s.ended.remove(fk)
		f.newEpisode(sev, at)
		f.lastActive = s.now
		s.open.put(fk, f)
		return f, true, time.Time{}
	}
	for s.len() >= s.max {
		s.evictOne()
	}
	fk = findingKey{rule, strings.Clone(key)}
	f = &Finding{Rule: rule, Key: fk.key, Severity: sev, Host: strings.Clone(host), FirstSeen: at, LastSeen: at, lastActive: s.now}
	s.open.put(fk, f)
	return f, true, time.Time{}
}

// newEpisode starts the finding over: counts, evidence and what was
// notified belong to one episode.
func (f *Finding) newEpisode(sev Severity, at time.Time) {
	f.TotalCount += f.Count
	f.Episode++
	f.Count, f.Recipients, f.Baseline = 0, 0, 0
	f.Severity = sev
	f.FirstSeen, f.LastSeen = at, at
	f.WindowStart, f.WindowEnd = time.Time{}, time.Time{}
	f.EndedAt = time.Time{}
	f.Evidence = nil // a new array: copies handed out keep the old one
	f.notifiedCount, f.notifiedSev, f.notifiedWindow = 0, 0, time.Time{}
}

// advance moves the episode clock to t (never backwards), marks the open
// findings in touched active at t, and ends the episodes that were quiet
// for gap.
func (s *findingStore) advance(t time.Time, touched []*Finding) {
	if !t.After(s.now) {
		return
	}
	s.now = t
	for _, t := range touched {
		if f, ok := s.open.get(findingKey{t.Rule, t.Key}); ok {
			f.lastActive = s.now
		}
	}
	for {
		fk, f, ok := s.open.oldest()
		if !ok || s.now.Sub(f.lastActive) < s.gap {
			return
		}
		s.end(fk, f, f.lastActive.Add(s.gap))
	}
}

func (s *findingStore) end(fk findingKey, f *Finding, at time.Time) {
	s.open.remove(fk)
	f.EndedAt = at
	s.ended.put(fk, f)
	if s.onEnd != nil {
		s.onEnd(f)
	}
}

// evictOne removes the stalest finding: the one that ended first, else the
// open one quiet the longest, whose episode ends now.
func (s *findingStore) evictOne() {
	s.evicted++
	if s.ended.len() > 0 {
		s.ended.removeOldest()
		return
	}
	fk, f, ok := s.open.oldest()
	if !ok {
		return
	}
	s.end(fk, f, s.now)
	s.ended.remove(fk)
}

// restore puts back findings whose episodes were open when the process
// stopped, as open, so that their counts go on from where they were.
func (s *findingStore) restore(fs []Finding) {
	sorted := append([]Finding(nil), fs...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].LastSeen.Before(sorted[j].LastSeen) })
	for i := range sorted {
		f := sorted[i]
		f.EndedAt = time.Time{}
		f.Evidence = append([]string(nil), f.Evidence...)
		f.notifiedCount, f.notifiedSev, f.notifiedWindow = f.Count, f.Severity, f.WindowStart
		fk := findingKey{f.Rule, f.Key}
		s.ended.remove(fk)
		if _, ok := s.open.peek(fk); !ok {
			for s.len() >= s.max {
				s.evictOne()
			}
		}
		// A restored episode is as quiet as its last evidence says.
		f.lastActive = f.LastSeen
		if s.now.After(f.lastActive) {
			f.lastActive = s.now
		}
		s.open.put(fk, &f)
	}
}

// each calls fn for every finding, ended ones first.
func (s *findingStore) each(fn func(*Finding)) {
	s.ended.each(func(_ findingKey, f *Finding) { fn(f) })
	s.open.each(func(_ findingKey, f *Finding) { fn(f) })
}

// tell hands OnFinding a described copy of f. The copy shares f's
// evidence array, which is only ever appended to.
func (d *Detector) tell(f *Finding) {
	c := *f
	c.Evidence = f.Evidence[:len(f.Evidence):len(f.Evidence)]
	d.describe(&c)
	d.cfg.OnFinding(c)
}

// episodeEnded tells OnFinding that an episode it was told of ended.
func (d *Detector) episodeEnded(f *Finding) {
	if d.cfg.OnFinding != nil && f.notifiedCount > 0 {
		d.tell(f)
	}
}

// Restore puts back the findings of episodes that were open when an earlier
// process stopped (a sidecar's saved alerts), so that their counts go on
// from where they were and they are not announced again. Call it before
// the first event.
func (d *Detector) Restore(fs []Finding) { d.findings.restore(fs) }
