package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"

	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/all"
	"github.com/relaywatch/relaywatch/parsers/source"
	"github.com/relaywatch/relaywatch/parsers/stream"
)

// inputOptions are the flags that say how to read logs.
type inputOptions struct {
	Format   string
	Year     int
	Timezone string
	Workers  int
}

// AddFlags registers the input flags.
func (o *inputOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Format, "format", "", "log format of every input (default: sniffed from each file's first lines); one of: "+joinNames())
	fs.IntVar(&o.Year, "year", 0, "year of the first line, for timestamps without a year (default: from the file's modification time)")
	fs.StringVar(&o.Timezone, "timezone", "Local", "time zone of timestamps without an offset (IANA name, \"UTC\" or \"Local\")")
	fs.IntVar(&o.Workers, "workers", 0, "parsing goroutines per file (default: number of CPUs)")
}

func joinNames() string {
	s := ""
	for i, n := range all.Formats().Names() {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s
}

// resolved is inputOptions checked and turned into values.
type resolved struct {
	registry *parsers.Registry
	format   *parsers.Format
	location *time.Location
}

func (o *inputOptions) resolve() (*resolved, error) {
	r := &resolved{registry: all.Formats()}
	if o.Format != "" {
		f, err := r.registry.Lookup(o.Format)
		if err != nil {
			return nil, fmt.Errorf("%w: --format: %w", errUsage, err)
		}
		r.format = &f
	}
	if o.Year != 0 && (o.Year < 1970 || o.Year > 9999) {
		return nil, fmt.Errorf("%w: --year %d: want a year such as 2026", errUsage, o.Year)
	}
	loc, err := time.LoadLocation(o.Timezone)
	if err != nil {
		return nil, fmt.Errorf("%w: --timezone %q: %w", errUsage, o.Timezone, err)
	}
	r.location = loc
	if o.Workers < 0 {
		return nil, fmt.Errorf("%w: --workers %d: must not be negative", errUsage, o.Workers)
	}
	return r, nil
}

// inputResult reports how one input was read.
type inputResult struct {
	Name   string             `json:"name"`
	Format string             `json:"format,omitempty"`
	Lines  parsers.LineCounts `json:"-"`
	Kinds  [kindCount]uint64  `json:"-"` // events by kind
	Error  string             `json:"error,omitempty"`
	// Note says when the input was read in its rotated set's format rather
	// than the one its own first lines suggested.
	Note string `json:"note,omitempty"`
}

// warning says why an input that could be read gave nothing to analyze.
func (in *inputResult) warning() string {
	if in.Error != "" || in.Name == "" {
		return ""
	}
	switch {
	case in.Lines.Total() == 0:
		return in.Name + ": empty: no line to analyze"
	case in.Lines[parsers.Parsed] == 0:
		return fmt.Sprintf("%s: none of its %d lines is a mail event of format %s (%d irrelevant, %d malformed, %d unrecognized, %d too long): is --format right?",
			in.Name, in.Lines.Total(), in.Format, in.Lines[parsers.Irrelevant], in.Lines[parsers.Malformed], in.Lines[parsers.Unrecognized], in.Lines[parsers.TooLong])
	}
	return ""
}

// poisonBlocks makes the pipeline overwrite each block of input once it was
// handled; tests set it so that a string kept without a copy shows up.
var poisonBlocks = false

// blockSize is the pipeline's block size (0: the default); tests make it
// small so that messages span blocks.
var blockSize = 0

// progress is what a long run shows on a terminal, updated by readInputs.
type progress struct {
	file      atomic.Value // string: the input being read
	fileIndex atomic.Int64
	files     atomic.Int64
	doneBytes atomic.Int64 // bytes of the inputs already read
	curBytes  atomic.Int64 // bytes of the current input
	// totalBytes is the size of all inputs, or 0 when unknown (stdin, or a
	// compressed input, whose size says little about what it holds).
	totalBytes atomic.Int64
	lines      atomic.Uint64
}

// readInputs reads every input in order and calls handle for each batch. An
// input that cannot be read or sniffed is reported in its result and the
// others are still read; the returned error wraps errInput then.
func readInputs(ctx context.Context, e *env, o *inputOptions, r *resolved, names []string, prog *progress, handle func(*stream.Batch) error) ([]inputResult, error) {
	if prog == nil {
		prog = &progress{}
	}
	inputs, expandErr := source.Expand(names, time.Now())
	var results []inputResult
	var errs []error
	if expandErr != nil {
		errs = append(errs, expandErr)
		for _, err := range unwrapJoin(expandErr) {
			results = append(results, inputResult{Error: err.Error()})
		}
	}
	prog.files.Store(int64(len(inputs)))
	var total int64
	for _, in := range inputs {
		if in.Size <= 0 || in.Name == source.Stdin || isCompressedName(in.Name) {
			total = 0
			break
		}
		total += in.Size
	}
	prog.totalBytes.Store(total)
	var forced map[string]setFormat
	if r.format == nil {
		forced = rotatedSetFormats(ctx, inputs, r.registry)
	}
	for i, in := range inputs {
		if err := ctx.Err(); err != nil {
			return results, err
		}
		prog.file.Store(in.Name)
		prog.fileIndex.Store(int64(i + 1))
		prog.doneBytes.Add(prog.curBytes.Swap(0))
		res := inputResult{Name: in.Name}
		format := r.format
		if sf, ok := forced[in.Name]; ok {
			format, res.Note = &sf.format, sf.note
		}
		var rd io.ReadCloser
		var err error
		if in.Name == source.Stdin {
			rd, err = source.OpenReader(in.Name, e.stdin)
		} else {
			rd, err = source.OpenContext(ctx, in)
		}
		if err != nil {
			if ctx.Err() != nil {
				return append(results, res), ctx.Err()
			}
			res.Error = err.Error()
			results = append(results, res)
			errs = append(errs, err)
			continue
		}
		cfg := stream.Config{
			Registry:       r.registry,
			Format:         format,
			Options:        parsers.Options{Year: o.Year, ModTime: in.ModTime, Location: r.location},
			Workers:        o.Workers,
			BytesRead:      &prog.curBytes,
			PoisonRecycled: poisonBlocks,
			BlockSize:      blockSize,
		}
		f, err := stream.Run(ctx, rd, cfg, func(b *stream.Batch) error {
			res.Lines.Merge(&b.Counts)
			for i := range b.Events {
				if k := b.Events[i].Kind; int(k) < kindCount {
					res.Kinds[k]++
				}
			}
			prog.lines.Add(b.Counts.Total())
			return handle(b)
		})
		rd.Close()
		res.Format = f.Name
		if err != nil {
			if ctx.Err() != nil {
				return append(results, res), ctx.Err()
			}
			res.Error = err.Error()
			errs = append(errs, fmt.Errorf("%s: %w", in.Name, err))
		}
		results = append(results, res)
	}
	prog.doneBytes.Add(prog.curBytes.Swap(0))
	if len(errs) > 0 {
		return results, fmt.Errorf("%w: %w", errInput, errors.Join(errs...))
	}
	return results, nil
}

// headLines is how many first lines of each member of a rotated set are
// read to agree on the set's format.
const headLines = 1000

// setFormat is the format a member of a rotated set is read in, and why.
type setFormat struct {
	format parsers.Format
	note   string
}

// rotatedSetFormats reads the first lines of each member of every rotated
// set of three or more files and returns, by input name, the members to
// read in the format the rest of their set agrees on (stream.SetFormats).
// A member that cannot be opened here is left to the main read, which
// reports it.
func rotatedSetFormats(ctx context.Context, inputs []source.Input, registry *parsers.Registry) map[string]setFormat {
	sets := map[string][]source.Input{}
	var order []string
	for _, in := range inputs {
		if in.Set == "" {
			continue
		}
		if _, ok := sets[in.Set]; !ok {
			order = append(order, in.Set)
		}
		sets[in.Set] = append(sets[in.Set], in)
	}
	var out map[string]setFormat
	for _, set := range order {
		members := sets[set]
		if len(members) < 3 {
			continue
		}
		heads := make([]stream.Head, len(members))
		for i, in := range members {
			rd, err := source.OpenContext(ctx, in)
			if err != nil {
				continue
			}
			heads[i], _ = stream.SniffHead(ctx, rd, registry, headLines)
			rd.Close()
		}
		for i, f := range stream.SetFormats(heads) {
			if f == nil {
				continue
			}
			if out == nil {
				out = map[string]setFormat{}
			}
			out[members[i].Name] = setFormat{format: *f, note: fmt.Sprintf("read as %s like the rest of its rotated set %s (its first lines alone looked like %s)",
				f.Name, set, heads[i].Format.Name)}
		}
	}
	return out
}

func isCompressedName(name string) bool {
	return strings.HasSuffix(name, ".gz")
}

func unwrapJoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
