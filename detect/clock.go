package detect

import "time"

// Defaults of the event clock.
const (
	// DefaultClockWindow is how far ahead of the event clock a line may be
	// dated and still move it at once.
	DefaultClockWindow = 10 * time.Minute
	// DefaultClockConfirm is how many consecutive lines dated beyond the
	// window, and close to each other, it takes to step the clock to them.
	DefaultClockConfirm = 8
)

// eventClock is the detector's event time: the latest time of the stream,
// robust against a line with a wrong clock. A line dated within the window
// ahead moves it at once. A line dated further ahead (an NTP step, one host
// with a wrong clock in a central syslog) is judged without moving it,
// unless enough consecutive lines agree with it: then the stream really
// moved on (the logs resumed after a quiet night or downtime) and the clock
// steps. When the stream carries several hosts (a central syslog), the
// agreeing lines must come from at least two of them, so that one host
// with a wrong clock never steps it. A line dated earlier than the clock
// never moves it.
type eventClock struct {
	window  time.Duration
	confirm int

	now time.Time
	// The streak of consecutive lines beyond the window.
	streak      int
	streakStart time.Time
	streakMax   time.Time
	streakHost  string
	streakHosts int // distinct hosts in the streak, up to 2
	// The host of the last line within the window, and when a line within
	// the window last came from another host than the line before it.
	lastHost   string
	hostChange time.Time

	aheadLines, lateLines, steps uint64

	// isAhead: the current event is dated beyond the window.
	isAhead bool
	// touched are the findings that got evidence from the lines of the
	// current streak beyond the window.
	touched []*Finding
}

// observe takes the time of one event. It reports whether the clock moved
// (stepped: by more than the window, confirmed) and whether the event is
// dated beyond the window and did not move the clock (ahead).
func (c *eventClock) observe(t time.Time, host string) (moved, stepped, ahead bool) {
	switch {
	case c.now.IsZero():
		c.now = t
		c.seen(host, t)
		return true, false, false
	case t.After(c.now.Add(c.window)):
		if c.streak == 0 || t.Sub(c.streakStart).Abs() > c.window {
			c.streak, c.streakStart, c.streakMax, c.streakHost, c.streakHosts = 0, t, t, host, 1
		}
		c.streak++
		if t.After(c.streakMax) {
			c.streakMax = t
		}
		if host != c.streakHost {
			c.streakHosts = 2
		}
		if c.streak < c.confirm || c.streakHosts < 2 && c.multiHost() {
			c.aheadLines++
			return false, false, true
		}
		c.now = c.streakMax
		c.streak = 0
		c.steps++
		c.lastHost, c.hostChange = host, time.Time{}
		return true, true, false
	}
	c.streak = 0
	if t.Before(c.now.Add(-c.window)) {
		c.lateLines++
	} else {
		c.seen(host, t)
	}
	if t.After(c.now) {
		c.now = t
		return true, false, false
	}
	return false, false, false
}

// seen notes the host of a line within the window. host must not point
// into an input buffer (the detector interns it).
func (c *eventClock) seen(host string, t time.Time) {
	if host != c.lastHost {
		if c.lastHost != "" {
			c.hostChange = t
		}
		c.lastHost = host
	}
}

// multiHost tells whether lines of more than one host arrived within the
// window of the clock.
func (c *eventClock) multiHost() bool {
	return !c.hostChange.IsZero() && !c.hostChange.Before(c.now.Add(-c.window))
}

// maxStepTouched bounds the findings remembered while a clock step is not
// yet confirmed.
const maxStepTouched = 64

// observeTime runs the event clock on one event's time and, when it moved,
// expires messages and ends quiet episodes.
func (d *Detector) observeTime(t time.Time, host string) {
	if host != d.clock.lastHost && host != d.clock.streakHost {
		host = d.names.get(host) // the clock keeps it
	}
	moved, stepped, ahead := d.clock.observe(t, host)
	d.clock.isAhead = ahead
	if !ahead && !stepped {
		d.clock.touched = d.clock.touched[:0]
	}
	if !moved {
		return
	}
	d.now = d.clock.now
	d.expire()
	d.expireHeld()
	var touched []*Finding
	if stepped {
		// Findings that got evidence from the lines that confirmed the
		// step were active at the new time, not at the old one.
		touched = d.clock.touched
	}
	d.findings.advance(d.now, touched)
	d.clock.touched = d.clock.touched[:0]
}

// judgedTime is the time an event counts at in findings: its own, unless it
// is dated beyond the clock's window (then the clock's).
func (d *Detector) judgedTime(t time.Time) time.Time {
	if d.clock.isAhead {
		return d.now
	}
	return t
}

// Advance moves the episode clock to t without an event, so that episodes
// end while the logs are quiet (a sidecar extrapolates event time by the
// wall clock since the last line). It never moves the clock back, and does
// not expire messages.
func (d *Detector) Advance(t time.Time) {
	d.findings.advance(t, nil)
}
