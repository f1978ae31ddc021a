package detect

import (
	"sort"
	"strings"
)

// tally finds the most frequent values of a stream in bounded memory
// (Misra-Gries: tallyK counters; a count is low by at most total/(tallyK+1)).
//
// Counts are behind pointers: assigning to an existing string key would
// replace the stored key with the caller's string, which may point into an
// input block that is reused.
type tally struct {
	counts map[string]*int
	total  int
}

const tallyK = 16

func (t *tally) add(v string) {
	if v == "" {
		return
	}
	t.total++
	if t.counts == nil {
		t.counts = map[string]*int{}
	}
	if c, ok := t.counts[v]; ok {
		*c++
		return
	}
	if len(t.counts) < tallyK {
		one := 1
		t.counts[strings.Clone(v)] = &one
		return
	}
	for k, c := range t.counts {
		if *c <= 1 {
			delete(t.counts, k)
		} else {
			*c--
		}
	}
}

// Undeclared is the note for relaying dominated by a few recipient domains
// that nothing declared: on a gateway or backup MX those are likely the
// domains it serves, and the flag or the MTA's configuration fixes it.
type Undeclared struct {
	Domains []string `json:"domains"`
	// Share is the part of the relayed deliveries that went to them (a
	// lower bound).
	Share float64 `json:"share"`
	// Relayed is the number of relayed deliveries looked at.
	Relayed int `json:"relayed"`
}

// Thresholds of the undeclared-domains note.
const (
	undeclaredMaxDomains = 3
	undeclaredShare      = 0.8
	undeclaredMinRelayed = 10
)

// UndeclaredDomains reports when at least 80% of the deliveries relayed for
// strangers went to three recipient domains or fewer that are not local,
// configured or learned; nil otherwise.
func (d *Detector) UndeclaredDomains() *Undeclared {
	t := &d.relayedDomains
	if t.total < undeclaredMinRelayed {
		return nil
	}
	type dc struct {
		d string
		n int
	}
	var top []dc
	for dom, n := range t.counts {
		if !d.policy.IsLocalDomain(dom) {
			top = append(top, dc{dom, *n})
		}
	}
	sort.Slice(top, func(i, j int) bool { return top[i].n > top[j].n || top[i].n == top[j].n && top[i].d < top[j].d })
	u := &Undeclared{Relayed: t.total}
	sum := 0
	for _, x := range top {
		if len(u.Domains) == undeclaredMaxDomains {
			break
		}
		u.Domains = append(u.Domains, x.d)
		sum += x.n
		if float64(sum) >= undeclaredShare*float64(t.total) {
			u.Share = float64(sum) / float64(t.total)
			return u
		}
	}
	return nil
}
