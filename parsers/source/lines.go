package source

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
)

// MaxLineLength is the longest line relaywatch reads, in bytes, on every
// path (analyze's blocks, followed files, stdin, journald, catch-up): a
// longer line is skipped and counted as too long, and the lines after it
// are read as usual. Mail log lines are a few hundred bytes; syslog daemons
// cut theirs at 8 KiB or 64 KiB.
const MaxLineLength = 256 << 10

// readSize is how much a LineReader asks its reader for at once.
const readSize = 64 << 10

// LineReader cuts a stream into lines with one length limit: a line longer
// than the limit is skipped (counted by TooLong), never held in memory
// whole. It reads files that are still being written: at the current end of
// the data an incomplete last line is kept until more arrives. It keeps
// track of the offset just after the last line it handed out or skipped.
type LineReader struct {
	r        io.Reader
	buf      []byte
	n        int // bytes held in buf (an incomplete line)
	max      int
	skipping bool // discarding the rest of an over-long line
	tooLong  uint64
	offset   int64 // stream offset just after the last line handed out or skipped
	held     int64 // stream offset of buf[0]
}

// NewLineReader returns a LineReader over r that starts at stream offset
// start (for positions) and skips lines longer than maxLen bytes (0 means
// MaxLineLength).
func NewLineReader(r io.Reader, start int64, maxLen int) *LineReader {
	if maxLen <= 0 {
		maxLen = MaxLineLength
	}
	return &LineReader{r: r, max: maxLen, offset: start, held: start}
}

// TooLong is the number of lines skipped so far because they were longer
// than the limit.
func (lr *LineReader) TooLong() uint64 { return lr.tooLong }

// Offset is the stream offset just after the last complete line handed out
// (or skipped): where reading would start again.
func (lr *LineReader) Offset() int64 { return lr.offset }

// Pending is the number of bytes of an incomplete line held.
func (lr *LineReader) Pending() int { return lr.n }

// Read reads from the underlying reader once and appends the complete lines
// that are now available to dst, without their line ends ("\n" or "\r\n")
// and without empty lines. The lines share one string allocation. It
// returns the reader's error: io.EOF at the current end of the data, after
// which Read may be called again when more has been written.
func (lr *LineReader) Read(dst []string) ([]string, error) {
	if lr.buf == nil {
		lr.buf = make([]byte, min(lr.max+1, readSize))
	}
	if lr.n == len(lr.buf) {
		if len(lr.buf) < lr.max+1 {
			// A long line: grow up to the limit.
			nb := make([]byte, min(2*len(lr.buf), lr.max+1))
			copy(nb, lr.buf[:lr.n])
			lr.buf = nb
		} else {
			// The buffer holds more than the limit without a line end.
			lr.tooLong++
			lr.skipping = true
			lr.held += int64(lr.n)
			lr.n = 0
		}
	}
	k, err := lr.r.Read(lr.buf[lr.n:])
	if k > 0 {
		lr.n += k
		dst = lr.cut(dst)
	}
	if k == 0 && err == nil {
		err = io.ErrNoProgress
	}
	return dst, err
}

// cut hands out the complete lines in the buffer.
func (lr *LineReader) cut(dst []string) []string {
	data := lr.buf[:lr.n]
	start := 0
	if lr.skipping {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			lr.held += int64(lr.n)
			lr.n = 0
			return dst
		}
		lr.skipping = false
		start = i + 1
		lr.offset = lr.held + int64(start)
	}
	last := bytes.LastIndexByte(data, '\n')
	if last >= start {
		s := string(data[start : last+1])
		for len(s) > 0 {
			i := strings.IndexByte(s, '\n')
			line := s[:i]
			s = s[i+1:]
			if len(line) > 0 && line[len(line)-1] == '\r' {
				line = line[:len(line)-1]
			}
			if len(line) > lr.max {
				lr.tooLong++
				continue
			}
			if line != "" {
				dst = append(dst, line)
			}
		}
		start = last + 1
		lr.offset = lr.held + int64(start)
	}
	rest := copy(lr.buf, data[start:])
	lr.held += int64(start)
	lr.n = rest
	return dst
}

// Flush hands out an incomplete last line, for a stream that has ended
// (stdin, a pipe): a file's incomplete last line is the writer's, not ours.
func (lr *LineReader) Flush(dst []string) []string {
	if lr.skipping {
		lr.skipping = false
		lr.held += int64(lr.n)
		lr.offset = lr.held
		lr.n = 0
		return dst
	}
	if lr.n == 0 {
		return dst
	}
	line := strings.TrimSuffix(string(lr.buf[:lr.n]), "\r")
	lr.held += int64(lr.n)
	lr.offset = lr.held
	lr.n = 0
	if len(line) > lr.max {
		lr.tooLong++
		return dst
	}
	if line != "" {
		dst = append(dst, line)
	}
	return dst
}

// ReadStream reads a stream without positions (stdin, a pipe, journalctl's
// output) to its end and sends its lines to out as batches named name,
// until ctx is done. A read error ends it and is returned; the end of the
// stream is not an error. A reader blocked in a read that ctx cannot
// interrupt (a terminal) is left behind: the caller must not wait for it.
func ReadStream(ctx context.Context, name string, r io.Reader, maxLen int, out chan<- Batch) error {
	lr := NewLineReader(r, 0, maxLen)
	var tooLong uint64
	for {
		lines, err := lr.Read(nil)
		if err == io.EOF || (err != nil && !errors.Is(err, io.ErrNoProgress)) {
			lines = lr.Flush(lines)
		}
		b := Batch{Input: name, Lines: lines, TooLong: lr.TooLong() - tooLong}
		tooLong = lr.TooLong()
		if len(b.Lines) > 0 || b.TooLong > 0 {
			select {
			case out <- b:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil && !errors.Is(err, io.ErrNoProgress) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}
