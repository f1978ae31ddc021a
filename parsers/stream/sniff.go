package stream

import (
	"context"
	"errors"
	"io"

	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/source"
)

// Head is what the first lines of a stream say about its format.
type Head struct {
	// Format is the format a Stage would pick: that of the first line that
	// looks like one; Known is false when none did.
	Format parsers.Format
	Known  bool
	// Matches counts, by format name, the head's lines that look like
	// each format.
	Matches map[string]int
}

// SniffHead reads at most maxLines lines of r (over-long ones are skipped)
// and says what they look like, with the same per-line sniffing as Stage.
func SniffHead(ctx context.Context, r io.Reader, registry *parsers.Registry, maxLines int) (Head, error) {
	h := Head{Matches: map[string]int{}}
	formats := registry.Formats()
	lr := source.NewLineReader(ctxReader{ctx, r}, 0, source.MaxLineLength)
	var lines []string
	one := make([]string, 1)
	seen := 0
	for seen < maxLines {
		var err error
		lines, err = lr.Read(lines[:0])
		if errors.Is(err, io.EOF) {
			lines = lr.Flush(lines)
		}
		for _, l := range lines {
			if seen == maxLines {
				break
			}
			seen++
			one[0] = l
			for _, f := range formats {
				if f.Sniff(one) > 0 {
					h.Matches[f.Name]++
				}
			}
			if !h.Known {
				if f, err := registry.Sniff(one); err == nil {
					h.Format, h.Known = f, true
				}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return h, nil
			}
			return h, err
		}
	}
	return h, nil
}

// SetFormats decides the format of each member of one rotated set from the
// heads of all its members. A member whose own first lines look like a
// format other than the one every other member agrees on (at least two of
// them) is read in the set's format, provided that format also matches
// lines of its head: a stray line of another program that happens to look
// like another format does not decide, while a set whose MTA really
// changed keeps each member's own format. It returns, per member, the
// format to force, or nil to sniff as usual.
func SetFormats(heads []Head) []*parsers.Format {
	out := make([]*parsers.Format, len(heads))
	for i, h := range heads {
		if !h.Known {
			continue
		}
		var agreed *parsers.Format
		others := 0
		for j := range heads {
			if j == i || !heads[j].Known {
				continue
			}
			if agreed != nil && heads[j].Format.Name != agreed.Name {
				agreed = nil
				others = -1
				break
			}
			agreed = &heads[j].Format
			others++
		}
		if others >= 2 && agreed.Name != h.Format.Name && h.Matches[agreed.Name] > 0 {
			f := *agreed
			out[i] = &f
		}
	}
	return out
}
