package detect

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
)

// spikeFeeder sends outbound deliveries straight to a detector as events.
type spikeFeeder struct {
	t   *testing.T
	d   *Detector
	seq int
}

// window sends n single-recipient messages from client, spread evenly over
// the 10-minute window starting at start.
func (f *spikeFeeder) window(start time.Time, client, user string, n int) {
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * (10 * time.Minute) / time.Duration(n))
		f.seq++
		qid := fmt.Sprintf("%010X", f.seq)
		events := []parsers.Event{
			{Time: at, Host: "mx1", Program: "postfix/smtpd", Kind: parsers.KindAccept, QueueID: qid, ClientIP: client, ClientName: "unknown", AuthUser: user},
			{Time: at, Host: "mx1", Program: "postfix/qmgr", Kind: parsers.KindQueued, QueueID: qid, From: "app@example.org", FromSet: true},
			{Time: at, Host: "mx1", Program: "postfix/smtp", Kind: parsers.KindDelivery, QueueID: qid, To: fmt.Sprintf("r%d@gmail.test", f.seq), Status: parsers.StatusSent, Relay: "mx[198.51.100.1]:25"},
			{Time: at, Host: "mx1", Program: "postfix/qmgr", Kind: parsers.KindRemoved, QueueID: qid},
		}
		for i := range events {
			f.d.Handle(&events[i])
		}
	}
}

func spikeFindings(d *Detector) []Finding { return ruleFindings(d, RuleOutboundSpike) }

func TestSpikeQuietOnSteadyTraffic(t *testing.T) {
	d := newDetector(t, Config{})
	f := &spikeFeeder{t: t, d: d}
	for w := 0; w < 36; w++ {
		f.window(t0.Add(time.Duration(w)*10*time.Minute), "10.0.0.1", "", 100)
	}
	if fs := spikeFindings(d); len(fs) != 0 {
		t.Errorf("steady traffic raised %s", keys(fs))
	}
}

func TestSpikeQuietOnDailySwing(t *testing.T) {
	d := newDetector(t, Config{})
	f := &spikeFeeder{t: t, d: d}
	// Three days: 10 per window at 04:00, 150 per window at 16:00.
	for w := 0; w < 3*144; w++ {
		hour := float64(w%144) / 6
		n := int(80 - 70*math.Cos((hour-4)/24*2*math.Pi))
		f.window(t0.Add(time.Duration(w)*10*time.Minute), "10.0.0.1", "", n)
	}
	if fs := spikeFindings(d); len(fs) != 0 {
		t.Errorf("an ordinary daily swing raised %s", keys(fs))
	}
}

func TestSpikeFlagsTenfoldJumpWithinOneWindow(t *testing.T) {
	d := newDetector(t, Config{})
	f := &spikeFeeder{t: t, d: d}
	for w := 0; w < 12; w++ {
		f.window(t0.Add(time.Duration(w)*10*time.Minute), "10.0.0.1", "", 30)
	}
	jump := t0.Add(12 * 10 * time.Minute)
	f.window(jump, "10.0.0.1", "", 300)
	fs := spikeFindings(d)
	got := map[string]Finding{}
	for _, x := range fs {
		got[x.Key] = x
	}
	for _, key := range []string{"all", "client:10.0.0.1", "sender-domain:example.org"} {
		x, ok := got[key]
		if !ok {
			t.Errorf("no spike for %s (findings %s)", key, keys(fs))
			continue
		}
		if !x.WindowStart.Equal(jump) || x.Count != 300 || x.Severity != SeverityWarning {
			t.Errorf("%s: window %v count %d severity %v", key, x.WindowStart, x.Count, x.Severity)
		}
		if x.FirstSeen.Sub(jump) >= 10*time.Minute {
			t.Errorf("%s flagged at %v, after its window", key, x.FirstSeen)
		}
		if x.Baseline < 25 || x.Baseline > 35 {
			t.Errorf("%s baseline %.1f, want about 30", key, x.Baseline)
		}
	}
}

func TestSpikeNeedsTheFloor(t *testing.T) {
	d := newDetector(t, Config{Spike: SpikeConfig{Min: 50}})
	f := &spikeFeeder{t: t, d: d}
	for w := 0; w < 12; w++ {
		f.window(t0.Add(time.Duration(w)*10*time.Minute), "10.0.0.1", "", 2)
	}
	f.window(t0.Add(12*10*time.Minute), "10.0.0.1", "", 40) // 20x, but under the floor
	if fs := spikeFindings(d); len(fs) != 0 {
		t.Errorf("below the floor: %s", keys(fs))
	}
}

func TestSpikeWarmupAndStrangers(t *testing.T) {
	d := newDetector(t, Config{})
	f := &spikeFeeder{t: t, d: d}
	// A busy trusted host present from the start of the stream is learned,
	// not flagged, in its first windows.
	f.window(t0, "10.0.0.1", "", 400)
	f.window(t0.Add(10*time.Minute), "10.0.0.1", "", 400)
	if fs := spikeFindings(d); len(fs) != 0 {
		t.Fatalf("warm-up raised %s", keys(fs))
	}
	// A stranger that relays is judged at once, against the floor.
	f.window(t0.Add(20*time.Minute), "203.0.113.66", "", 60)
	fs := spikeFindings(d)
	if len(fs) != 1 || fs[0].Key != "client:203.0.113.66" {
		t.Errorf("stranger: %s", keys(fs))
	}
	// A user first seen after the warm-up is judged too.
	f.window(t0.Add(40*time.Minute), "198.51.100.7", "mallory", 80)
	found := false
	for _, x := range spikeFindings(d) {
		found = found || x.Key == "user:mallory"
	}
	if !found {
		t.Errorf("no spike for a new user sending 80 in a window: %s", keys(spikeFindings(d)))
	}
}

func TestSpikeConfigValidation(t *testing.T) {
	for _, c := range []SpikeConfig{{Window: time.Millisecond}, {Factor: 0.5}, {Min: -1}, {Alpha: 2}} {
		if _, err := New(Config{Spike: c}); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestSpikeKeysAreBounded(t *testing.T) {
	d := newDetector(t, Config{Spike: SpikeConfig{MaxKeys: 50}})
	f := &spikeFeeder{t: t, d: d}
	for i := 0; i < 500; i++ {
		f.window(t0, fmt.Sprintf("198.18.%d.%d", i/256, i%256), "", 1)
	}
	if n := d.spike.keys.len(); n > 50 {
		t.Errorf("%d spike keys, cap 50", n)
	}
	if d.Stats().SpikeKeysEvicted == 0 {
		t.Error("no evictions counted")
	}
}
