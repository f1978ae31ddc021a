package detect

import (
	"hash/maphash"
	"strings"

	"github.com/relaywatch/relaywatch/parsers"
)

// MaxDistinct bounds the distinct senders and recipients counted exactly;
// beyond it the counts stop growing and are marked as lower bounds.
const MaxDistinct = 1 << 20

// Totals are the traffic totals of a run, in pflogsumm's terms and with its
// counting rules, so that they can be compared with pflogsumm's report:
//
//   - received: messages accepted from a network client (smtpd "client=")
//     or submitted locally (pickup), except re-injections from a content
//     filter (a "client=" from loopback, or naming orig_queue_id=, on an
//     smtpd service other than the default, smtps and submission, such as
//     postfix/10025/smtpd: pflogsumm does not count those either);
//   - delivered: delivery lines with status=sent, except "forwarded as" ones,
//     which are forwarded;
//   - deferred: distinct queue ids with at least one status=deferred line;
//     deferrals: all status=deferred lines;
//   - bounced: status=bounced lines;
//   - rejected: smtpd/postscreen "reject:" lines and cleanup header/body
//     (milter-)rejects; reject warnings, held and discarded likewise;
//   - senders: distinct envelope senders of received messages (domain part
//     lower-cased, "<>" counted once), from qmgr's from= for Postfix (pickup's
//     from=<root> is not yet qualified); recipients: distinct recipients of
//     delivered mail.
type Totals struct {
	Received       uint64 `json:"received"`
	Delivered      uint64 `json:"delivered"`
	Forwarded      uint64 `json:"forwarded"`
	Deferred       uint64 `json:"deferred"`
	Deferrals      uint64 `json:"deferrals"`
	Bounced        uint64 `json:"bounced"`
	Rejected       uint64 `json:"rejected"`
	RejectWarnings uint64 `json:"reject_warnings"`
	Held           uint64 `json:"held"`
	Discarded      uint64 `json:"discarded"`
	Expired        uint64 `json:"expired"`
	Senders        int    `json:"senders"`
	Recipients     int    `json:"recipients"`
	// DistinctCapped is set when senders or recipients passed MaxDistinct
	// and are lower bounds.
	DistinctCapped bool `json:"distinct_capped"`
}

// maxPendingReceived bounds the received messages whose sender is not yet known.
const maxPendingReceived = 100000

// TotalsCounter computes Totals from events.
type TotalsCounter struct {
	t          Totals
	received   map[msgKey]struct{} // received messages waiting for their sender line
	hosts      interner
	seed       maphash.Seed // distinct sets keep 64-bit hashes, not addresses
	deferred   map[uint64]struct{}
	senders    map[uint64]struct{}
	recipients map[uint64]struct{}
}

// NewTotalsCounter returns an empty counter.
func NewTotalsCounter() *TotalsCounter {
	return &TotalsCounter{
		received:   map[msgKey]struct{}{},
		seed:       maphash.MakeSeed(),
		deferred:   map[uint64]struct{}{},
		senders:    map[uint64]struct{}{},
		recipients: map[uint64]struct{}{},
	}
}

// Totals returns the totals so far.
func (c *TotalsCounter) Totals() Totals {
	t := c.t
	t.Senders, t.Recipients = len(c.senders), len(c.recipients)
	return t
}

// Handle counts one event.
func (c *TotalsCounter) Handle(e *parsers.Event) {
	switch e.Kind {
	case parsers.KindAccept, parsers.KindPickup:
		if e.Kind == parsers.KindAccept && reinjected(e) {
			return
		}
		c.t.Received++
		if e.FromSet && !(e.Kind == parsers.KindPickup && daemonOf(e.Program) == "pickup") {
			// The arrival names its sender (Exim): count it now.
			c.add(c.senders, e.From, e.From == "")
			return
		}
		if len(c.received) >= maxPendingReceived {
			// Messages whose sender line never came: forget them all
			// rather than grow without bound.
			clear(c.received)
		}
		c.received[msgKey{c.hosts.get(e.Host), c.hosts.get(instance(e.Program)), strings.Clone(e.QueueID)}] = struct{}{}
	case parsers.KindQueued:
		k := msgKey{e.Host, instance(e.Program), e.QueueID}
		if _, ok := c.received[k]; ok {
			delete(c.received, k)
			c.add(c.senders, e.From, !e.FromSet || e.From == "")
		}
	case parsers.KindExpired:
		c.t.Expired++
	case parsers.KindDelivery:
		switch e.Status {
		case parsers.StatusSent:
			if strings.Contains(e.Reply, "forwarded as ") {
				c.t.Forwarded++
				return
			}
			c.t.Delivered++
			c.add(c.recipients, e.To, false)
		case parsers.StatusDeferred:
			c.t.Deferrals++
			h := maphash.String(c.seed, e.QueueID) ^ maphash.String(c.seed, e.Host)*fnvPrime
			if _, ok := c.deferred[h]; !ok && len(c.deferred) < MaxDistinct {
				c.deferred[h] = struct{}{}
				c.t.Deferred++
			}
		case parsers.StatusBounced:
			c.t.Bounced++
		}
	case parsers.KindReject:
		if daemonOf(e.Program) == "cleanup" {
			switch e.Stage {
			case "header", "body", "END-OF-MESSAGE":
			default:
				return
			}
		}
		switch e.Action {
		case "reject":
			c.t.Rejected++
		case "milter-reject":
			if daemonOf(e.Program) == "cleanup" {
				c.t.Rejected++
			}
		case "reject_warning":
			c.t.RejectWarnings++
		case "warning":
			if daemonOf(e.Program) == "cleanup" {
				c.t.RejectWarnings++
			}
		case "hold":
			c.t.Held++
		case "discard":
			c.t.Discarded++
		}
	}
}

// add counts an address in a distinct set: local part as is, domain
// lower-cased (pflogsumm's normalization).
func (c *TotalsCounter) add(set map[uint64]struct{}, addr string, null bool) {
	if null {
		addr = "from=<>"
	} else if at := strings.LastIndexByte(addr, '@'); at >= 0 && hasUpper(addr[at+1:]) {
		addr = addr[:at+1] + strings.ToLower(addr[at+1:])
	}
	h := maphash.String(c.seed, addr)
	if _, ok := set[h]; ok {
		return
	}
	if len(set) >= MaxDistinct {
		c.t.DistinctCapped = true
		return
	}
	set[h] = struct{}{}
}

// reinjected tells a content filter's re-injection: an arrival from loopback
// (or naming its parent) on an smtpd service of its own
// ("postfix/10025/smtpd"), not the default one, smtps or submission.
func reinjected(e *parsers.Event) bool {
	svc := e.Program
	first := strings.IndexByte(svc, '/')
	last := strings.LastIndexByte(svc, '/')
	if first < 0 || first == last {
		return false
	}
	switch svc[first+1 : last] {
	case "smtps", "submission":
		return false
	}
	return e.OrigQueueID != "" || strings.HasPrefix(e.ClientIP, "127.") || e.ClientIP == "::1"
}

func daemonOf(program string) string {
	if i := strings.LastIndexByte(program, '/'); i >= 0 {
		return program[i+1:]
	}
	return program
}

// fnvPrime mixes two hashes into one.
const fnvPrime = 1099511628211

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return true
		}
	}
	return false
}
