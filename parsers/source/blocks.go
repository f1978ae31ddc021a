package source

import (
	"bytes"
	"io"
)

// DefaultBlockSize is the size of the blocks a Blocker cuts; a line longer
// than this is skipped and counted.
const DefaultBlockSize = MaxLineLength

// maxFree bounds the recycled buffers a Blocker keeps.
const maxFree = 64

// Blocker cuts a stream into blocks that hold whole lines only. A block is
// never written again once returned until the caller hands it back with
// Recycle, so strings that point into it stay valid until then.
type Blocker struct {
	r         io.Reader
	size      int
	free      [][]byte // recycled buffers, each of cap size
	carry     []byte   // the start of an incomplete line, for the next block
	carryBuf  []byte
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
		buf := b.buffer()
		n := copy(buf, b.carry)
		b.carry = b.carry[:0]
		for n < len(buf) && b.err == nil {
			k, err := b.r.Read(buf[n:])
			n += k
			b.bytesRead += int64(k)
			if err != nil {
				b.err = err
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
				b.Recycle(buf)
				continue
			}
			b.skipping = false
			b.keep(data[i+1:])
			b.Recycle(buf)
			continue
		}
		if b.err != nil {
			// End of stream: everything left is whole lines.
			if n == 0 {
				b.Recycle(buf)
				continue
			}
			return data, nil
		}
		last := bytes.LastIndexByte(data, '\n')
		if last < 0 {
			// One line fills the whole buffer: skip it.
			b.tooLong++
			b.skipping = true
			b.Recycle(buf)
			continue
		}
		b.keep(data[last+1:])
		return data[:last+1], nil
	}
}

// keep saves the start of an incomplete line for the next block.
func (b *Blocker) keep(rest []byte) {
	b.carryBuf = append(b.carryBuf[:0], rest...)
	b.carry = b.carryBuf
}

// buffer returns a recycled buffer or a new one.
func (b *Blocker) buffer() []byte {
	if n := len(b.free); n > 0 {
		buf := b.free[n-1]
		b.free = b.free[:n-1]
		return buf
	}
	return make([]byte, b.size)
}

// Recycle hands back a block returned by Next once nothing refers to its
// bytes any more. It must be called at most once per block, from the
// goroutine that calls Next.
func (b *Blocker) Recycle(block []byte) {
	if cap(block) == b.size && len(b.free) < maxFree {
		b.free = append(b.free, block[:cap(block)])
	}
}
