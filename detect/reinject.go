package detect

import (
	"strings"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
)

// Content filters and forwards re-queue a message under a new id on the same
// host. The copy must be judged by whoever submitted the original, whatever
// order the log shows the two in:
//
//   - a copy that names its parent (Postfix orig_queue_id=, amavis'
//     "queued_as:") inherits at once;
//   - a parent's hand-off ("queued as ID" from a loopback next hop, local(8)'s
//     "forwarded as ID") seen before its copy waits in pending until the copy
//     shows up;
//   - a copy accepted from loopback before anything named its parent may be a
//     re-injection: its outbound deliveries are held (in copies) until the
//     parent's hand-off shows up, and judged with the parent's submission;
//     after HoldWindow of event time, or when the bound is reached, they are
//     judged as the loopback client's own (counted in Stats.ParentNeverSeen);
//   - a loopback next hop that answered "queued as ID" is a content filter
//     only if ID then shows up; otherwise (a relay host reached through a
//     local tunnel answers the same) the delivery is judged as what it is
//     by its recipient, after HoldWindow (Stats.HopsUnconfirmed).

// Defaults of the correlation of re-queued copies.
const (
	DefaultHoldWindow = 10 * time.Minute
	maxCopies         = 20000 // loopback arrivals waiting for a parent
	maxPendingParents = 20000 // hand-offs waiting for their copy
	maxLinked         = 20000 // copies already linked, for hand-off lines that come late
	maxHeld           = 50000 // deliveries held in all
)

// held is a delivery whose verdict waits for its message's parent.
type held struct{ e parsers.Event }

// cloneEvent copies the fields of a delivery that judging it later reads,
// so that it does not pin its input block.
func cloneEvent(e *parsers.Event) parsers.Event {
	c := *e
	c.Host, c.Program, c.QueueID = strings.Clone(e.Host), strings.Clone(e.Program), strings.Clone(e.QueueID)
	c.To, c.OrigTo, c.Relay = strings.Clone(e.To), strings.Clone(e.OrigTo), strings.Clone(e.Relay)
	c.Reply, c.DSN, c.Line, c.Requeued = strings.Clone(e.Reply), strings.Clone(e.DSN), strings.Clone(e.Line), strings.Clone(e.Requeued)
	c.From, c.Detail, c.Subject, c.MessageID = "", "", "", ""
	return c
}

// hostKey keys a message by host and id only: a copy may be re-queued into
// another instance (postfix-out).
func (d *Detector) hostKey(host, id string) msgKey {
	return msgKey{host: host, id: id}
}

// mayBeCopy marks a message accepted from a trusted loopback client with no
// parent named: its outbound deliveries wait for a parent that may still show
// up. (A loopback client that may not relay is judged at once either way, and
// so is one that logged in: a re-injection never carries a SASL login, since
// XFORWARD passes the client's address but not its login, while webmail on
// the host submits through loopback with the user's login, and a stolen
// account's mail must not wait.)
func (d *Detector) mayBeCopy(e *parsers.Event, m *message) {
	if m.inherited || m.authUser != "" || !m.submission.MayRelay() || !m.client.IsValid() || !m.client.Unmap().IsLoopback() {
		return
	}
	k := d.hostKey(d.names.get(e.Host), strings.Clone(e.QueueID))
	if _, ok := d.copies.peek(k); !ok && d.copies.len() >= maxCopies {
		d.releaseOldestCopy()
	}
	m.maybeCopy = true
	m.copySince = e.Time
	d.copies.put(k, m)
}

// hold keeps a delivery of a possible copy until its parent is known. It
// reports false when the bound on held deliveries is reached.
func (d *Detector) hold(e *parsers.Event, m *message) bool {
	if d.heldCount >= maxHeld {
		d.stats.ParentNeverSeen++
		return false
	}
	d.heldCount++
	m.held = append(m.held, held{cloneEvent(e)})
	return true
}

// link makes child, a re-queued copy, carry parent's submission and judges
// the deliveries it held.
func (d *Detector) link(child, parent *message, forward bool, t time.Time) {
	child.inherit(parent, t)
	if forward {
		child.forward = true
	}
	d.release(child)
}

// release ends the wait of a possible copy: its held deliveries are judged
// with the submission it has now (its parent's when linked).
func (d *Detector) release(m *message) {
	m.maybeCopy = false
	hs := m.held
	m.held = nil
	d.heldCount -= len(hs)
	for i := range hs {
		d.judge(&hs[i].e, m)
	}
}

func (d *Detector) releaseOldestCopy() {
	_, m, ok := d.copies.oldest()
	if !ok {
		return
	}
	d.copies.removeOldest()
	if m.maybeCopy && len(m.held) > 0 {
		d.stats.ParentNeverSeen++
	}
	d.release(m)
}

// pendingParent is a hand-off to a copy not seen yet.
type pendingParent struct {
	parent  *message
	forward bool           // local(8) "forwarded as": the copy's deliveries are forwards
	hop     *parsers.Event // the hand-off delivery, counted as a hop once the copy shows up
	since   time.Time
}

// handOff handles a delivery (or an amavis line) that re-queued message m
// as id. confirmed is set when the log proves the copy exists (amavis,
// local(8)); otherwise hop is the loopback delivery whose class waits for
// the copy to show up. It reports whether the hand-off was settled (the copy
// is known).
func (d *Detector) handOff(e *parsers.Event, m *message, id string, forward bool, hop *parsers.Event) bool {
	hk := d.hostKey(e.Host, id)
	if child, ok := d.copies.peek(hk); ok {
		d.copies.remove(hk)
		d.link(child, m, forward, e.Time)
		d.markLinked(e.Host, id)
		return true
	}
	if child, ok := d.msgs.get(msgKey{e.Host, instance(e.Program), id}); ok && child != m {
		if !child.inherited {
			d.link(child, m, forward, e.Time)
		}
		d.markLinked(e.Host, id)
		return true
	}
	if _, ok := d.linked.peek(hk); ok {
		return true
	}
	if d.pending.len() >= maxPendingParents {
		d.expireOldestPending()
	}
	p := &pendingParent{parent: m.snapshot(e.Time), forward: forward, since: e.Time}
	if hop != nil {
		c := cloneEvent(hop)
		p.hop = &c
	}
	d.pending.put(msgKey{host: d.names.get(e.Host), id: strings.Clone(id)}, p)
	return false
}

func (d *Detector) markLinked(host, id string) {
	d.linked.put(msgKey{host: d.names.get(host), id: strings.Clone(id)}, struct{}{})
}

// snapshot is a copy of m to hand to its re-queued copy later.
func (m *message) snapshot(t time.Time) *message {
	c := *m
	c.lastSeen = t
	c.evidence = append([]byte(nil), m.evidence...)
	c.held = nil
	c.redirects = append([]redirect(nil), m.redirects...)
	return &c
}

// adopt links m, just seen, to the parent that handed it off earlier.
func (d *Detector) adopt(e *parsers.Event, m *message) {
	pk := d.hostKey(e.Host, e.QueueID)
	p, ok := d.pending.peek(pk)
	if !ok {
		return
	}
	d.pending.remove(pk)
	d.link(m, p.parent, p.forward, e.Time)
	if p.hop != nil {
		d.countDelivery(DeliveryHop, p.hop.Status)
	}
}

// expireOldestPending gives up on the oldest hand-off: its copy never
// showed up, so a loopback "queued as" was not a content filter and the
// delivery is judged by its recipient.
func (d *Detector) expireOldestPending() {
	_, p, ok := d.pending.oldest()
	if !ok {
		return
	}
	d.pending.removeOldest()
	if p.hop != nil {
		d.stats.HopsUnconfirmed++
		d.judge(p.hop, p.parent)
	}
}

// expireHeld ends the waits older than HoldWindow.
func (d *Detector) expireHeld() {
	limit := d.now.Add(-d.cfg.HoldWindow)
	for {
		_, m, ok := d.copies.oldest()
		if !ok || !m.copySince.Before(limit) {
			break
		}
		d.releaseOldestCopy()
	}
	for {
		_, p, ok := d.pending.oldest()
		if !ok || !p.since.Before(limit) {
			break
		}
		d.expireOldestPending()
	}
}

// Flush ends every wait for a parent or a copy, as if HoldWindow had
// passed: analyze calls it at the end of its input, before reading the
// findings and statistics.
func (d *Detector) Flush() {
	for d.copies.len() > 0 {
		d.releaseOldestCopy()
	}
	for d.pending.len() > 0 {
		d.expireOldestPending()
	}
}

// requeued handles a content filter's own report (amavis "Passed ...
// queued_as:"): message QueueID was re-queued as Requeued.
func (d *Detector) requeued(e *parsers.Event) {
	for _, inst := range [...]string{instance(e.Program), "postfix"} {
		if parent, ok := d.msgs.get(msgKey{e.Host, inst, e.QueueID}); ok {
			d.handOff(e, parent, e.Requeued, false, nil)
			return
		}
	}
}
