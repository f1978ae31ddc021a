package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nxadm/tail"
)

// Line is one line read from a followed file.
type Line struct {
	// File is the path the line was read from.
	File string
	Text string
	// Offset is the byte offset just after the line in the file that was
	// open when it was read; -1 when the line does not advance the file's
	// position (recovered from a rotated copy, stdin, journald).
	Offset int64
	// Reopened is set on the first line after the file was reopened
	// (rotated or truncated): offsets start again.
	Reopened bool
}

// FollowConfig configures a Follower.
type FollowConfig struct {
	// Patterns are file paths or globs.
	Patterns []string
	// Poll uses polling instead of inotify (for file systems without it).
	Poll bool
	// Rescan is how often globs are matched again for new files (default 5s).
	Rescan time.Duration
	// Start returns the offset to start a newly found file at; ok false
	// means the start of the file for files found after the first scan,
	// and the end for files present at the first scan without a position
	// (history is analyze's job).
	Start func(path string) (offset int64, ok bool)
	// OnError reports a problem with a file; it must not block.
	OnError func(path string, err error)
}

// Follower follows files that match patterns, picking up new files and
// dropping deleted ones, through rotation by rename+create and copytruncate
// (github.com/nxadm/tail with ReOpen).
type Follower struct {
	cfg FollowConfig

	mu      sync.Mutex
	tails   map[string]*tail.Tail
	scanned bool
	ready   chan struct{} // closed after the first scan opened the files
}

// NewFollower returns a follower; Run starts it.
func NewFollower(cfg FollowConfig) *Follower {
	if cfg.Rescan <= 0 {
		cfg.Rescan = 5 * time.Second
	}
	if cfg.OnError == nil {
		cfg.OnError = func(string, error) {}
	}
	return &Follower{cfg: cfg, tails: map[string]*tail.Tail{}, ready: make(chan struct{})}
}

// Ready is closed once the first scan has started following every file
// present then: lines written after it are not skipped.
func (f *Follower) Ready() <-chan struct{} { return f.ready }

// Files returns the paths followed now.
func (f *Follower) Files() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.tails))
	for p := range f.tails {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Run follows until ctx is done, sending every line to out; it stops all
// tailers before it returns. It owns no channel it does not create: out is
// the caller's and stays open.
func (f *Follower) Run(ctx context.Context, out chan<- Line) error {
	var wg sync.WaitGroup
	defer func() {
		f.mu.Lock()
		for p, t := range f.tails {
			t.Stop()
			delete(f.tails, p)
		}
		f.mu.Unlock()
		wg.Wait()
	}()
	tick := time.NewTicker(f.cfg.Rescan)
	defer tick.Stop()
	first := true
	for {
		f.scan(ctx, &wg, out)
		if first {
			first = false
			close(f.ready)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Reopen stops every tailer; the next scan starts them again from the
// positions the caller's Start returns (SIGHUP).
func (f *Follower) Reopen() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for p, t := range f.tails {
		t.Stop()
		delete(f.tails, p)
	}
}

// matches returns the paths the patterns name now.
func (f *Follower) matches() map[string]bool {
	found := map[string]bool{}
	for _, p := range f.cfg.Patterns {
		if strings.ContainsAny(p, "*?[") {
			m, err := filepath.Glob(p)
			if err != nil {
				f.cfg.OnError(p, err)
			}
			for _, x := range m {
				found[x] = true
			}
			continue
		}
		found[p] = true // followed even before it exists
	}
	return found
}

func (f *Follower) scan(ctx context.Context, wg *sync.WaitGroup, out chan<- Line) {
	found := f.matches()
	f.mu.Lock()
	first := !f.scanned
	f.scanned = true
	// Stop following files that are gone: a glob no longer matches them
	// (a deleted mail.log.1 is never read forever).
	for p, t := range f.tails {
		if !found[p] {
			t.Stop()
			delete(f.tails, p)
		}
	}
	var start []string
	for p := range found {
		if _, ok := f.tails[p]; !ok {
			start = append(start, p)
		}
	}
	f.mu.Unlock()
	sort.Strings(start)
	for _, p := range start {
		loc := &tail.SeekInfo{Offset: 0, Whence: io.SeekStart}
		if off, ok := f.cfg.Start(p); ok {
			loc.Offset = off
		} else if first {
			loc.Whence = io.SeekEnd
		}
		t, err := tail.TailFile(p, tail.Config{
			Location: loc, ReOpen: true, Follow: true, Poll: f.cfg.Poll, MustExist: false,
			CompleteLines: true, Logger: tail.DiscardingLogger,
		})
		if err != nil {
			f.cfg.OnError(p, err)
			continue
		}
		f.mu.Lock()
		f.tails[p] = t
		f.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			forward(ctx, p, t, out)
		}()
	}
}

// forward copies a tailer's lines to out until the tailer or ctx ends.
//
// When the offsets start again, the file was rotated. After copytruncate the
// lines written between the last read and the truncation are only in the
// copy (mail.log.1): forward finds the copy by the fingerprint of its first
// bytes and reads them from there first, so that no line is lost.
func forward(ctx context.Context, path string, t *tail.Tail, out chan<- Line) {
	var last int64 = -1
	id, _, _ := IdentityOf(path)
	send := func(l Line) bool {
		select {
		case out <- l:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		select {
		case l, ok := <-t.Lines:
			if !ok {
				return
			}
			if l.Err != nil {
				continue
			}
			reopened := last >= 0 && l.SeekInfo.Offset < last
			if reopened {
				for _, r := range recoverTruncated(path, id, last) {
					if !send(r) {
						return
					}
				}
				id, _, _ = IdentityOf(path)
			}
			if id.FingerprintLen < fingerprintSize {
				// The file was short when we looked: look again until its
				// first bytes are all there to identify it.
				id, _, _ = IdentityOf(path)
			}
			text := strings.TrimSuffix(l.Text, "\r")
			last = l.SeekInfo.Offset
			if !send(Line{File: path, Text: text, Offset: l.SeekInfo.Offset, Reopened: reopened}) {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// recoverTruncated returns the lines after offset that the old file got
// before it was rotated and that the tailer did not read: after copytruncate
// they are in the copy (a sibling that starts with the old file's first
// bytes), after rename+create in the renamed file itself (nxadm/tail may see
// the rename before the last write). The lines are marked File=path so that
// they count as path's, with Offset -1: they do not move path's position.
func recoverTruncated(path string, old Identity, offset int64) []Line {
	if old.FingerprintLen == 0 {
		return nil
	}
	now, _, err := IdentityOf(path)
	renamed := err != nil || now.Dev != old.Dev || now.Inode != old.Inode
	matches, _ := filepath.Glob(path + "?*")
	for _, m := range matches {
		if strings.HasSuffix(m, ".gz") {
			continue
		}
		cand, size, err := IdentityOf(m)
		if err != nil || size <= offset || cand.FingerprintLen < old.FingerprintLen {
			continue
		}
		if renamed && (cand.Dev != old.Dev || cand.Inode != old.Inode) {
			continue
		}
		if !sameFirstBytes(m, old) {
			continue
		}
		f, err := os.Open(m)
		if err != nil {
			continue
		}
		defer f.Close()
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(f, 64<<20))
		if err != nil {
			continue
		}
		var out []Line
		for len(data) > 0 {
			i := strings.IndexByte(string(data), '\n')
			if i < 0 {
				break // an incomplete last line: the writer's, not ours
			}
			out = append(out, Line{File: path, Text: strings.TrimSuffix(string(data[:i]), "\r"), Offset: -1}) // the copy's offsets are not path's
			data = data[i+1:]
		}
		return out
	}
	return nil
}

// sameFirstBytes reports whether the file starts with the bytes id's
// fingerprint covers.
func sameFirstBytes(path string, id Identity) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, id.FingerprintLen)
	if _, err := io.ReadFull(f, buf); err != nil {
		return false
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:8]) == id.Fingerprint
}

// Identity tells whether a file is the same file as before: device, inode,
// and a hash of its first bytes (inode numbers are reused).
type Identity struct {
	Dev         uint64 `json:"dev"`
	Inode       uint64 `json:"inode"`
	Fingerprint string `json:"fingerprint"`
	// FingerprintLen is how many bytes the fingerprint covers: a file
	// shorter than fingerprintSize when it was taken is re-hashed over as
	// many bytes when compared.
	FingerprintLen int `json:"fingerprint_len"`
}

// fingerprintSize is how many leading bytes identify a file.
const fingerprintSize = 256

// IdentityOf reads the identity of the file at path.
func IdentityOf(path string) (Identity, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return Identity{}, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Identity{}, 0, err
	}
	dev, ino := fileID(fi)
	buf := make([]byte, fingerprintSize)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return Identity{}, 0, fmt.Errorf("fingerprint %s: %w", path, err)
	}
	sum := sha256.Sum256(buf[:n])
	return Identity{Dev: dev, Inode: ino, Fingerprint: hex.EncodeToString(sum[:8]), FingerprintLen: n}, fi.Size(), nil
}

// Same reports whether the file at path is the file id was taken from.
func (id Identity) Same(path string) bool {
	now, _, err := IdentityOf(path)
	if err != nil || now.Dev != id.Dev || now.Inode != id.Inode {
		return false
	}
	if now.FingerprintLen == id.FingerprintLen {
		return now.Fingerprint == id.Fingerprint
	}
	// The file grew since: compare over the bytes the old fingerprint covered.
	return sameFirstBytes(path, id)
}

// FindRotated looks for the file with identity id among the siblings of
// path (mail.log.1, mail.log-20261124, ...), for a restart after rotation.
func FindRotated(path string, id Identity) (string, bool) {
	matches, _ := filepath.Glob(path + "*")
	more, _ := filepath.Glob(strings.TrimSuffix(path, filepath.Ext(path)) + "*")
	for _, m := range append(matches, more...) {
		if m != path && !strings.HasSuffix(m, ".gz") && id.Same(m) {
			return m, true
		}
	}
	return "", false
}
