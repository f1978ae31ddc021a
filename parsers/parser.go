package parsers

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Result says what a parser made of one line.
type Result uint8

// Line results. Every line gets exactly one; the pipeline counts them.
const (
	// Parsed: the line produced one or more events.
	Parsed Result = iota
	// Irrelevant: the line is well formed but carries nothing relaywatch uses
	// (TLS chatter, statistics, another program's line).
	Irrelevant
	// Malformed: the line does not have the shape of the format (no header,
	// bad timestamp, truncated fields).
	Malformed
	// Unrecognized: the header is fine but the message is one the parser does
	// not know.
	Unrecognized
	// TooLong: the line exceeded the reader's buffer and was skipped
	// (counted by the reader, never by a parser).
	TooLong
	numResults
)

var resultNames = [...]string{
	Parsed:       "parsed",
	Irrelevant:   "irrelevant",
	Malformed:    "malformed",
	Unrecognized: "unrecognized",
	TooLong:      "too_long",
}

// String returns the result's stable name, used in reports and metrics.
func (r Result) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return "unknown"
}

// Results lists every result in order, for reports and metrics.
func Results() []Result {
	out := make([]Result, numResults)
	for i := range out {
		out[i] = Result(i)
	}
	return out
}

// LineCounts counts lines by Result.
type LineCounts [numResults]uint64

// Add counts one line.
func (c *LineCounts) Add(r Result) { c[r]++ }

// Merge adds other's counts to c.
func (c *LineCounts) Merge(other *LineCounts) {
	for i := range c {
		c[i] += other[i]
	}
}

// Total is the number of lines counted.
func (c *LineCounts) Total() uint64 {
	var t uint64
	for _, n := range c {
		t += n
	}
	return t
}

// Skipped is the number of lines that did not parse and were not merely
// irrelevant.
func (c *LineCounts) Skipped() uint64 {
	return c[Malformed] + c[Unrecognized] + c[TooLong]
}

// Parser turns the lines of one input stream into events. A parser is created
// per stream and used from one goroutine. It never panics: a line it cannot
// use is reported through the Result.
type Parser interface {
	// Parse appends the events of one line (without its line ending) to dst
	// and returns the extended slice and what the line was. The events' string
	// fields may share memory with line.
	Parse(line string, dst []Event) ([]Event, Result)
}

// Concurrent is implemented by parsers that keep no state between lines, so
// the pipeline may parse blocks of one stream in parallel, each with its own
// parser from the same Format. A parser without it is run sequentially.
type Concurrent interface {
	// ParsesIndependently reports whether lines can be parsed in any order.
	ParsesIndependently() bool
}

// Options configure a parser for one stream.
type Options struct {
	// Year is the year of the stream's first line, for timestamps without a
	// year. Zero means: infer it from ModTime.
	Year int
	// ModTime is the stream's modification time (now for stdin).
	ModTime time.Time
	// Location is the time zone of timestamps without an offset.
	Location *time.Location
}

// Format is one log format that relaywatch can read.
type Format struct {
	// Name is the --format value, e.g. "postfix".
	Name string
	// Description is one line for `relaywatch help formats`.
	Description string
	// New creates a parser for one stream.
	New func(Options) Parser
	// Sniff scores the first lines of a stream: the number of lines that look
	// like this format. Zero means "not this format".
	Sniff func(lines []string) int
	// OwnsProgram reports whether the format's events carry this Program
	// (optional).
	OwnsProgram func(program string) bool
	// Advice is the next step for relaying in this MTA's terms (optional).
	Advice *Advice
}

// Registry is an explicit list of formats, built by the caller.
type Registry struct {
	formats []Format
}

// NewRegistry builds a registry. A duplicate or empty name is a programming
// error and panics.
func NewRegistry(formats ...Format) *Registry {
	seen := map[string]bool{}
	for _, f := range formats {
		if f.Name == "" || f.New == nil || f.Sniff == nil {
			panic(fmt.Sprintf("parsers: incomplete format %q", f.Name))
		}
		if seen[f.Name] {
			panic(fmt.Sprintf("parsers: duplicate format %q", f.Name))
		}
		seen[f.Name] = true
	}
	return &Registry{formats: append([]Format(nil), formats...)}
}

// Formats returns the registered formats in registration order.
func (r *Registry) Formats() []Format { return append([]Format(nil), r.formats...) }

// Names returns the registered format names, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.formats))
	for _, f := range r.formats {
		names = append(names, f.Name)
	}
	sort.Strings(names)
	return names
}

// ErrUnknownFormat is returned when a format name is not registered or a
// stream looks like no registered format.
var ErrUnknownFormat = errors.New("unknown log format")

// Lookup finds a format by name.
func (r *Registry) Lookup(name string) (Format, error) {
	for _, f := range r.formats {
		if f.Name == name {
			return f, nil
		}
	}
	return Format{}, fmt.Errorf("%w %q: known formats are %s", ErrUnknownFormat, name, strings.Join(r.Names(), ", "))
}

// Sniff picks the format whose Sniff gives the first lines the highest score.
func (r *Registry) Sniff(lines []string) (Format, error) {
	best, bestScore := Format{}, 0
	for _, f := range r.formats {
		if s := f.Sniff(lines); s > bestScore {
			best, bestScore = f, s
		}
	}
	if bestScore == 0 {
		return Format{}, fmt.Errorf("%w: the first %d lines look like none of %s; force one with --format",
			ErrUnknownFormat, len(lines), strings.Join(r.Names(), ", "))
	}
	return best, nil
}
