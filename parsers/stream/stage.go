package stream

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/syslog"
)

// Stage is the per-stream stage that analyze and watch share: it finds the
// format (sniffing until a line matches one, unless a format is given),
// runs the format's parser and fixes the year of timestamps that carry
// none. analyze drives it block by block (Run), watch line by line; both
// get the same events from the same lines.
type Stage struct {
	registry *parsers.Registry
	format   parsers.Format
	known    bool
	parser   parsers.Parser
	opts     parsers.Options
	years    *syslog.YearTracker
	pending  []string // lines seen before the format was known (copies)
	counts   parsers.LineCounts
	one      [1]string
}

// NewStage returns a stage for one input stream. With format nil the
// format is sniffed from the stream's lines: the first line that looks like
// one of the registry's formats decides, and the lines before it (at most
// SniffLines of them; older ones are counted as unrecognized) are parsed
// with that format too.
func NewStage(registry *parsers.Registry, format *parsers.Format, opts parsers.Options) *Stage {
	s := &Stage{registry: registry, opts: opts, years: syslog.NewYearTracker(opts.Year != 0, opts.ModTime)}
	if format != nil {
		s.setFormat(*format)
	}
	return s
}

func (s *Stage) setFormat(f parsers.Format) {
	s.format, s.known = f, true
	s.parser = f.New(s.opts)
}

// Format returns the stream's format once it is known.
func (s *Stage) Format() (parsers.Format, bool) { return s.format, s.known }

// Parser returns the stream's parser once the format is known (nil before).
func (s *Stage) Parser() parsers.Parser { return s.parser }

// Counts are the stream's lines by result so far.
func (s *Stage) Counts() *parsers.LineCounts { return &s.counts }

// CountTooLong counts lines the reader skipped as too long.
func (s *Stage) CountTooLong(n uint64) { s.counts[parsers.TooLong] += n }

// Parse hands one line through the stage and appends its events to out.
// The line may be reused by the caller once Parse returns unless the
// parser keeps strings of it (see parsers.Event); the stage copies the
// lines it holds while sniffing.
func (s *Stage) Parse(line string, out []parsers.Event) []parsers.Event {
	if !s.known {
		s.one[0] = line
		f, err := s.registry.Sniff(s.one[:])
		s.one[0] = ""
		if err != nil {
			if len(s.pending) == SniffLines {
				s.counts[parsers.Unrecognized]++
				copy(s.pending, s.pending[1:])
				s.pending = s.pending[:SniffLines-1]
			}
			s.pending = append(s.pending, strings.Clone(line))
			return out
		}
		s.setFormat(f)
		pending := s.pending
		s.pending = nil
		for _, p := range pending {
			out = s.parse(p, out)
		}
	}
	return s.parse(line, out)
}

// parse runs the parser on one line.
func (s *Stage) parse(line string, out []parsers.Event) []parsers.Event {
	n := len(out)
	out, r := s.parser.Parse(line, out)
	s.counts.Add(r)
	s.FixYears(out[n:])
	return out
}

// End is called when the stream has ended: lines still waiting for the
// format to be known are counted as unrecognized. It returns
// parsers.ErrUnknownFormat (wrapped, naming the formats) when the stream
// had lines and none looked like a known format.
func (s *Stage) End() error {
	if s.known {
		return nil
	}
	n := len(s.pending)
	s.counts[parsers.Unrecognized] += uint64(n)
	s.pending = nil
	if s.counts.Total() == 0 {
		return nil
	}
	return fmt.Errorf("%w: none of its %d lines looks like %s; force one with --format",
		parsers.ErrUnknownFormat, s.counts.Total(), strings.Join(s.registry.Names(), ", "))
}

// FixYears fixes the year of events whose timestamps carry none, in stream
// order (a December→January rollover moves to the next year).
func (s *Stage) FixYears(evs []parsers.Event) {
	for i := range evs {
		if e := &evs[i]; e.YearGuessed {
			e.Time = s.years.Fix(e.Time)
		}
	}
}

// ctxReader stops reading once ctx is done, so that a stream that never
// ends (/dev/zero, an endless line) cannot keep a cancelled run going.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
