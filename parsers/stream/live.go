package stream

import (
	"sort"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/source"
)

// Live runs the per-stream stage over live inputs (followed files, stdin,
// journals): one Stage per input, fed batch by batch as the lines arrive.
// It counts lines per input and per format. It is not safe for concurrent
// use: the caller serialises Handle and the readers of its counts.
type Live struct {
	registry *parsers.Registry
	format   *parsers.Format
	options  func() parsers.Options
	inputs   map[string]*liveInput
	byFormat map[string]*FormatCounts
}

// FormatCounts are the lines and events counted under one format.
type FormatCounts struct {
	Lines parsers.LineCounts
	// Kinds counts events by kind (indexed by parsers.Kind).
	Kinds [64]uint64
}

type liveInput struct {
	stage    *Stage
	counted  parsers.LineCounts // the stage's counts already in byFormat
	lines    uint64
	since    time.Time
	lastLine time.Time
}

// InputStats describes one live input.
type InputStats struct {
	Name   string
	Format string // "" until known
	// Lines is the number of lines read from the input.
	Lines uint64
	// Since is when the input was first seen, LastLine when its last line
	// was read (zero before the first); both wall clock.
	Since, LastLine time.Time
}

// NewLive returns a Live whose inputs sniff their format from registry (or
// use format, if not nil); options gives each new input's parser options.
func NewLive(registry *parsers.Registry, format *parsers.Format, options func() parsers.Options) *Live {
	return &Live{registry: registry, format: format, options: options, inputs: map[string]*liveInput{}, byFormat: map[string]*FormatCounts{}}
}

// Add makes an input known before its first line, so that it is counted
// (and reported as quiet) from the start.
func (l *Live) Add(name string, now time.Time) { l.input(name, now) }

func (l *Live) input(name string, now time.Time) *liveInput {
	in := l.inputs[name]
	if in == nil {
		in = &liveInput{stage: NewStage(l.registry, l.format, l.options()), since: now}
		l.inputs[name] = in
	}
	return in
}

// Handle parses a batch's lines and appends their events to out, in input
// order. A Closed batch forgets its input. A line is counted once, under
// the format known when it was parsed or dropped ("unknown" while sniffing
// had not decided), so that no counter ever moves between formats.
func (l *Live) Handle(b *source.Batch, now time.Time, out []parsers.Event) []parsers.Event {
	if b.Closed {
		delete(l.inputs, b.Input)
		return out
	}
	in := l.input(b.Input, now)
	if len(b.Lines) > 0 {
		in.lastLine = now
		in.lines += uint64(len(b.Lines))
	}
	in.stage.CountTooLong(b.TooLong)
	start := len(out)
	for _, line := range b.Lines {
		out = in.stage.Parse(line, out)
	}
	format := "unknown"
	if f, ok := in.stage.Format(); ok {
		format = f.Name
	}
	fc := l.byFormat[format]
	if fc == nil {
		fc = &FormatCounts{}
		l.byFormat[format] = fc
	}
	counts := in.stage.Counts()
	for i := range counts {
		fc.Lines[i] += counts[i] - in.counted[i]
	}
	in.counted = *counts
	for i := start; i < len(out); i++ {
		if k := int(out[i].Kind); k < len(fc.Kinds) {
			fc.Kinds[k]++
		}
	}
	return out
}

// Formats returns a copy of the counts by format.
func (l *Live) Formats() map[string]FormatCounts {
	out := make(map[string]FormatCounts, len(l.byFormat))
	for f, c := range l.byFormat {
		out[f] = *c
	}
	return out
}

// Inputs describes the inputs, sorted by name.
func (l *Live) Inputs() []InputStats {
	out := make([]InputStats, 0, len(l.inputs))
	for name, in := range l.inputs {
		st := InputStats{Name: name, Lines: in.lines, Since: in.since, LastLine: in.lastLine}
		if f, ok := in.stage.Format(); ok {
			st.Format = f.Name
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
