// Package source gets log lines in: it expands the inputs of a batch run
// (plain files, gzip archives, stdin), orders rotated sets oldest first, and
// cuts a stream into blocks of whole lines for the parsers.
package source

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Input is one stream to read.
type Input struct {
	// Name is the path, or "-" for stdin.
	Name string
	// ModTime is the file's modification time (now for stdin); it anchors
	// the year of timestamps without one.
	ModTime time.Time
	// Size is the file's size on disk (compressed size for .gz), 0 if unknown.
	Size int64
	// Set names the rotated set the file belongs to (mail.log for
	// mail.log.2.gz); "" for stdin.
	Set string
}

// Stdin is the name of standard input.
const Stdin = "-"

// Expand stats the named inputs and orders them so that each rotated set
// (mail.log, mail.log.1, mail.log.2.gz, or mail.log-20261120.gz) is read
// oldest first, whatever order the names were given in. Sets keep the order
// in which they first appear. A name with glob characters that is not a file
// itself is expanded (Windows shells do not expand MSGTRK*.LOG); the matches
// are taken in name order, which for Exchange's MSGTRKyyyymmddhh-N.LOG
// names is time order. A name that cannot be stat'ed is an error.
func Expand(names []string, now time.Time) ([]Input, error) {
	var expanded []string
	var globErrs []error
	for _, name := range names {
		if name != Stdin && strings.ContainsAny(name, "*?[") {
			if _, err := os.Stat(name); err != nil {
				matches, gerr := filepath.Glob(name)
				switch {
				case gerr != nil:
					globErrs = append(globErrs, fmt.Errorf("input %s: %w", name, gerr))
				case len(matches) == 0:
					globErrs = append(globErrs, fmt.Errorf("input %s: no file matches", name))
				}
				sort.Strings(matches)
				expanded = append(expanded, matches...)
				continue
			}
		}
		expanded = append(expanded, name)
	}
	inputs, err := expand(expanded, now)
	return inputs, errors.Join(append(globErrs, err)...)
}

func expand(names []string, now time.Time) ([]Input, error) {
	type item struct {
		in    Input
		group int
		age   rotationAge
	}
	groups := map[string]int{}
	var items []item
	var errs []error
	for _, name := range names {
		if name == Stdin {
			items = append(items, item{in: Input{Name: Stdin, ModTime: now}, group: len(groups)})
			groups["\x00stdin"+strconv.Itoa(len(groups))] = len(groups)
			continue
		}
		fi, err := os.Stat(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("input %s: %w", name, err))
			continue
		}
		if fi.IsDir() {
			errs = append(errs, fmt.Errorf("input %s: is a directory", name))
			continue
		}
		base, age := rotation(name)
		g, ok := groups[base]
		if !ok {
			g = len(groups)
			groups[base] = g
		}
		items = append(items, item{in: Input{Name: name, ModTime: fi.ModTime(), Size: fi.Size(), Set: base}, group: g, age: age})
	}
	sort.SliceStable(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if a.group != b.group {
			return a.group < b.group
		}
		return a.age.older(b.age)
	})
	out := make([]Input, len(items))
	for i, it := range items {
		out[i] = it.in
	}
	return out, errors.Join(errs...)
}

// rotationAge orders the members of a rotated set: numbered members
// (mail.log.3) are older the higher the number; dated members
// (mail.log-20261120) are older the earlier the date; the live file is the
// newest.
type rotationAge struct {
	live   bool
	number int
	date   string
}

func (a rotationAge) older(b rotationAge) bool {
	switch {
	case a.live != b.live:
		return !a.live
	case a.date != "" || b.date != "":
		return a.date < b.date
	default:
		return a.number > b.number
	}
}

// rotation returns the base name of a rotated file and its age.
func rotation(name string) (string, rotationAge) {
	s := strings.TrimSuffix(name, ".gz")
	s = strings.TrimSuffix(s, ".bz2")
	s = strings.TrimSuffix(s, ".xz")
	dir, file := filepath.Split(s)
	if i := strings.LastIndexByte(file, '.'); i > 0 {
		if n, err := strconv.Atoi(file[i+1:]); err == nil && n >= 0 && n < 100000 {
			return dir + file[:i], rotationAge{number: n}
		}
	}
	if i := strings.LastIndexByte(file, '-'); i > 0 && len(file)-i-1 >= 8 && allDigits(file[i+1:]) {
		return dir + file[:i], rotationAge{date: file[i+1:]}
	}
	return s, rotationAge{live: true}
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// ErrCompressed is wrapped by errors from reading a damaged archive.
var ErrCompressed = errors.New("damaged compressed input")

// Open opens a file input for reading, transparently decompressing gzip (by
// content, not name). The returned reader's errors name the input. For
// stdin, use OpenReader.
func Open(in Input) (io.ReadCloser, error) {
	if in.Name == Stdin {
		return OpenReader(in.Name, os.Stdin)
	}
	f, err := os.Open(in.Name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", in.Name, err)
	}
	rc, err := OpenReader(in.Name, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	rc.(*namedReader).closers = append(rc.(*namedReader).closers, f)
	return rc, nil
}

// OpenContext is Open that gives up when ctx is done: opening a FIFO waits
// for a writer, and a file on a dead network mount may never open. A file
// opened after ctx was done is closed.
func OpenContext(ctx context.Context, in Input) (io.ReadCloser, error) {
	type result struct {
		rc  io.ReadCloser
		err error
	}
	done := make(chan result, 1)
	go func() {
		rc, err := Open(in)
		done <- result{rc, err}
	}()
	select {
	case r := <-done:
		return r.rc, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.rc != nil {
				r.rc.Close()
			}
		}()
		return nil, fmt.Errorf("open %s: %w", in.Name, ctx.Err())
	}
}

// OpenReader wraps an already open stream like Open does; closing the result
// does not close r.
func OpenReader(name string, r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(2)
	if bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %w", name, ErrCompressed, err)
		}
		return &namedReader{name: name, r: zr, closers: []io.Closer{zr}, gz: true}, nil
	}
	return &namedReader{name: name, r: br}, nil
}

type namedReader struct {
	name    string
	r       io.Reader
	closers []io.Closer
	gz      bool
}

func (n *namedReader) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	if err != nil && err != io.EOF {
		if n.gz {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("%s: %w: truncated gzip stream", n.name, ErrCompressed)
			} else {
				err = fmt.Errorf("%s: %w: %w", n.name, ErrCompressed, err)
			}
		} else {
			err = fmt.Errorf("read %s: %w", n.name, err)
		}
	}
	return k, err
}

func (n *namedReader) Close() error {
	var errs []error
	for _, c := range n.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
