// Package stream runs a parser over one input: it reads blocks of whole lines,
// parses them (in parallel when the parser keeps no state between lines) and
// hands the events to the caller in input order.
package stream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/source"
	"github.com/relaywatch/relaywatch/parsers/syslog"
)

// SniffLines is how many first lines format sniffing looks at.
const SniffLines = 50

// Batch is the result of parsing one block of lines.
type Batch struct {
	// Events are the block's events in input order. They are valid only
	// during the callback; see parsers.Event.
	Events []parsers.Event
	// Counts counts the block's lines by result.
	Counts parsers.LineCounts
}

// Config configures Run.
type Config struct {
	// Registry lists the formats for sniffing. Format, if set, is used instead.
	Registry *parsers.Registry
	Format   *parsers.Format
	Options  parsers.Options
	// Workers is the number of parsing goroutines (default GOMAXPROCS).
	Workers int
	// BlockSize is the block size (default source.DefaultBlockSize).
	BlockSize int
	// BytesRead, if set, is advanced as input is read (for progress).
	BytesRead *atomic.Int64
	// PoisonRecycled overwrites every block after its callback returned,
	// before it is reused: a test aid that makes any string kept beyond the
	// callback (without strings.Clone) show up as garbage.
	PoisonRecycled bool
}

// Run reads r, parses every line and calls fn for each batch, in input order,
// from the calling goroutine. It returns the format used. Lines longer than
// the block size are counted as parsers.TooLong in a batch of their own.
// A read error ends the stream after every line read before it was handed
// to fn, and is returned.
func Run(ctx context.Context, r io.Reader, cfg Config, fn func(*Batch) error) (parsers.Format, error) {
	bl := source.NewBlocker(r, cfg.BlockSize)
	first, readErr := bl.Next()
	if cfg.BytesRead != nil {
		cfg.BytesRead.Store(bl.BytesRead())
	}
	var format parsers.Format
	if cfg.Format != nil {
		format = *cfg.Format
	} else {
		if readErr != nil && readErr != io.EOF {
			return format, readErr
		}
		f, err := cfg.Registry.Sniff(firstLines(first, SniffLines))
		if err != nil {
			if len(first) == 0 {
				return format, nil // empty input: nothing to do
			}
			return format, err
		}
		format = f
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	probe := format.New(cfg.Options)
	if c, ok := probe.(parsers.Concurrent); !ok || !c.ParsesIndependently() {
		workers = 1
	}

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type job struct {
		block   []byte
		tooLong int
		batch   *Batch
		done    chan struct{}
	}
	jobs := make(chan *job, workers*2)
	ordered := make(chan *job, workers*2+2)
	// Blocks come back here once their batch was handled, for reuse.
	recycled := make(chan []byte, workers*2+8)
	pool := sync.Pool{New: func() any { return &Batch{Events: make([]parsers.Event, 0, 2048)} }}

	// The reader owns and closes jobs and ordered.
	var readerErr error
	go func() {
		defer close(jobs)
		defer close(ordered)
		block, err := first, readErr
		prevTooLong := 0
		for {
			if len(block) > 0 || bl.TooLong() != prevTooLong {
				j := &job{block: block, tooLong: bl.TooLong() - prevTooLong, done: make(chan struct{})}
				prevTooLong = bl.TooLong()
				select {
				case ordered <- j:
				case <-ctx.Done():
					return
				}
				select {
				case jobs <- j:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				if err != io.EOF {
					readerErr = err
				}
				return
			}
		drain:
			for {
				select {
				case b := <-recycled:
					bl.Recycle(b)
				default:
					break drain
				}
			}
			block, err = bl.Next()
			if cfg.BytesRead != nil {
				cfg.BytesRead.Store(bl.BytesRead())
			}
		}
	}()

	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		p := probe
		if w > 0 {
			p = format.New(cfg.Options)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				b := pool.Get().(*Batch)
				parseBlock(p, j.block, b)
				b.Counts[parsers.TooLong] += uint64(j.tooLong)
				j.batch = b
				close(j.done)
			}
		}()
	}

	years := syslog.NewYearTracker(cfg.Options.Year != 0, cfg.Options.ModTime)
	var fnErr error
	stopped := false
	for j := range ordered {
		if stopped {
			continue // drain so that the reader can finish
		}
		select {
		case <-j.done:
		case <-ctx.Done():
			stopped = true
			continue
		}
		for i := range j.batch.Events {
			if e := &j.batch.Events[i]; e.YearGuessed {
				e.Time = years.Fix(e.Time)
			}
		}
		if err := fn(j.batch); err != nil {
			fnErr = err
			stopped = true
			cancel()
		}
		clear(j.batch.Events)
		j.batch.Events = j.batch.Events[:0]
		if len(j.block) > 0 {
			if cfg.PoisonRecycled {
				for i := range j.block {
					j.block[i] = '#'
				}
			}
			select {
			case recycled <- j.block:
			default: // the reader has enough spare blocks
			}
		}
		j.batch.Counts = parsers.LineCounts{}
		pool.Put(j.batch)
	}
	cancel()
	wg.Wait()
	if fnErr != nil {
		return format, fnErr
	}
	if err := parent.Err(); err != nil {
		return format, err
	}
	if readerErr != nil {
		return format, fmt.Errorf("reading stopped: %w", readerErr)
	}
	return format, nil
}

// parseBlock parses every line of block into b.
func parseBlock(p parsers.Parser, block []byte, b *Batch) {
	if len(block) == 0 {
		return
	}
	// The block is never written again: its lines can be strings without a copy.
	s := unsafe.String(&block[0], len(block))
	for len(s) > 0 {
		i := strings.IndexByte(s, '\n')
		var line string
		if i < 0 {
			line, s = s, ""
		} else {
			line, s = s[:i], s[i+1:]
		}
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			continue
		}
		var r parsers.Result
		b.Events, r = p.Parse(line, b.Events)
		b.Counts.Add(r)
	}
}

// firstLines returns up to n lines from the start of block.
func firstLines(block []byte, n int) []string {
	var out []string
	for len(block) > 0 && len(out) < n {
		i := bytes.IndexByte(block, '\n')
		var line []byte
		if i < 0 {
			line, block = block, nil
		} else {
			line, block = block[:i], block[i+1:]
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > 0 {
			out = append(out, string(line))
		}
	}
	return out
}
