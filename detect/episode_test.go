package detect

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// told records what OnFinding heard, as "rule key count episode [ended]".
type told struct{ got []Finding }

func (t *told) on(f Finding) { t.got = append(t.got, f) }

func (t *told) of(rule, key string) string {
	var out []string
	for _, f := range t.got {
		if f.Rule != rule || f.Key != key {
			continue
		}
		s := fmt.Sprintf("%d#%d", f.Count, f.Episode+1)
		if !f.EndedAt.IsZero() {
			s += " ended " + f.EndedAt.Format("Jan 2 15:04")
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

func relayed(at time.Time, n int, client string) []string {
	var lines []string
	for i := 0; i < n; i++ {
		lines = append(lines, msg(at.Add(time.Duration(i)*time.Second), fmt.Sprintf("R%s%04dX", strings.ReplaceAll(client, ".", ""), i), client, "", "spam@spam.example", "v@victim.example")...)
	}
	return lines
}

func TestReturningAbuserStartsANewEpisode(t *testing.T) {
	var tl told
	d := newDetector(t, Config{OnFinding: tl.on})
	// Monday: 1,030 messages; Wednesday, after the day's first mail, back.
	feed(t, d, relayed(t0, 1030, "203.0.113.66")...)
	feed(t, d, msg(t0.Add(48*time.Hour), "LOCAL1", "10.0.0.5", "", "a@example.org", "b@example.org", "c@example.org")...)
	feed(t, d, msg(t0.Add(48*time.Hour), "LOCAL2", "10.0.0.5", "", "a@example.org", "b@example.org", "c@example.org")...)
	feed(t, d, relayed(t0.Add(48*time.Hour+time.Minute), 3, "203.0.113.66")...)
	// Wednesday's first message is its own episode, told at once; Monday's
	// ended 30 minutes after its last message.
	got := tl.of(RuleForeignToForeign, "203.0.113.66")
	want := "1#1, 2#1, 4#1, 8#1, 16#1, 32#1, 64#1, 128#1, 256#1, 512#1, 1024#1, 1030#1 ended Nov 24 10:47, 1#2, 2#2"
	if got != want {
		t.Errorf("told:\n got  %s\n want %s", got, want)
	}
	for _, f := range d.Findings() {
		if f.Rule == RuleForeignToForeign && (f.Count != 3 || f.TotalCount != 1030 || f.Episode != 1) {
			t.Errorf("finding: count %d total %d episode %d", f.Count, f.TotalCount, f.Episode)
		}
	}
}

func TestFullStoreEvictsTheStalestAndTakesTheNew(t *testing.T) {
	var tl told
	d := newDetector(t, Config{OnFinding: tl.on})
	// 6,000 one-message abusers: 12,000 findings (two rules each) for
	// 10,000 places.
	for i := 0; i < 6000; i++ {
		client := fmt.Sprintf("198.18.%d.%d", i/250, i%250+1)
		feed(t, d, msg(t0.Add(time.Duration(i)*100*time.Millisecond), fmt.Sprintf("B%05dX", i), client, "", "s@spam.example", "v@victim.example")...)
	}
	feed(t, d, relayed(t0.Add(20*time.Minute), 1, "203.0.113.99")...)
	if got := tl.of(RuleForeignToForeign, "203.0.113.99"); got != "1#1" {
		t.Errorf("the new abuser was told as %q", got)
	}
	st := d.Stats()
	if st.FindingsEvicted != 2002 || d.findings.len() != 10000 {
		t.Errorf("evicted %d, kept %d", st.FindingsEvicted, d.findings.len())
	}
	// The stalest went: the first abusers, whose episodes ended early.
	if got := tl.of(RuleForeignToForeign, "198.18.0.1"); !strings.Contains(got, "ended") {
		t.Errorf("the stalest was not ended when evicted: %q", got)
	}
	if got := tl.of(RuleForeignToForeign, "198.18.23.250"); strings.Contains(got, "ended") {
		t.Errorf("a recent abuser was evicted: %q", got)
	}
}

func TestOneLineADayAheadDoesNotMoveEventTime(t *testing.T) {
	var tl told
	d := newDetector(t, Config{OnFinding: tl.on, MessageTTL: time.Hour})
	feed(t, d, relayed(t0, 2, "203.0.113.66")...)
	// A message in flight, one line with a clock a day ahead, then the
	// message goes on and is relayed.
	ts := t0.Add(time.Minute).Format(time.Stamp)
	ahead := t0.Add(25 * time.Hour).Format(time.Stamp)
	feed(t, d,
		ts+" mx1 postfix/smtpd[10]: INFLIGHT1: client=unknown[203.0.113.77]",
		ts+" mx1 postfix/qmgr[12]: INFLIGHT1: from=<a@spam.example>, size=1, nrcpt=1 (queue active)",
		ahead+" mx9 postfix/smtpd[10]: connect from unknown[192.0.2.1]",
		ts+" mx1 postfix/smtp[14]: INFLIGHT1: to=<v@victim.example>, relay=mx[198.51.100.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
	)
	feed(t, d, relayed(t0.Add(2*time.Minute), 1, "203.0.113.66")...)
	if got := tl.of(RuleForeignToForeign, "203.0.113.66"); got != "1#1, 2#1" {
		t.Errorf("the open alert was told %q", got)
	}
	if got := tl.of(RuleForeignToForeign, "203.0.113.77"); got != "1#1" {
		t.Errorf("the in-flight relay was told %q", got)
	}
	if st := d.Stats(); st.LinesAhead != 1 || st.ClockSteps != 0 || !d.Now().Equal(t0.Add(2*time.Minute)) {
		t.Errorf("ahead %d, steps %d, now %v", st.LinesAhead, st.ClockSteps, d.Now())
	}
	// A line far ahead on its own, then the stream goes on for a while:
	// the episode ends when event time really passes the quiet period.
	for m := 10; m <= 40; m += 10 {
		feed(t, d, relayed(t0.Add(time.Duration(m)*time.Minute), 1, "203.0.113.1")...)
	}
	if got := tl.of(RuleForeignToForeign, "203.0.113.66"); got != "1#1, 2#1, 3#1 ended Nov 24 10:32" {
		t.Errorf("after the quiet period: %q", got)
	}
}

func TestClockStepConfirmedByTheStream(t *testing.T) {
	var tl told
	d := newDetector(t, Config{OnFinding: tl.on})
	feed(t, d, relayed(t0, 1, "203.0.113.66")...)
	// The logs resume the next morning: the first lines cannot move the
	// clock alone, but the stream agrees with them; the abuser who starts
	// the morning is told once, and its episode does not end at the step.
	feed(t, d, relayed(t0.Add(20*time.Hour), 10, "203.0.113.5")...)
	if st := d.Stats(); st.ClockSteps != 1 || !d.Now().After(t0.Add(20*time.Hour)) {
		t.Fatalf("steps %d, now %v", st.ClockSteps, d.Now())
	}
	if got := tl.of(RuleForeignToForeign, "203.0.113.5"); strings.Contains(got, "ended") || !strings.HasPrefix(got, "1#1") {
		t.Errorf("morning abuser: %q", got)
	}
	if got := tl.of(RuleForeignToForeign, "203.0.113.66"); !strings.Contains(got, "ended") {
		t.Errorf("yesterday's episode did not end: %q", got)
	}
}

func TestLateLinesDoNotFlap(t *testing.T) {
	var tl told
	d := newDetector(t, Config{OnFinding: tl.on})
	feed(t, d, relayed(t0.Add(3*time.Hour), 1, "203.0.113.66")...)
	// A relay logged two hours late (a host with a slow clock): judged,
	// told once, and not ended at the next line.
	feed(t, d, relayed(t0.Add(time.Hour), 1, "203.0.113.8")...)
	feed(t, d, relayed(t0.Add(3*time.Hour+time.Minute), 1, "203.0.113.66")...)
	if got := tl.of(RuleForeignToForeign, "203.0.113.8"); got != "1#1" {
		t.Errorf("late relay: %q", got)
	}
	if st := d.Stats(); st.LinesLate == 0 {
		t.Error("late lines not counted")
	}
}

func TestRestoredEpisodeCountsGoOn(t *testing.T) {
	var tl told
	d := newDetector(t, Config{OnFinding: tl.on})
	feed(t, d, relayed(t0, 256, "203.0.113.66")...)
	open := d.Findings()
	// A restart: a new detector, the open episodes restored.
	var tl2 told
	d2 := newDetector(t, Config{OnFinding: tl2.on})
	d2.Restore(open)
	feed(t, d2, relayed(t0.Add(10*time.Minute), 2, "203.0.113.66")...)
	if got := tl2.of(RuleForeignToForeign, "203.0.113.66"); got != "" {
		t.Errorf("restored episode told again: %q", got)
	}
	for _, f := range d2.Findings() {
		if f.Rule == RuleForeignToForeign && (f.Count != 258 || f.Episode != 0) {
			t.Errorf("after restart: count %d episode %d", f.Count, f.Episode)
		}
	}
	// And it ends on event time.
	for m := 20; m <= 50; m += 10 {
		feed(t, d2, relayed(t0.Add(time.Duration(m)*time.Minute), 1, "203.0.113.1")...)
	}
	if got := tl2.of(RuleForeignToForeign, "203.0.113.66"); got != "258#1 ended Nov 24 10:40" {
		t.Errorf("end after restart: %q", got)
	}
}

func TestOneHostWithAWrongClockNeverStepsACentralSyslog(t *testing.T) {
	var tl told
	d := newDetector(t, Config{OnFinding: tl.on})
	line := func(at time.Time, host string) string {
		return at.Format(time.Stamp) + " " + host + " postfix/smtpd[10]: connect from unknown[192.0.2.1]"
	}
	feed(t, d, relayed(t0, 1, "203.0.113.66")...)
	feed(t, d, line(t0.Add(time.Second), "mx2"), line(t0.Add(2*time.Second), "mx1"))
	// mx9's clock is a day ahead, and it logs a burst of its own.
	for i := 0; i < 3*DefaultClockConfirm; i++ {
		feed(t, d, line(t0.Add(24*time.Hour+time.Duration(i)*time.Second), "mx9"))
	}
	if st := d.Stats(); st.ClockSteps != 0 || !d.Now().Equal(t0.Add(2*time.Second)) {
		t.Fatalf("one host stepped event time: steps %d, now %v", st.ClockSteps, d.Now())
	}
	// The whole log moves on (a quiet night): two hosts agree, it steps.
	for i := 0; i < DefaultClockConfirm; i++ {
		host := []string{"mx1", "mx2"}[i%2]
		feed(t, d, line(t0.Add(10*time.Hour+time.Duration(i)*time.Second), host))
	}
	if st := d.Stats(); st.ClockSteps != 1 {
		t.Errorf("the log moved on and event time did not: steps %d, now %v", st.ClockSteps, d.Now())
	}
	if got := tl.of(RuleForeignToForeign, "203.0.113.66"); !strings.HasSuffix(got, "ended Nov 24 10:30") {
		t.Errorf("the episode: %q", got)
	}
}
