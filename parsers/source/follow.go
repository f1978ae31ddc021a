package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Batch is lines read together from one input, handed downstream in input
// order. Its lines stay valid after it was handed over.
type Batch struct {
	// Input names the input the lines count in: the followed path, "-" for
	// stdin or "journal:UNIT".
	Input string
	// Positioned says the lines came from a file that has a position: File
	// is that file's identity and End the offset just after the last line
	// (or the last line skipped as too long). A rotated file drained after
	// its path moved on is still Input's: its identity is in File.
	Positioned bool
	File       Identity
	End        int64
	// Lines are the lines, without line ends; empty lines are dropped.
	Lines []string
	// TooLong counts lines skipped because they were longer than the limit.
	TooLong uint64
	// Closed says the input is no longer followed (a glob no longer
	// matches it): its state and series can go. It carries no lines.
	Closed bool
}

// FollowConfig configures a Follower.
type FollowConfig struct {
	// Patterns are file paths or globs. A plain path is followed even
	// while it does not exist (nor its directory); a glob follows what it
	// matches at each rescan.
	Patterns []string
	// Positions are the positions saved by an earlier run; nil on a first
	// start.
	Positions Positions
	// FirstStart says there is no saved state: files present at the first
	// scan are read from their end (history is analyze's job), unless
	// FromStart.
	FirstStart bool
	// FromStart reads files present at the first scan from their beginning.
	FromStart bool
	// Saved is when Positions were saved: after a restart, a file without a
	// position is read from its beginning when it was created after that
	// (it appeared while relaywatch was down), and from its end otherwise.
	Saved time.Time
	// Poll turns off change notifications (inotify): files are only
	// looked at every PollInterval (file systems without notifications).
	// With notifications, polling stays the safety net.
	Poll bool
	// PollInterval is how often an idle file is looked at for new lines,
	// rotation and truncation (default 250ms).
	PollInterval time.Duration
	// Rescan is how often globs are matched again (default 5s); a rotation
	// seen by a follower triggers a rescan at once.
	Rescan time.Duration
	// RotateGrace is how long a file renamed away is still read after it
	// stopped growing (a syslog daemon writes to it until told to reopen;
	// default 5s).
	RotateGrace time.Duration
	// MaxLineLength bounds lines (default MaxLineLength).
	MaxLineLength int
	// Logger hears of files followed, rotations, catch-ups and problems
	// (each problem once until it changes). Default: discard.
	Logger *slog.Logger
}

// fileKey identifies an open file: device and inode, or the path where the
// system has none (Windows).
type fileKey struct {
	dev, ino uint64
	path     string
}

func keyOf(path string, fi os.FileInfo) fileKey {
	dev, ino := fileID(fi)
	if dev == 0 && ino == 0 {
		return fileKey{path: path}
	}
	return fileKey{dev: dev, ino: ino}
}

// InputStatus is what the follower knows about one followed path.
type InputStatus struct {
	// Path is the followed path.
	Path string
	// Following is true while a file is open at Path.
	Following bool
	// Offset is how far the open file was read; Size its size when last
	// looked at.
	Offset, Size int64
	// Problem is the current problem with the path ("" when none): it does
	// not exist, cannot be read, ...
	Problem string
	// Errors counts problems by reason (missing, permission, read, other)
	// since the path was first followed.
	Errors map[string]uint64
}

// Follower follows the files that match patterns. It owns its files: it
// keeps a rotated file open and reads it to its end, recognises rotation by
// file identity (device, inode and the fingerprint of the first bytes) and
// truncation by size and fingerprint, finds the rest of a file rotated by
// rename or copytruncate after downtime, reads every file once whatever
// names it has had (a glob such as mail.log* matches the rotated copies
// too), skips compressed members, never blocks on a FIFO, and retries paths
// that are missing or unreadable.
type Follower struct {
	cfg FollowConfig
	log *slog.Logger

	mu    sync.Mutex
	paths map[string]*pathFollower
	held  map[fileKey]string // open files and the path holding each
	// seen are the files read this run and how far (after closing), with
	// their identity: a new file that got a removed one's inode (ext4
	// reuses them at once: logrotate's delaycompress removes mail.log.1
	// just before it creates the new mail.log) starts with other bytes.
	seen       map[fileKey]Position
	saved      map[fileKey]Position
	savedPaths Positions // consumed as paths are first opened
	firstScan  bool
	ready      chan struct{}
	rescan     chan struct{}
	notify     *notifier // nil with Poll or where the system has none
	out        chan<- Batch
	wg         sync.WaitGroup
}

// NewFollower returns a follower; Run starts it.
func NewFollower(cfg FollowConfig) *Follower {
	if cfg.Rescan <= 0 {
		cfg.Rescan = 5 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 250 * time.Millisecond
	}
	if cfg.RotateGrace <= 0 {
		cfg.RotateGrace = 5 * time.Second
	}
	if cfg.MaxLineLength <= 0 {
		cfg.MaxLineLength = MaxLineLength
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Follower{
		cfg: cfg, log: log, paths: map[string]*pathFollower{}, held: map[fileKey]string{},
		seen: map[fileKey]Position{}, saved: map[fileKey]Position{}, savedPaths: cfg.Positions.Clone(), firstScan: true,
		ready: make(chan struct{}), rescan: make(chan struct{}, 1),
	}
	for _, p := range cfg.Positions {
		k := fileKey{dev: p.Identity.Dev, ino: p.Identity.Inode}
		if k.dev == 0 && k.ino == 0 {
			continue // matched by path and fingerprint instead
		}
		if old, ok := f.saved[k]; !ok || p.Offset > old.Offset {
			f.saved[k] = p
		}
	}
	return f
}

// Ready is closed once the first scan has opened every file present then:
// lines written after it are not skipped.
func (f *Follower) Ready() <-chan struct{} { return f.ready }

// Status returns the state of every followed path, sorted by path.
func (f *Follower) Status() []InputStatus {
	f.mu.Lock()
	pfs := make([]*pathFollower, 0, len(f.paths))
	for _, pf := range f.paths {
		pfs = append(pfs, pf)
	}
	f.mu.Unlock()
	out := make([]InputStatus, 0, len(pfs))
	for _, pf := range pfs {
		out = append(out, pf.status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Run follows until ctx is done, sending batches of lines to out, and
// returns once every file was closed. out is the caller's and stays open.
func (f *Follower) Run(ctx context.Context, out chan<- Batch) error {
	f.out = out
	if !f.cfg.Poll {
		f.notify = newNotifier(f.requestRescan)
		defer f.notify.close()
	}
	tick := time.NewTicker(f.cfg.Rescan)
	defer tick.Stop()
	for {
		f.scan(ctx)
		if f.firstScan {
			f.firstScan = false
			close(f.ready)
		}
		select {
		case <-ctx.Done():
			f.wg.Wait()
			return nil
		case <-tick.C:
		case <-f.rescan:
		}
	}
}

// requestRescan asks for a scan soon (a follower saw its path change).
func (f *Follower) requestRescan() {
	select {
	case f.rescan <- struct{}{}:
	default:
	}
}

// matches returns the paths the patterns name now, and which of them were
// named as plain paths (followed even while missing).
func (f *Follower) matches() map[string]bool {
	found := map[string]bool{}
	for _, p := range f.cfg.Patterns {
		if strings.ContainsAny(p, "*?[") {
			if _, err := os.Lstat(p); err != nil { // a file may have such a name
				m, err := filepath.Glob(p)
				if err != nil {
					f.log.Error("bad glob", "pattern", p, "err", err)
				}
				for _, x := range m {
					if _, named := found[x]; !named {
						found[x] = false
					}
				}
				continue
			}
		}
		found[p] = true
	}
	return found
}

// scan starts following new matches and stops following paths no glob
// matches any more.
func (f *Follower) scan(ctx context.Context) {
	found := f.matches()
	var start []string
	f.mu.Lock()
	for p, pf := range f.paths {
		if _, ok := found[p]; !ok {
			delete(f.paths, p)
			pf.stop()
		}
	}
	for p, named := range found {
		if _, ok := f.paths[p]; ok {
			continue
		}
		if !named && skipMember(p) {
			continue
		}
		start = append(start, p)
	}
	first := f.firstScan
	f.mu.Unlock()
	sort.Strings(start)
	// The files the patterns match now: a rotated file that one of them
	// names is read by that path's follower, not by another path's
	// catch-up after a restart. Only needed when a path starts.
	matchedKeys := map[fileKey]bool{}
	if len(start) > 0 {
		for p := range found {
			if fi, err := os.Stat(p); err == nil {
				matchedKeys[keyOf(p, fi)] = true
			}
		}
	}
	for _, p := range start {
		pf := &pathFollower{f: f, path: p, errs: map[string]uint64{}, parent: ctx, wake: make(chan struct{}, 1)}
		pf.ctx, pf.cancel = context.WithCancel(ctx)
		// The first open happens here so that Ready means every file
		// present at the first scan is open at its starting offset.
		pf.openCurrent(first, matchedKeys)
		f.mu.Lock()
		f.paths[p] = pf
		f.mu.Unlock()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			pf.run()
		}()
	}
}

// skipMember reports whether a glob match is a compressed member of a
// rotated set (read by analyze, never followed): by name or by content.
func skipMember(path string) bool {
	for _, ext := range []string{".gz", ".bz2", ".xz", ".zst", ".zip"} {
		if strings.HasSuffix(path, ext) {
			return true
		}
	}
	fh, err := os.OpenFile(path, openFlags, 0)
	if err != nil {
		return false
	}
	defer fh.Close()
	if fi, err := fh.Stat(); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	var magic [2]byte
	n, _ := io.ReadFull(fh, magic[:])
	return n == 2 && magic == [2]byte{0x1f, 0x8b}
}

// claim marks key as held by path; false if another path holds it.
func (f *Follower) claim(key fileKey, path string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.held[key]; ok && p != path {
		return false
	}
	f.held[key] = path
	return true
}

// release notes how far a file (id) was read when its holder closes it.
func (f *Follower) release(key fileKey, id Identity, offset int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.held, key)
	f.seen[key] = Position{Identity: id, Offset: offset}
	if len(f.seen) > 4096 { // bound: forget the oldest file identities
		for k := range f.seen {
			delete(f.seen, k)
			if len(f.seen) <= 2048 {
				break
			}
		}
	}
}

// takeSavedPath returns the position an earlier run saved for path, once:
// it tells what the path held before a restart, not after a rotation seen
// while running.
func (f *Follower) takeSavedPath(path string) (Position, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.savedPaths[path]
	delete(f.savedPaths, path)
	return p, ok
}

// readUpTo returns how far the file with key was read this run, or by an
// earlier run, if it is the same file: same key and same first bytes.
func (f *Follower) readUpTo(key fileKey, fh *os.File) (int64, bool) {
	f.mu.Lock()
	seen, wasSeen := f.seen[key]
	saved, wasSaved := f.saved[key]
	f.mu.Unlock()
	if wasSeen {
		if seen.Identity.startsFile(fh) {
			return seen.Offset, true
		}
		return 0, false // another file with a reused inode
	}
	if wasSaved && saved.Identity.startsFile(fh) {
		return saved.Offset, true
	}
	return 0, false
}

// openFile is one open file of a path follower.
type openFile struct {
	fh       *os.File
	key      fileKey
	id       Identity
	lr       *LineReader
	regular  bool
	tooLong  uint64
	lastData time.Time // wall clock of the last growth
	// read mirrors lr.Offset() for Status, which runs on another goroutine.
	read atomic.Int64
}

// pathFollower follows one path: the file at it now, and the files that
// were at it before (renamed away), until they have been quiet for the
// grace period.
type pathFollower struct {
	f       *Follower
	path    string
	parent  context.Context // the follower's
	ctx     context.Context
	cancel  context.CancelFunc
	removed atomic.Bool
	wake    chan struct{} // a change in the directory (notifier)
	watched bool          // the notifier watches the directory

	mu      sync.Mutex // guards the fields below for status()
	cur     *openFile
	old     []*openFile // renamed away or truncated copies, oldest first
	problem string
	errs    map[string]uint64
	size    int64
}

// wakeUp makes the follower look at its files now.
func (pf *pathFollower) wakeUp() {
	select {
	case pf.wake <- struct{}{}:
	default:
	}
}

// stop stops following the path because no pattern matches it any more.
func (pf *pathFollower) stop() {
	pf.removed.Store(true)
	pf.cancel()
}

func (pf *pathFollower) status() InputStatus {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	st := InputStatus{Path: pf.path, Problem: pf.problem, Size: pf.size, Errors: map[string]uint64{}}
	for k, v := range pf.errs {
		st.Errors[k] = v
	}
	if pf.cur != nil {
		st.Following = true
		st.Offset = pf.cur.read.Load()
	}
	return st
}

// setProblem records a problem with the path, logging it once until it
// changes; "" clears it.
func (pf *pathFollower) setProblem(reason string, err error) {
	pf.mu.Lock()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	changed := msg != pf.problem
	pf.problem = msg
	if err != nil && changed {
		pf.errs[reason]++
	}
	pf.mu.Unlock()
	if !changed {
		return
	}
	switch {
	case err == nil:
		pf.f.log.Info("following file again", "file", pf.path)
	case reason == "missing":
		pf.f.log.Warn("file does not exist (yet): it is followed as soon as it appears", "file", pf.path)
	default:
		pf.f.log.Error("cannot read file: retrying", "file", pf.path, "reason", reason, "err", err)
	}
}

func reasonOf(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "missing"
	case errors.Is(err, fs.ErrPermission):
		return "permission"
	default:
		return "other"
	}
}

// openCurrent opens the file at the path, if any, at the offset its history
// says; first is true during the first scan. matched are the files that the
// patterns match now (a rotated file found under a matched name is read by
// that name's follower).
func (pf *pathFollower) openCurrent(first bool, matched map[fileKey]bool) {
	fh, err := os.OpenFile(pf.path, openFlags, 0)
	if err != nil {
		pf.setProblem(reasonOf(err), err)
		return
	}
	fi, err := fh.Stat()
	if err != nil {
		fh.Close()
		pf.setProblem("other", err)
		return
	}
	if fi.IsDir() {
		fh.Close()
		pf.setProblem("other", fmt.Errorf("%s is a directory", pf.path))
		return
	}
	key := keyOf(pf.path, fi)
	if !pf.f.claim(key, pf.path) {
		fh.Close() // another path reads it (a rotated file's old name)
		return
	}
	of := &openFile{fh: fh, key: key, regular: fi.Mode().IsRegular(), lastData: time.Now()}
	var start int64
	if of.regular {
		of.id, _ = identityOfFile(fh, fi)
		start = pf.startOffset(of, fi, first, matched)
		if _, err := fh.Seek(start, io.SeekStart); err != nil {
			pf.f.release(key, of.id, 0)
			fh.Close()
			pf.setProblem("other", err)
			return
		}
	}
	of.lr = NewLineReader(fh, start, pf.f.cfg.MaxLineLength)
	of.read.Store(start)
	pf.mu.Lock()
	pf.cur = of
	pf.size = fi.Size()
	pf.mu.Unlock()
	pf.setProblem("", nil)
	pf.f.log.Info("following file", "file", pf.path, "offset", start, "size", fi.Size())
}

// startOffset decides where a newly opened file starts.
func (pf *pathFollower) startOffset(of *openFile, fi os.FileInfo, first bool, matched map[fileKey]bool) int64 {
	cfg := &pf.f.cfg
	size := fi.Size()
	saved, hasSaved := pf.f.takeSavedPath(pf.path)
	if off, ok := pf.f.readUpTo(of.key, of.fh); ok {
		if off <= size {
			return off
		}
		return 0 // truncated since
	}
	if hasSaved {
		// The path has a history but holds another file now: it was
		// rotated (or truncated) while relaywatch was down. Read the rest
		// of the old file first, unless another followed name holds it.
		oldKey := fileKey{dev: saved.Identity.Dev, ino: saved.Identity.Inode}
		noInode := oldKey == fileKey{} // Windows: the fingerprint alone tells
		if (oldKey == of.key || noInode && saved.Identity.FingerprintLen > 0) && saved.Identity.startsFile(of.fh) && saved.Offset <= size {
			return saved.Offset
		}
		if !matched[oldKey] || oldKey == of.key {
			pf.catchUpRotated(saved, of.key)
		}
		return 0
	}
	if pf.f.firstScan && first {
		switch {
		case cfg.FromStart:
			return 0
		case cfg.FirstStart:
			return size
		case bornAfter(pf.path, fi, cfg.Saved):
			return 0 // appeared while relaywatch was down
		default:
			return size
		}
	}
	return 0 // appeared while following: all of it is new
}

// catchUpRotated finds the file a saved position was taken from among the
// path's siblings (renamed, or a copy made by copytruncate) and queues its
// rest to be read before the path's new file.
func (pf *pathFollower) catchUpRotated(saved Position, exclude fileKey) {
	cand, ok := findRotated(pf.path, saved.Identity, exclude)
	if !ok {
		pf.f.log.Warn("file was rotated while relaywatch was down and its old copy was not found: lines written after the last save may be missing",
			"file", pf.path, "offset", saved.Offset)
		return
	}
	pf.addOld(cand, saved.Offset, "rotated while down")
}

// addOld opens another file whose rest from offset belongs to this path
// (a rotated file, the copy of a truncated one) and queues it for reading.
func (pf *pathFollower) addOld(path string, offset int64, why string) {
	fh, err := os.OpenFile(path, openFlags, 0)
	if err != nil {
		return
	}
	fi, err := fh.Stat()
	if err != nil || fi.Size() < offset {
		fh.Close()
		return
	}
	key := keyOf(path, fi)
	if !pf.f.claim(key, pf.path) {
		fh.Close()
		return
	}
	if _, err := fh.Seek(offset, io.SeekStart); err != nil {
		id, _ := identityOfFile(fh, fi)
		pf.f.release(key, id, offset)
		fh.Close()
		return
	}
	of := &openFile{fh: fh, key: key, regular: true, lastData: time.Now()}
	of.id, _ = identityOfFile(fh, fi)
	of.lr = NewLineReader(fh, offset, pf.f.cfg.MaxLineLength)
	pf.mu.Lock()
	pf.old = append(pf.old, of)
	pf.mu.Unlock()
	pf.f.log.Info("reading the rest of a rotated file", "file", pf.path, "from", path, "offset", offset, "size", fi.Size(), "why", why)
}

// run reads the path's files until the follower stops it or ctx ends.
func (pf *pathFollower) run() {
	defer pf.closeAll()
	// A FIFO's read parks until a writer writes: closing it is what wakes
	// the reader at shutdown.
	stopClose := context.AfterFunc(pf.ctx, func() {
		pf.mu.Lock()
		if pf.cur != nil && !pf.cur.regular {
			pf.cur.fh.Close()
		}
		pf.mu.Unlock()
	})
	defer stopClose()
	defer pf.f.notify.forget(pf)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-pf.ctx.Done():
			if pf.removed.Load() {
				pf.drain()
			}
			return
		case <-timer.C:
		case <-pf.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		if !pf.watched {
			pf.watched = pf.f.notify.watch(pf)
		}
		pf.step()
		timer.Reset(pf.f.cfg.PollInterval)
	}
}

// step reads what is new: the old files first (they hold older lines),
// then the current file; it looks for truncation before reading (a file
// truncated and written again past our offset must not be read on from
// there) and for rotation after.
func (pf *pathFollower) step() {
	pf.mu.Lock()
	olds := append([]*openFile(nil), pf.old...)
	pf.mu.Unlock()
	for _, of := range olds {
		if !pf.readToEnd(of) {
			return
		}
		if time.Since(of.lastData) > pf.f.cfg.RotateGrace {
			pf.closeOld(of)
		}
	}
	pf.mu.Lock()
	cur := pf.cur
	pf.mu.Unlock()
	if cur == nil {
		pf.openCurrent(false, nil)
		return
	}
	ok, truncated := pf.readChecked(cur, cur.regular, pf.ctx.Done())
	if truncated {
		pf.restartTruncated(cur)
		pf.step() // the copy's rest first, then the file from its start
		return
	}
	if !ok {
		return
	}
	if cur.regular {
		pf.checkRotation(cur)
	}
}

// readToEnd reads a file up to its current end and sends the lines; false
// when the follower is stopping.
func (pf *pathFollower) readToEnd(of *openFile) bool {
	ok, _ := pf.readChecked(of, false, pf.ctx.Done())
	return ok
}

// readChecked is readToEnd that, with check, looks for truncation before
// every read (a file truncated and written again past our offset must not
// be read on from there) and stops when it finds one. It gives up handing
// over lines once stop is closed; ok is false then.
func (pf *pathFollower) readChecked(of *openFile, check bool, stop <-chan struct{}) (ok, truncated bool) {
	for {
		if check && pf.truncated(of) {
			return true, true
		}
		lines, err := of.lr.Read(nil)
		tl := of.lr.TooLong() - of.tooLong
		of.tooLong = of.lr.TooLong()
		if len(lines) > 0 || tl > 0 {
			of.lastData = time.Now()
			if of.regular && of.id.FingerprintLen < fingerprintSize {
				// The file was short when first seen: its identity covers
				// more of its first bytes now, if they still start as
				// before (else it was truncated: the next step sees it).
				if id, ok := of.id.extend(of.fh); ok {
					of.id = id
				}
			}
			of.read.Store(of.lr.Offset())
			b := Batch{Input: pf.path, Positioned: of.regular, File: of.id, End: of.lr.Offset(), Lines: lines, TooLong: tl}
			select {
			case pf.f.out <- b:
			case <-stop:
				return false, false
			}
		}
		if err != nil {
			if err != io.EOF && !errors.Is(err, io.ErrNoProgress) && !errors.Is(err, os.ErrClosed) {
				pf.setProblem("read", err)
			}
			select {
			case <-stop:
				return false, false
			default:
				return true, false
			}
		}
	}
}

// truncated reports whether the open file is shorter than what was read of
// it, or no longer starts with the bytes it started with (truncated and
// written again past our offset).
func (pf *pathFollower) truncated(cur *openFile) bool {
	fi, err := cur.fh.Stat()
	if err != nil {
		return false
	}
	readPos := cur.lr.Offset() + int64(cur.lr.Pending())
	return fi.Size() < readPos || !cur.id.startsFile(cur.fh)
}

// restartTruncated handles copytruncate: the lines written between our
// last read and the truncation are only in the copy, a sibling that starts
// with the same bytes. Its rest is queued, and the file is read again from
// its start.
func (pf *pathFollower) restartTruncated(cur *openFile) {
	offset := cur.lr.Offset()
	if cand, ok := findRotated(pf.path, cur.id, cur.key); ok {
		pf.addOld(cand, offset, "truncated (copytruncate)")
	} else {
		pf.f.log.Warn("file was truncated and its copy was not found: lines written just before may be missing", "file", pf.path, "offset", offset)
	}
	if _, err := cur.fh.Seek(0, io.SeekStart); err != nil {
		pf.retire(cur, "truncated")
		return
	}
	if fi, err := cur.fh.Stat(); err == nil {
		cur.id, _ = identityOfFile(cur.fh, fi)
	}
	cur.lr = NewLineReader(cur.fh, 0, pf.f.cfg.MaxLineLength)
	cur.read.Store(0)
	cur.tooLong = 0
	pf.f.log.Info("file truncated: reading it from its start", "file", pf.path)
}

// checkRotation looks at what the path names now: the same file, another
// file (rotated: the old one is read on until quiet), or nothing.
func (pf *pathFollower) checkRotation(cur *openFile) {
	fi, err := os.Stat(pf.path)
	if err != nil {
		// Renamed or deleted: keep reading the old file for a while and
		// wait for the path to come back.
		pf.retire(cur, "the path is gone")
		pf.setProblem(reasonOf(err), err)
		return
	}
	pf.mu.Lock()
	pf.size = fi.Size()
	pf.mu.Unlock()
	if keyOf(pf.path, fi) != cur.key {
		pf.retire(cur, "rotated")
		pf.openCurrent(false, nil)
		return
	}
	if pf.truncated(cur) {
		pf.restartTruncated(cur)
		pf.step()
	}
}

// retire moves the current file to the old files, read until quiet.
func (pf *pathFollower) retire(cur *openFile, why string) {
	pf.mu.Lock()
	pf.cur = nil
	pf.old = append(pf.old, cur)
	pf.mu.Unlock()
	pf.f.log.Info("file rotated: reading the rest of the old file", "file", pf.path, "why", why)
	pf.f.requestRescan()
}

func (pf *pathFollower) closeOld(of *openFile) {
	pf.mu.Lock()
	for i, o := range pf.old {
		if o == of {
			pf.old = append(pf.old[:i], pf.old[i+1:]...)
			break
		}
	}
	pf.mu.Unlock()
	pf.f.release(of.key, of.id, of.lr.Offset())
	of.fh.Close()
}

// drain reads every open file to its end once more (stopping: a path no
// glob matches any more, or shutdown).
func (pf *pathFollower) drain() {
	pf.mu.Lock()
	files := append(append([]*openFile(nil), pf.old...), pf.cur)
	pf.mu.Unlock()
	for _, of := range files {
		if of == nil || !of.regular {
			continue
		}
		// Until the whole follower stops: what is not handed over then is
		// read again at the next start.
		if ok, _ := pf.readChecked(of, false, pf.parent.Done()); !ok {
			return
		}
	}
}

func (pf *pathFollower) closeAll() {
	pf.mu.Lock()
	files := append(append([]*openFile(nil), pf.old...), pf.cur)
	pf.cur, pf.old = nil, nil
	pf.mu.Unlock()
	for _, of := range files {
		if of != nil {
			pf.f.release(of.key, of.id, of.lr.Offset())
			of.fh.Close()
		}
	}
	if pf.removed.Load() {
		// Stopped because no glob matches it any more: its state can go.
		select {
		case pf.f.out <- Batch{Input: pf.path, Closed: true}:
		case <-pf.parent.Done():
		}
		pf.f.log.Info("stopped following file: no pattern matches it any more", "file", pf.path)
	}
}

// findRotated looks among the siblings of path for the file id was taken
// from: the same file renamed (same device and inode), or a copy made by
// copytruncate (same first bytes, another inode). exclude is the file at
// path now. Compressed members are skipped.
func findRotated(path string, id Identity, exclude fileKey) (string, bool) {
	if id.FingerprintLen == 0 && id.Dev == 0 && id.Inode == 0 {
		return "", false
	}
	matches, _ := filepath.Glob(globEscape(path) + "?*")
	more, _ := filepath.Glob(globEscape(strings.TrimSuffix(path, filepath.Ext(path))) + "*")
	seen := map[string]bool{}
	var byContent string
	for _, m := range append(matches, more...) {
		if m == path || seen[m] || skipMember(m) {
			continue
		}
		seen[m] = true
		fi, err := os.Stat(m)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		k := keyOf(m, fi)
		if k == exclude {
			continue
		}
		if id.Dev != 0 || id.Inode != 0 {
			if k.dev == id.Dev && k.ino == id.Inode && id.Same(m) {
				return m, true
			}
		}
		if byContent == "" && id.FingerprintLen >= minContentMatch && sameFirstBytes(m, id) {
			byContent = m
		}
	}
	return byContent, byContent != ""
}

// minContentMatch is how many first bytes a copy must share with a file to
// be taken for its copy (a syslog line's timestamp and host are in them).
const minContentMatch = 64

// globEscape escapes glob metacharacters in a literal path.
func globEscape(p string) string {
	var b strings.Builder
	for _, r := range p {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
