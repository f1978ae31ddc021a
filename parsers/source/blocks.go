package source

import (
	"bytes"
	"io"
)

// DefaultBlockSize is the size of the blocks a Blocker cuts; a line longer
// than this is skipped and counted.
const DefaultBlockSize = 256 << 10

// Blocker cuts a stream into blocks that hold whole lines only. Each block is
// freshly allocated and never written again once returned, so the caller may
// keep strings that point into it.
type Blocker struct {
	r         io.Reader
	size      int
	carry     []byte
	skipping  bool
	err       error
	tooLong   int
	bytesRead int64
}

// NewBlocker returns a Blocker over r whose blocks are at most size bytes.
func NewBlocker(r io.Reader, size int) *Blocker {
	if size <= 0 {
		size = DefaultBlockSize
	}
	return &Blocker{r: r, size: size}
}

// TooLong is the number of lines skipped so far because they were longer
// than the block size.
func (b *Blocker) TooLong() int { return b.tooLong }

// BytesRead is the number of bytes read from the underlying reader.
func (b *Blocker) BytesRead() int64 { return b.bytesRead }

// Next returns the next block of whole lines (the last line of the stream may
// lack its newline). It returns io.EOF at the end, or the reader's error after
// handing out every complete line read before it.
func (b *Blocker) Next() ([]byte, error) {
	for {
		if b.err != nil && len(b.carry) == 0 {
			return nil, b.err
		}
		buf := make([]byte, b.size)
		n := copy(buf, b.carry)
		b.carry = nil
		for n < len(buf) && b.err == nil {
			k, err := b.r.Read(buf[n:])
			n += k
			b.bytesRead += int64(k)
			if err != nil {
				b.err = err
			}
			if k == 0 && err == nil {
				continue
			}
		}
		data := buf[:n]
		if b.skipping {
			// Discard the rest of an over-long line.
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				if b.err != nil {
					b.skipping = false
				}
				continue
			}
			b.skipping = false
			data = data[i+1:]
			if len(data) == 0 {
				continue
			}
			buf = data
		}
		if b.err != nil {
			// End of stream: everything left is whole lines.
			if len(data) == 0 {
				continue
			}
			return data, nil
		}
		last := bytes.LastIndexByte(data, '\n')
		if last < 0 {
			if len(data) == len(buf) && len(data) == b.size {
				// One line fills the whole buffer: skip it.
				b.tooLong++
				b.skipping = true
				continue
			}
			b.carry = data
			continue
		}
		if rest := data[last+1:]; len(rest) > 0 {
			b.carry = append([]byte(nil), rest...)
		}
		return data[: last+1 : last+1], nil
	}
}
