package detect

import (
	"container/list"
	"strings"
)

// lru is a map with a hard cap on its size that evicts the least recently
// used entry. Keys come from log content chosen by remote parties, so every
// map keyed by them is bounded. Keys are stored as given: callers clone
// strings that point into input blocks before they put them.
type lru[K comparable, V any] struct {
	max     int
	items   map[K]*list.Element
	order   *list.List // front: least recently used
	evicted uint64
}

type lruEntry[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, items: map[K]*list.Element{}, order: list.New()}
}

// get returns the value and marks it used.
func (l *lru[K, V]) get(key K) (V, bool) {
	if el, ok := l.items[key]; ok {
		l.order.MoveToBack(el)
		return el.Value.(*lruEntry[K, V]).val, true
	}
	var zero V
	return zero, false
}

// peek returns the value without marking it used.
func (l *lru[K, V]) peek(key K) (V, bool) {
	if el, ok := l.items[key]; ok {
		return el.Value.(*lruEntry[K, V]).val, true
	}
	var zero V
	return zero, false
}

// put stores a value, evicting the least recently used entry when full. It
// reports whether an entry was evicted.
func (l *lru[K, V]) put(key K, v V) (evicted bool) {
	if el, ok := l.items[key]; ok {
		el.Value.(*lruEntry[K, V]).val = v
		l.order.MoveToBack(el)
		return false
	}
	if len(l.items) >= l.max {
		l.removeOldest()
		l.evicted++
		evicted = true
	}
	l.items[key] = l.order.PushBack(&lruEntry[K, V]{key: key, val: v})
	return evicted
}

// oldest returns the least recently used entry.
func (l *lru[K, V]) oldest() (K, V, bool) {
	front := l.order.Front()
	if front == nil {
		var k K
		var v V
		return k, v, false
	}
	e := front.Value.(*lruEntry[K, V])
	return e.key, e.val, true
}

func (l *lru[K, V]) removeOldest() {
	if front := l.order.Front(); front != nil {
		e := front.Value.(*lruEntry[K, V])
		l.order.Remove(front)
		delete(l.items, e.key)
	}
}

func (l *lru[K, V]) remove(key K) {
	if el, ok := l.items[key]; ok {
		l.order.Remove(el)
		delete(l.items, key)
	}
}

func (l *lru[K, V]) len() int { return len(l.items) }

// each calls fn for every entry, least recently used first.
func (l *lru[K, V]) each(fn func(key K, v V)) {
	for el := l.order.Front(); el != nil; el = el.Next() {
		e := el.Value.(*lruEntry[K, V])
		fn(e.key, e.val)
	}
}

// boundedSet is a set of strings with a hard cap (least recently added or
// touched evicted first).
type boundedSet struct{ l *lru[string, struct{}] }

func newBoundedSet(max int) *boundedSet { return &boundedSet{l: newLRU[string, struct{}](max)} }

func (s *boundedSet) has(k string) bool { _, ok := s.l.peek(k); return ok }
func (s *boundedSet) add(k string)      { s.l.put(k, struct{}{}) }
func (s *boundedSet) keys() []string {
	out := make([]string, 0, s.l.len())
	s.l.each(func(k string, _ struct{}) { out = append(out, k) })
	return out
}

// interner shares one copy of strings that repeat on every line (host and
// instance names), so that keys kept for each message do not each copy
// them. It is bounded: past maxInterned distinct strings it just clones.
type interner map[string]string

const maxInterned = 1000

func (in *interner) get(s string) string {
	if v, ok := (*in)[s]; ok {
		return v
	}
	c := strings.Clone(s)
	if *in == nil {
		*in = map[string]string{}
	}
	if len(*in) < maxInterned {
		(*in)[c] = c
	}
	return c
}
