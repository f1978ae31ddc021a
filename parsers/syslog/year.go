package syslog

import "time"

// YearTracker fixes the provisional year of RFC 3164 timestamps, which carry
// none. Feed it the stream's timestamps in order.
//
// Without an explicit year, the provisional year is the year of the stream's
// modification time, and a first line whose month lies after that month is
// taken to be from the year before (a log written Dec 20 .. Jan 3 and last
// modified in January starts in December of the previous year). Within the
// stream, a month that falls by more than six (December → January) starts a
// new year, and one that rises by more than six (January → December, lines
// slightly out of order around New Year) goes back one.
type YearTracker struct {
	explicit  bool
	modMonth  time.Month
	started   bool
	lastMonth time.Month
	offset    int
}

// NewYearTracker returns a tracker. explicitYear tells whether the provisional
// year came from the user (--year), in which case it is the first line's year;
// otherwise it came from modTime.
func NewYearTracker(explicitYear bool, modTime time.Time) *YearTracker {
	return &YearTracker{explicit: explicitYear, modMonth: modTime.Month()}
}

// Fix returns t with its year corrected.
func (y *YearTracker) Fix(t time.Time) time.Time {
	m := t.Month()
	if !y.started {
		y.started = true
		if !y.explicit && m > y.modMonth {
			y.offset = -1
		}
	} else {
		switch d := int(m) - int(y.lastMonth); {
		case d < -6:
			y.offset++
		case d > 6:
			y.offset--
		}
	}
	y.lastMonth = m
	if y.offset == 0 {
		return t
	}
	return t.AddDate(y.offset, 0, 0)
}
