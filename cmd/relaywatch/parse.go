package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/relaywatch/relaywatch/parsers/stream"
)

// parseOptions are the flags of `relaywatch parse`.
type parseOptions struct {
	input   inputOptions
	Summary bool
}

// AddFlags registers parse's flags.
func (o *parseOptions) AddFlags(fs *pflag.FlagSet) {
	o.input.AddFlags(fs)
	fs.BoolVar(&o.Summary, "summary", false, "print each input's line counts (parsed, irrelevant, skipped) on stderr at the end")
}

func parseCommand() command {
	return command{
		name:    "parse",
		summary: "print the normalized events of log files as JSON lines (for writing parsers and debugging)",
		usage:   "parse [flags] FILE...",
		flags: func() (*pflag.FlagSet, func(context.Context, *env, []string) error) {
			o := &parseOptions{}
			fs := pflag.NewFlagSet("parse", pflag.ContinueOnError)
			o.AddFlags(fs)
			return fs, func(ctx context.Context, e *env, args []string) error { return runParse(ctx, e, o, args) }
		},
	}
}

// runParse is `relaywatch parse`.
func runParse(ctx context.Context, e *env, o *parseOptions, files []string) error {
	if len(files) == 0 {
		return fmt.Errorf("%w: no input files (use - for stdin)", errUsage)
	}
	res, err := o.input.resolve()
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(e.stdout, 64<<10)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	results, readErr := readInputs(ctx, e, &o.input, res, files, nil, func(b *stream.Batch) error {
		for i := range b.Events {
			if err := enc.Encode(&b.Events[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err := w.Flush(); err != nil {
		return err
	}
	if o.Summary {
		for _, r := range results {
			fmt.Fprintf(e.stderr, "%s (%s): %d lines, %d parsed, %d irrelevant, %d skipped\n", r.Name, r.Format, r.Lines.Total(), r.Lines[0], r.Lines[1], r.Lines.Skipped())
		}
	}
	if readErr != nil && !errors.Is(readErr, errInput) {
		return readErr
	}
	return readErr
}
