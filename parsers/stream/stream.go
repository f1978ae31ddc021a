// Package stream runs a parser over one input: it reads blocks of whole lines,
// parses them (in parallel when the parser keeps no state between lines) and
// hands the events to the caller in input order.
package stream

import (
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
	bl := source.NewBlocker(ctxReader{ctx, r}, cfg.BlockSize)
	stage := NewStage(cfg.Registry, cfg.Format, cfg.Options)
	// poison overwrites a handled block (PoisonRecycled, a test aid).
	poison := func(block []byte) {
		if cfg.PoisonRecycled {
			for i := range block {
				block[i] = '#'
			}
		}
	}
	// Until the format is known, blocks go through the stage line by line
	// in this goroutine, exactly as watch hands its lines over.
	var first []byte
	var readErr error
	prevTooLong, tooLong := 0, 0
	for {
		first, readErr = bl.Next()
		if cfg.BytesRead != nil {
			cfg.BytesRead.Store(bl.BytesRead())
		}
		tooLong = bl.TooLong() - prevTooLong
		prevTooLong = bl.TooLong()
		if _, known := stage.Format(); known {
			break
		}
		if len(first) > 0 || tooLong > 0 {
			b := &Batch{}
			before := *stage.Counts()
			stage.CountTooLong(uint64(tooLong))
			forLines(first, func(line string) { b.Events = stage.Parse(line, b.Events) })
			b.Counts = *stage.Counts()
			for i := range b.Counts {
				b.Counts[i] -= before[i]
			}
			if err := fn(b); err != nil {
				return stage.format, err
			}
			if len(first) > 0 {
				poison(first)
				bl.Recycle(first)
			}
			first = nil
		}
		if readErr != nil {
			break
		}
	}
	if _, known := stage.Format(); !known {
		if err := ctx.Err(); err != nil {
			return parsers.Format{}, err
		}
		if readErr != nil && readErr != io.EOF {
			return parsers.Format{}, fmt.Errorf("reading stopped: %w", readErr)
		}
		before := stage.Counts().Total()
		err := stage.End()
		if n := stage.Counts().Total() - before; n > 0 {
			b := &Batch{}
			b.Counts[parsers.Unrecognized] = n
			if ferr := fn(b); ferr != nil {
				return parsers.Format{}, ferr
			}
		}
		return parsers.Format{}, err
	}
	format, _ := stage.Format()
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	probe := stage.Parser()
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

	// The reader owns and closes jobs and ordered. After a cancellation it
	// may still be blocked in a read that nothing can interrupt (a
	// terminal): nobody waits for it then.
	var readerErr error
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(jobs)
		defer close(ordered)
		block, err := first, readErr
		prev := bl.TooLong()
		for {
			if len(block) > 0 || tooLong > 0 {
				j := &job{block: block, tooLong: tooLong, done: make(chan struct{})}
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
			tooLong = bl.TooLong() - prev
			prev = bl.TooLong()
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
			for {
				j, ok := receive(ctx, jobs)
				if !ok {
					return
				}
				b := pool.Get().(*Batch)
				parseBlock(p, j.block, b)
				b.Counts[parsers.TooLong] += uint64(j.tooLong)
				j.batch = b
				close(j.done)
			}
		}()
	}

	var fnErr error
consume:
	for {
		j, ok := receive(ctx, ordered)
		if !ok {
			break consume
		}
		select {
		case <-j.done:
		case <-ctx.Done():
			break consume
		}
		stage.FixYears(j.batch.Events)
		if err := fn(j.batch); err != nil {
			fnErr = err
			cancel()
			break consume
		}
		clear(j.batch.Events)
		j.batch.Events = j.batch.Events[:0]
		if len(j.block) > 0 {
			poison(j.block)
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
	<-readerDone
	if readerErr != nil {
		return format, fmt.Errorf("reading stopped: %w", readerErr)
	}
	return format, nil
}

// receive takes the next value from ch; false when ch is closed or ctx is
// done.
func receive[T any](ctx context.Context, ch <-chan T) (T, bool) {
	select {
	case v, ok := <-ch:
		return v, ok
	case <-ctx.Done():
		var zero T
		return zero, false
	}
}

// forLines calls fn for every non-empty line of block, without its line end.
func forLines(block []byte, fn func(string)) {
	if len(block) == 0 {
		return
	}
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
		if len(line) > 0 {
			fn(line)
		}
	}
}

// parseBlock parses every line of block into b. The block is never written
// again while its batch is in use: its lines are strings without a copy.
func parseBlock(p parsers.Parser, block []byte, b *Batch) {
	forLines(block, func(line string) {
		var r parsers.Result
		b.Events, r = p.Parse(line, b.Events)
		b.Counts.Add(r)
	})
}
