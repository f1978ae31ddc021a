// Package syslog parses the header of a syslog-carried log line: RFC 3164
// ("Nov 24 05:58:48 host prog[pid]: msg", also what Postfix's own
// maillog_file writes), RFC 5424 ("<22>1 2026-11-24T05:58:48.1Z host prog pid - - msg")
// and ISO 8601 / RFC 3339 stamps with fractions and offsets (rsyslog's precise
// template, journalctl -o short-iso and short-iso-precise).
//
// Timestamps of RFC 3164 lines carry no year: the parser stamps them with a
// provisional year and YearTracker, run over the lines in order, fixes them.
package syslog

import (
	"strings"
	"time"
)

// Header is a parsed syslog header.
type Header struct {
	Time time.Time
	// YearGuessed is set for RFC 3164 stamps: Time's year is provisional.
	YearGuessed bool
	Host        string
	// Program is the tag without the pid, e.g. "postfix/smtpd".
	Program string
	PID     string
	// Message is everything after "prog[pid]: ".
	Message string
}

// Parser parses headers. It caches the last timestamp, so it is not safe for
// concurrent use; make one per goroutine.
type Parser struct {
	// Year is the provisional year of RFC 3164 stamps.
	Year int
	// Location is the zone of RFC 3164 stamps.
	Location *time.Location

	lastStamp string
	lastTime  time.Time
	lastISO   string
	lastISOT  time.Time
}

// NewParser returns a parser whose RFC 3164 stamps get the given year and zone.
func NewParser(year int, loc *time.Location) *Parser {
	if loc == nil {
		loc = time.Local
	}
	return &Parser{Year: year, Location: loc}
}

// Parse parses the header of line into h. It reports false when the line has
// no header it knows.
func (p *Parser) Parse(line string, h *Header) bool {
	if len(line) < 16 {
		return false
	}
	var rest string
	switch c := line[0]; {
	case c == '<':
		return p.parse5424(line, h)
	case c >= '0' && c <= '9':
		t, n, ok := p.parseISO(line)
		if !ok {
			return false
		}
		h.Time, h.YearGuessed = t, false
		rest = line[n:]
	default:
		t, n, ok := p.parse3164Stamp(line)
		if !ok {
			return false
		}
		h.Time, h.YearGuessed = t, true
		rest = line[n:]
	}
	if len(rest) == 0 || rest[0] != ' ' {
		return false
	}
	rest = rest[1:]
	sp := strings.IndexByte(rest, ' ')
	if sp <= 0 {
		return false
	}
	h.Host = rest[:sp]
	return splitTag(rest[sp+1:], h)
}

// splitTag splits "prog[pid]: message" (or "prog: message").
func splitTag(s string, h *Header) bool {
	colon := strings.Index(s, ": ")
	if colon <= 0 {
		// "prog[pid]:" with an empty message.
		if strings.HasSuffix(s, ":") && len(s) > 1 {
			colon = len(s) - 1
		} else {
			return false
		}
	}
	tag := s[:colon]
	if strings.IndexByte(tag, ' ') >= 0 {
		return false
	}
	if colon+2 <= len(s) {
		h.Message = s[colon+2:]
	} else {
		h.Message = ""
	}
	h.PID = ""
	if tag[len(tag)-1] == ']' {
		if lb := strings.LastIndexByte(tag, '['); lb > 0 {
			h.PID = tag[lb+1 : len(tag)-1]
			tag = tag[:lb]
		}
	}
	h.Program = tag
	// Solaris adds "[ID 197553 mail.info] " before the message.
	if strings.HasPrefix(h.Message, "[ID ") {
		if rb := strings.IndexByte(h.Message, ']'); rb > 0 && rb+2 <= len(h.Message) {
			h.Message = h.Message[rb+2:]
		}
	}
	return true
}

// parse3164Stamp parses "Mmm dd hh:mm:ss" (day space- or zero-padded, or a
// single unpadded digit) at the start of line and returns the time and the
// stamp's length. The line is at least 16 bytes long.
func (p *Parser) parse3164Stamp(line string) (time.Time, int, bool) {
	stamp := line[:15]
	if line[4] >= '0' && line[4] <= '9' && line[5] == ' ' {
		// "May 8 08:26:55": rebuild the padded form.
		stamp = line[:4] + " " + line[4:14]
		if stamp == p.lastStamp {
			return p.lastTime, 14, true
		}
		t, ok := p.stamp3164(stamp)
		return t, 14, ok
	}
	if stamp == p.lastStamp {
		return p.lastTime, 15, true
	}
	t, ok := p.stamp3164(stamp)
	return t, 15, ok
}

func (p *Parser) stamp3164(stamp string) (time.Time, bool) {
	m := month(stamp[:3])
	if m == 0 || stamp[3] != ' ' || stamp[9] != ':' || stamp[12] != ':' || stamp[6] != ' ' {
		return time.Time{}, false
	}
	d1, d2 := stamp[4], stamp[5]
	if d1 == ' ' {
		d1 = '0'
	}
	day, ok1 := num2(d1, d2)
	hh, ok2 := num2(stamp[7], stamp[8])
	mm, ok3 := num2(stamp[10], stamp[11])
	ss, ok4 := num2(stamp[13], stamp[14])
	if !(ok1 && ok2 && ok3 && ok4) || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, false
	}
	t := time.Date(p.Year, m, day, hh, mm, ss, 0, p.Location)
	p.lastStamp, p.lastTime = strings.Clone(stamp), t
	return t, true
}

// parseISO parses "YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM|±HHMM)" at the start of
// s and returns the time and the number of bytes it took.
func (p *Parser) parseISO(s string) (time.Time, int, bool) {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':' {
		return time.Time{}, 0, false
	}
	// Fraction.
	i := 19
	nanos, scale := 0, 0
	if i < len(s) && (s[i] == '.' || s[i] == ',') {
		i++
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if i-start < 9 {
				nanos = nanos*10 + int(s[i]-'0')
				scale++
			}
			i++
		}
		if i == start {
			return time.Time{}, 0, false
		}
		for ; scale < 9; scale++ {
			nanos *= 10
		}
	}
	// Offset.
	offStart := i
	if i >= len(s) {
		return time.Time{}, 0, false
	}
	switch s[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if i+5 <= len(s) && s[i+3] == ':' && i+6 <= len(s) {
			i += 6
		} else if i+5 <= len(s) {
			i += 5
		} else {
			return time.Time{}, 0, false
		}
	default:
		return time.Time{}, 0, false
	}
	key := s[:19] + s[offStart:i]
	if len(key) == len(p.lastISO) && key[:19] == p.lastISO[:19] && key[19:] == p.lastISO[19:] {
		return p.lastISOT.Add(time.Duration(nanos)), i, true
	}
	year, ok := num4(s[0], s[1], s[2], s[3])
	mon, ok2 := num2(s[5], s[6])
	day, ok3 := num2(s[8], s[9])
	hh, ok4 := num2(s[11], s[12])
	mm, ok5 := num2(s[14], s[15])
	ss, ok6 := num2(s[17], s[18])
	if !(ok && ok2 && ok3 && ok4 && ok5 && ok6) || mon < 1 || mon > 12 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, 0, false
	}
	loc := time.UTC
	if off := s[offStart:i]; off[0] == '+' || off[0] == '-' {
		oh, okh := num2(off[1], off[2])
		var om int
		var okm bool
		if len(off) == 6 {
			om, okm = num2(off[4], off[5])
		} else {
			om, okm = num2(off[3], off[4])
		}
		if !okh || !okm || oh > 23 || om > 59 {
			return time.Time{}, 0, false
		}
		secs := oh*3600 + om*60
		if off[0] == '-' {
			secs = -secs
		}
		if secs != 0 {
			loc = fixedZone(secs)
		}
	}
	base := time.Date(year, time.Month(mon), day, hh, mm, ss, 0, loc)
	p.lastISO, p.lastISOT = strings.Clone(key), base
	return base.Add(time.Duration(nanos)), i, true
}

// parse5424 parses "<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG".
func (p *Parser) parse5424(line string, h *Header) bool {
	gt := strings.IndexByte(line, '>')
	if gt < 2 || gt > 4 || len(line) < gt+3 || line[gt+1] != '1' || line[gt+2] != ' ' {
		return false
	}
	rest := line[gt+3:]
	var ok bool
	var n int
	if h.Time, n, ok = p.parseISO(rest); !ok {
		return false
	}
	h.YearGuessed = false
	rest = rest[n:]
	fields := [4]string{}
	for i := range fields {
		if len(rest) == 0 || rest[0] != ' ' {
			return false
		}
		rest = rest[1:]
		sp := strings.IndexByte(rest, ' ')
		if sp < 0 {
			return false
		}
		fields[i], rest = rest[:sp], rest[sp:]
	}
	if len(rest) == 0 {
		return false
	}
	rest = rest[1:]
	// Structured data: "-" or one or more [id k="v"...] elements.
	if strings.HasPrefix(rest, "-") {
		rest = rest[1:]
	} else {
		for strings.HasPrefix(rest, "[") {
			i := 1
			for i < len(rest) && rest[i] != ']' {
				if rest[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(rest) {
				return false
			}
			rest = rest[i+1:]
		}
	}
	rest = strings.TrimPrefix(rest, " ")
	rest = strings.TrimPrefix(rest, "\xef\xbb\xbf")
	nilDash := func(s string) string {
		if s == "-" {
			return ""
		}
		return s
	}
	h.Host, h.Program, h.PID, h.Message = nilDash(fields[0]), nilDash(fields[1]), nilDash(fields[2]), rest
	return h.Program != ""
}

var zoneCache = map[int]*time.Location{}

// fixedZone returns a shared *time.Location for an offset. The cache is filled
// once at init with every quarter-hour offset and only read afterwards, so
// parsers in several goroutines may share it.
func fixedZone(secs int) *time.Location {
	if loc, ok := zoneCache[secs]; ok {
		return loc
	}
	return time.FixedZone("", secs)
}

func init() {
	for q := -12 * 4; q <= 14*4; q++ {
		secs := q * 15 * 60
		zoneCache[secs] = time.FixedZone("", secs)
	}
}

func month(s string) time.Month {
	switch s {
	case "Jan":
		return time.January
	case "Feb":
		return time.February
	case "Mar":
		return time.March
	case "Apr":
		return time.April
	case "May":
		return time.May
	case "Jun":
		return time.June
	case "Jul":
		return time.July
	case "Aug":
		return time.August
	case "Sep":
		return time.September
	case "Oct":
		return time.October
	case "Nov":
		return time.November
	case "Dec":
		return time.December
	}
	return 0
}

func num2(a, b byte) (int, bool) {
	if a < '0' || a > '9' || b < '0' || b > '9' {
		return 0, false
	}
	return int(a-'0')*10 + int(b-'0'), true
}

func num4(a, b, c, d byte) (int, bool) {
	x, ok1 := num2(a, b)
	y, ok2 := num2(c, d)
	return x*100 + y, ok1 && ok2
}
