package detect

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
)

// RuleBlocklisted is raised when receivers refuse or defer our outbound
// mail with replies that name a blocklist or a reputation block.
const RuleBlocklisted = "blocklisted"

// BlocklistConfig configures the blocklisted rule. Zero values take the
// defaults.
type BlocklistConfig struct {
	// Window is the event time over which receivers and the share of
	// refused outbound deliveries are counted. Default 1h.
	Window time.Duration
	// Receivers: this many distinct receiving domains refusing our mail
	// for a blocklist within Window make the finding critical. Default 3.
	Receivers int
	// Share: this share of the outbound deliveries in Window refused for
	// a blocklist (at least MinRefused of them) makes it critical; the
	// retries of a deferred delivery count once. Default 0.2.
	Share float64
	// MinRefused is the floor for Share. Default 10.
	MinRefused int
}

// Defaults of BlocklistConfig.
const (
	DefaultBlocklistWindow     = time.Hour
	DefaultBlocklistReceivers  = 3
	DefaultBlocklistShare      = 0.2
	DefaultBlocklistMinRefused = 10
)

// blocklist is one list or reputation block that receivers name in their
// replies. The key of its findings is id (never a value from the log).
type blocklist struct {
	id, name string
	// any of these (lower case) in the reply names the list.
	any []string
	// delist is where to ask for removal once the cause is fixed.
	delist string
}

// blocklists are matched in order; the generic entry comes last. Sources
// of the reply texts: detect/blocklist_test.go.
var blocklists = []blocklist{
	{"spamhaus", "Spamhaus", []string{"spamhaus"}, "https://check.spamhaus.org/"},
	{"spamcop", "SpamCop", []string{"spamcop"}, "https://www.spamcop.net/bl.shtml"},
	{"barracuda", "Barracuda", []string{"barracudacentral", "barracuda rbl", "barracuda reputation"}, "https://www.barracudacentral.org/rbl/removal-request"},
	{"sorbs", "SORBS", []string{"sorbs.net", "sorbs "}, "https://www.sorbs.net/ (SORBS closed in 2024: ask the receiver to stop using it)"},
	{"uceprotect", "UCEPROTECT", []string{"uceprotect"}, "https://www.uceprotect.net/en/rblcheck.php"},
	{"microsoft", "Microsoft (Outlook.com / Exchange Online)", []string{"(s3140)", "(s3150)", "(as3140)", "(as3150)", "5.7.606", "5.7.607", "5.7.608", "banned sending ip", "is on our block list"}, "https://sender.office.com/"},
	{"gmail", "Gmail", []string{"our system has detected an unusual rate", "has detected that this message is", "has detected that this 550-5.7.1 message", "likely unsolicited mail", "unsolicitedipe", "unsolicitedratelimit", "unsolicitedmessage"}, "https://support.google.com/mail/answer/81126 (and Google Postmaster Tools)"},
	{"yahoo", "Yahoo", []string{"[tss0", "[ts0"}, "https://senders.yahooinc.com/smtp-error-codes/"},
	{"proofpoint", "Proofpoint", []string{"ipcheck.proofpoint.com"}, "https://ipcheck.proofpoint.com/"},
	{"cloudmark", "Cloudmark", []string{"cloudmark"}, "https://csi.cloudmark.com/en/reset/"},
	{"spamrats", "SpamRATS", []string{"spamrats"}, "https://www.spamrats.com/removal.php"},
	{"other", "a blocklist", []string{"blocked using ", "listed at ", "listed in ", "dnsbl", " rbl", "blacklist", "blocklist", "block list"}, "the list the reply names"},
}

// matchBlocklist returns the list a remote reply names, or nil. buf is
// scratch space for the reply in lower case (ASCII: the lists' words are),
// reused so that a deferral costs no allocation.
func matchBlocklist(reply string, buf *[]byte) *blocklist {
	if reply == "" {
		return nil
	}
	lower := append((*buf)[:0], reply...)
	for i, c := range lower {
		if 'A' <= c && c <= 'Z' {
			lower[i] = c + 'a' - 'A'
		}
	}
	*buf = lower
	for i := range blocklists {
		for _, s := range blocklistWords[i] {
			if bytes.Contains(lower, s) {
				return &blocklists[i]
			}
		}
	}
	return nil
}

// blocklistWords are the lists' words as bytes, converted once.
var blocklistWords = func() [][][]byte {
	out := make([][][]byte, len(blocklists))
	for i, l := range blocklists {
		for _, s := range l.any {
			out[i] = append(out[i], []byte(s))
		}
	}
	return out
}()

// maxBlockReceivers bounds the receiving domains remembered.
const maxBlockReceivers = 1000

// deliveryKey names one delivery: a recipient of a queued message.
type deliveryKey struct{ host, queueID, to string }

// maxBlockRetries bounds the deferred deliveries remembered so that their
// retries are not counted again; a delivery forgotten past it counts as a
// new one when it is retried.
const maxBlockRetries = 20000

type blocklistRule struct {
	cfg BlocklistConfig
	// receivers: receiving domain -> last refusal for a blocklist.
	receivers *lru[string, time.Time]
	// perList: the receiving domains of each list's episode (ids come
	// from the table, so the map is bounded by it).
	perList map[string]*boundedSet
	// deferredSeen: the deliveries (host, queue id, recipient) deferred
	// so far. A retry of one is not a new delivery: a message deferred for
	// hours is retried again and again, and counting each retry would
	// inflate the refused count and share.
	deferredSeen *lru[deliveryKey, struct{}]
	// The outbound deliveries and blocklist refusals of the current
	// window, each delivery counted once however often it was retried.
	windowStart    time.Time
	total, refused int
	lower          []byte // matchBlocklist's scratch
}

func newBlocklistRule(cfg BlocklistConfig) (*blocklistRule, error) {
	if cfg.Window == 0 {
		cfg.Window = DefaultBlocklistWindow
	}
	if cfg.Receivers == 0 {
		cfg.Receivers = DefaultBlocklistReceivers
	}
	if cfg.Share == 0 {
		cfg.Share = DefaultBlocklistShare
	}
	if cfg.MinRefused == 0 {
		cfg.MinRefused = DefaultBlocklistMinRefused
	}
	switch {
	case cfg.Window < time.Minute:
		return nil, fmt.Errorf("blocklist window %v: must be at least 1m", cfg.Window)
	case cfg.Receivers < 1:
		return nil, fmt.Errorf("blocklist receivers %d: must be at least 1", cfg.Receivers)
	case cfg.Share <= 0 || cfg.Share > 1:
		return nil, fmt.Errorf("blocklist share %v: must be in (0, 1]", cfg.Share)
	case cfg.MinRefused < 1:
		return nil, fmt.Errorf("blocklist minimum %d: must be at least 1", cfg.MinRefused)
	}
	return &blocklistRule{cfg: cfg, receivers: newLRU[string, time.Time](maxBlockReceivers), perList: map[string]*boundedSet{},
		deferredSeen: newLRU[deliveryKey, struct{}](maxBlockRetries)}, nil
}

// delivered looks at every outbound or forwarded delivery attempt: it
// counts it for the share, and a deferral or bounce whose reply names a
// blocklist raises the finding of that list.
func (b *blocklistRule) delivered(d *Detector, e *parsers.Event, class DeliveryClass) {
	if class != DeliveryOutbound && class != DeliveryForwarded {
		return
	}
	if ws := e.Time.Truncate(b.cfg.Window); ws.After(b.windowStart) {
		b.windowStart, b.total, b.refused = ws, 0, 0
	}
	retry := false
	if e.QueueID != "" && (e.Status != parsers.StatusSent || b.deferredSeen.len() > 0) {
		k := deliveryKey{e.Host, e.QueueID, e.To}
		_, retry = b.deferredSeen.peek(k)
		switch {
		case e.Status == parsers.StatusDeferred && !retry:
			b.deferredSeen.put(deliveryKey{strings.Clone(e.Host), strings.Clone(e.QueueID), strings.Clone(e.To)}, struct{}{})
		case e.Status != parsers.StatusDeferred && retry:
			b.deferredSeen.remove(k) // delivered or returned at last
		}
	}
	if !retry {
		b.total++
	}
	if e.Status != parsers.StatusDeferred && e.Status != parsers.StatusBounced && e.Status != parsers.StatusExpired {
		return
	}
	list := matchBlocklist(e.Reply, &b.lower)
	if list == nil {
		return
	}
	if !retry {
		b.refused++
	}
	// Kept in the rule's sets and the finding: a copy, not a view of the
	// input block.
	receiver := strings.Clone(Domain(e.To))
	if receiver != "" {
		b.receivers.put(receiver, e.Time)
	}
	receivers := 0
	b.receivers.each(func(_ string, t time.Time) {
		if e.Time.Sub(t) < b.cfg.Window {
			receivers++
		}
	})
	sev := SeverityWarning
	if receivers >= b.cfg.Receivers || (b.refused >= b.cfg.MinRefused && float64(b.refused) >= b.cfg.Share*float64(b.total)) {
		sev = SeverityCritical
	}
	f := d.finding(RuleBlocklisted, list.id, e, sev)
	set := b.perList[list.id]
	if set == nil || f.Count == 0 {
		set = newBoundedSet(64)
		b.perList[list.id] = set
	}
	if receiver != "" && !set.has(receiver) {
		set.add(receiver)
		f.distinct = set.l.len()
	}
	if !retry || f.Count == 0 {
		f.Count++
	}
	if f.detail == "" || f.Count == 1 {
		reply := e.Reply
		if len(reply) > 300 {
			reply = reply[:300] + "…"
		}
		f.detail = strings.Clone(reply)
		f.subject = receiver
		f.program = strings.Clone(e.Program)
	}
	f.addEvidence(e.Line)
	d.notify(f)
}

// describeBlocklist writes a blocklisted finding's summary and next step.
func (d *Detector) describeBlocklist(f *Finding) {
	list := &blocklists[len(blocklists)-1]
	for i := range blocklists {
		if blocklists[i].id == f.Key {
			list = &blocklists[i]
		}
	}
	f.Summary = fmt.Sprintf("receivers refuse or defer mail from %s citing %s: %d deliveries refused, by %d receiving domains (first %s, which said %q)", serverName(f.Host), list.name, f.Count, f.distinct, f.subject, f.detail)
	if f.Severity == SeverityCritical {
		f.Summary += "; several receivers or a large share of outbound mail"
	}
	step := "Find and stop what got the server listed first (a compromised account, an open relay, a spam run in the queue), purge it, then ask for delisting"
	if a := d.advice(f.program); a != nil && a.Blocklisted != "" {
		step = strings.TrimSuffix(a.Blocklisted, ".")
	}
	f.NextStep = step + ": " + list.delist + "."
}
