package source

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// copyFile copies src to dst (as logrotate's copytruncate does).
func copyFile(t testing.TB, src, dst string) {
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	out.Close()
}

// gzipFile compresses src into dst and removes src (logrotate's compress).
func gzipFile(t testing.TB, src, dst string) {
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	zw.Write(data)
	zw.Close()
	f.Close()
	os.Remove(src)
}

func appendLines(t testing.TB, path string, from, to int) {
	t.Helper()
	w, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(w)
	for i := from; i < to; i++ {
		fmt.Fprintf(bw, "line %d\n", i)
	}
	bw.Flush()
	w.Close()
}

// testLog sends the follower's log to the test's.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// collector runs a follower and counts the lines it hands over.
type collector struct {
	t         *testing.T
	mu        sync.Mutex
	seen      map[int]int
	inputs    map[string]int // lines by input
	closed    []string
	tooLong   uint64
	positions Positions
	cancel    context.CancelFunc
	done      chan struct{}
	f         *Follower
}

func startFollower(t *testing.T, cfg FollowConfig) *collector {
	t.Helper()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	if cfg.Rescan == 0 {
		cfg.Rescan = 100 * time.Millisecond
	}
	if cfg.RotateGrace == 0 {
		cfg.RotateGrace = 300 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testLog{t}, nil))
	}
	c := &collector{t: t, seen: map[int]int{}, inputs: map[string]int{}, positions: Positions{}, done: make(chan struct{}), f: NewFollower(cfg)}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	out := make(chan Batch, 16)
	go func() {
		defer close(c.done)
		c.f.Run(ctx, out)
	}()
	go func() {
		for {
			select {
			case b := <-out:
				c.mu.Lock()
				for _, l := range b.Lines {
					n, err := strconv.Atoi(strings.TrimPrefix(l, "line "))
					if err != nil {
						t.Errorf("garbled line %q", l)
						continue
					}
					c.seen[n]++
					c.inputs[b.Input]++
				}
				if b.Closed {
					c.closed = append(c.closed, b.Input)
				}
				c.tooLong += b.TooLong
				c.positions.Advance(&b)
				c.mu.Unlock()
			case <-c.done:
				return
			}
		}
	}()
	select {
	case <-c.f.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("follower not ready")
	}
	t.Cleanup(c.stop)
	return c
}

// stop stops the follower and returns the positions handed over.
func (c *collector) stop() {
	c.cancel()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		c.t.Fatal("follower did not stop")
	}
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// wait waits until lines [0, n) were all seen.
func (c *collector) wait(n int) {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for c.count() < n {
		if time.Now().After(deadline) {
			c.t.Fatalf("saw %d of %d lines; missing %v", c.count(), n, c.missing(n))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *collector) missing(n int) []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for i := 0; i < n && len(out) < 20; i++ {
		if c.seen[i] == 0 {
			out = append(out, i)
		}
	}
	return out
}

// exactlyOnce checks that lines [0, n) were each seen once and no other.
func (c *collector) exactlyOnce(n int) {
	c.t.Helper()
	time.Sleep(100 * time.Millisecond) // let a duplicate show up
	c.mu.Lock()
	defer c.mu.Unlock()
	bad := 0
	for i := 0; i < n; i++ {
		if c.seen[i] != 1 && bad < 20 {
			c.t.Errorf("line %d seen %d times", i, c.seen[i])
			bad++
		}
	}
	if len(c.seen) != n {
		c.t.Errorf("saw %d distinct lines, want %d", len(c.seen), n)
	}
}

// TestFollowThroughRotations appends about 5,000 lines/s while the file is
// rotated 20 times, alternately by rename+create and by copytruncate: every
// line must be seen exactly once.
func TestFollowThroughRotations(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	for _, poll := range []bool{false, true} {
		t.Run(fmt.Sprintf("poll=%v", poll), func(t *testing.T) { followThroughRotations(t, poll) })
	}
}

func followThroughRotations(t *testing.T, poll bool) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mail.log")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := startFollower(t, FollowConfig{Patterns: []string{path}, FromStart: true, Poll: poll})

	const rotations, perRotation = 20, 500
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(w)
	n := 0
	tick := time.NewTicker(10 * time.Millisecond) // 50 lines per tick: about 5,000 lines/s
	defer tick.Stop()
	for r := 0; r < rotations; r++ {
		for i := 0; i < perRotation/50; i++ {
			<-tick.C
			for j := 0; j < 50; j++ {
				fmt.Fprintf(bw, "line %d\n", n)
				n++
			}
			bw.Flush()
		}
		rotated := fmt.Sprintf("%s.%d", path, r+1)
		if r%2 == 0 {
			w.Close()
			if err := os.Rename(path, rotated); err != nil {
				t.Fatal(err)
			}
			if w, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
				t.Fatal(err)
			}
		} else {
			if poll {
				// Polling cannot see a file that was created, filled and
				// copytruncated between two of its looks (the README's
				// limit: two rotations within one poll interval). On a
				// starved machine 100 ms can be one look, so the new file
				// must have been seen before it is truncated.
				c.wait(n)
			}
			copyFile(t, path, rotated)
			if err := w.Truncate(0); err != nil {
				t.Fatal(err)
			}
		}
		bw.Reset(w)
	}
	for j := 0; j < 50; j++ {
		fmt.Fprintf(bw, "line %d\n", n)
		n++
	}
	bw.Flush()
	w.Close()
	c.wait(n)
	c.exactlyOnce(n)
}

// TestFirstStartReadsEveryFileFromItsEnd: without saved state, every file
// present at the start is read from its end (history is analyze's job),
// and what is appended afterwards is read.
func TestFirstStartReadsEveryFileFromItsEnd(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for i, name := range []string{"mail.log", "mail.warn", "mail.err"} {
		p := filepath.Join(dir, name)
		appendLines(t, p, 100000*(i+1), 100000*(i+1)+50) // history
		paths = append(paths, p)
	}
	c := startFollower(t, FollowConfig{Patterns: []string{paths[0], filepath.Join(dir, "mail.[we]*")}, FirstStart: true})
	for i, p := range paths {
		appendLines(t, p, i*10, i*10+10)
	}
	c.wait(30)
	c.exactlyOnce(30)
}

// TestFollowsAPathWhoseDirectoryAppearsLater: a log whose directory does
// not exist at start is followed from its first line once it appears, and
// the follower says it is missing meanwhile.
func TestFollowsAPathWhoseDirectoryAppearsLater(t *testing.T) {
	for _, poll := range []bool{false, true} {
		t.Run(fmt.Sprintf("poll=%v", poll), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "lab", "logs", "mail.log")
			c := startFollower(t, FollowConfig{Patterns: []string{path}, FirstStart: true, Poll: poll})
			st := c.f.Status()
			if len(st) != 1 || st[0].Following || st[0].Errors["missing"] != 1 || st[0].Problem == "" {
				t.Errorf("status while missing: %+v", st)
			}
			time.Sleep(2 * time.Second)
			os.MkdirAll(filepath.Dir(path), 0o755)
			appendLines(t, path, 0, 100)
			c.wait(100)
			appendLines(t, path, 100, 200)
			c.wait(200)
			c.exactlyOnce(200)
			if st := c.f.Status(); !st[0].Following || st[0].Problem != "" {
				t.Errorf("status once there: %+v", st)
			}
		})
	}
}

// TestGlobReadsEveryLineOnce follows mail.log* (the glob the README gives
// analyze) through rename rotations with delayed compression: the rotated
// files and the .gz members match the glob too, and every line is read
// once.
func TestGlobReadsEveryLineOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mail.log")
	appendLines(t, path, -1, 0) // "line -1": history, before the start
	c := startFollower(t, FollowConfig{Patterns: []string{path + "*"}, FirstStart: true})
	n := 0
	for r := 0; r < 4; r++ {
		appendLines(t, path, n, n+500)
		n += 500
		c.wait(n)
		// logrotate with delaycompress: .1 → .2.gz, mail.log → .1
		if _, err := os.Stat(path + ".1"); err == nil {
			gzipFile(t, path+".1", path+".2.gz")
		}
		os.Rename(path, path+".1")
		appendLines(t, path+".1", n, n+20) // the daemon writes on until told to reopen
		n += 20
		appendLines(t, path, n, n+30)
		n += 30
		c.wait(n)
	}
	time.Sleep(500 * time.Millisecond) // rescans find the rotated names
	c.mu.Lock()
	delete(c.seen, -1)
	c.mu.Unlock()
	c.exactlyOnce(n)
}

// TestRotationsWhileDown: positions saved by one run let the next read the
// rest of a file rotated by rename, or by copytruncate, while it was down.
func TestRotationsWhileDown(t *testing.T) {
	for _, how := range []string{"rename", "copytruncate"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "mail.log")
			os.WriteFile(path, nil, 0o644)
			c := startFollower(t, FollowConfig{Patterns: []string{path}, FirstStart: true})
			appendLines(t, path, 0, 4000)
			c.wait(4000)
			c.stop()
			saved := c.positions.Clone()

			appendLines(t, path, 4000, 6000) // while down
			switch how {
			case "rename":
				os.Rename(path, path+".1")
			case "copytruncate":
				copyFile(t, path, path+".1")
				os.Truncate(path, 0)
			}
			appendLines(t, path, 6000, 8000)

			c2 := startFollower(t, FollowConfig{Patterns: []string{path}, Positions: saved, Saved: time.Now()})
			c2.wait(8000 - 4000)
			c2.mu.Lock()
			for i := 0; i < 4000; i++ {
				if c2.seen[i] != 0 {
					t.Errorf("line %d read again", i)
					break
				}
				c2.seen[i] = 1
			}
			c2.mu.Unlock()
			c2.exactlyOnce(8000)
		})
	}
}

// TestOverlongLineInAFollowedFile: a 300 KiB line is counted as too long
// and the lines after it are read.
func TestOverlongLineInAFollowedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mail.log")
	os.WriteFile(path, nil, 0o644)
	c := startFollower(t, FollowConfig{Patterns: []string{path}, FirstStart: true})
	appendLines(t, path, 0, 10)
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	f.Write([]byte(strings.Repeat("x", 300<<10) + "\n"))
	f.Close()
	appendLines(t, path, 10, 20)
	c.wait(20)
	c.exactlyOnce(20)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tooLong != 1 {
		t.Errorf("too long: %d, want 1", c.tooLong)
	}
}

// TestFIFOAndRemovedFile: a FIFO matched by the glob never blocks the other
// files, and a file that no glob matches any more is closed (its state can
// go); stopping is prompt with the FIFO open.
func TestFIFOAndRemovedFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no FIFOs")
	}
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "a.log"), 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	b := filepath.Join(dir, "b.log")
	other := filepath.Join(dir, "c.log")
	os.WriteFile(b, nil, 0o644)
	os.WriteFile(other, nil, 0o644)
	c := startFollower(t, FollowConfig{Patterns: []string{filepath.Join(dir, "*.log")}, FirstStart: true})
	appendLines(t, b, 0, 100)
	c.wait(100)
	os.Remove(other)
	waitFor(t, "the removed file to be closed", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.closed) == 1 && c.closed[0] == other
	})
	appendLines(t, b, 100, 200)
	c.wait(200)
	start := time.Now()
	c.stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stopping took %v", d)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkCopytruncateCatchUp measures reading the rest of a copytruncated
// file: 64 MiB unread when the rotation comes. It must be linear (the
// follower once read it in quadratic time).
func BenchmarkCopytruncateCatchUp(b *testing.B) {
	for _, mib := range []int{16, 64} {
		b.Run(fmt.Sprintf("%dMiB", mib), func(b *testing.B) { benchmarkCatchUp(b, mib<<20) })
	}
}

func benchmarkCatchUp(b *testing.B, unread int) {
	dir := b.TempDir()
	path := filepath.Join(dir, "mail.log")
	line := strings.Repeat("x", 199) + "\n"
	var content strings.Builder
	for content.Len() < unread {
		content.WriteString(line)
	}
	first := line + line // the copy is recognised by its first bytes
	b.SetBytes(int64(unread))
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		os.WriteFile(path, []byte(first), 0o644)
		f := NewFollower(FollowConfig{Patterns: []string{path}, FromStart: true, PollInterval: 5 * time.Millisecond})
		ctx, cancel := context.WithCancel(context.Background())
		out := make(chan Batch, 64)
		done := make(chan struct{})
		go func() { defer close(done); f.Run(ctx, out) }()
		for got := 0; got < 2; {
			got += len((<-out).Lines)
		}
		os.WriteFile(path+".1", []byte(first+content.String()), 0o644)
		b.StartTimer()
		os.Truncate(path, 0)
		appendLinesB(path, "after\n")
		got := 0
		timeout := time.After(time.Minute)
		for got < unread/200+1 {
			select {
			case bt := <-out:
				got += len(bt.Lines)
			case <-timeout:
				b.Fatalf("read %d of %d lines", got, unread/200+1)
			}
		}
		b.StopTimer()
		cancel()
		<-done
		b.StartTimer()
	}
}

func appendLinesB(path, s string) {
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	f.WriteString(s)
	f.Close()
}

// TestCopytruncateRegrownBeforeSeen: the file is copied, truncated and
// written again past the follower's offset before the follower looks (lines
// of one length keep the offsets aligned, so nothing looks garbled): the
// rest of the copy and the new file are read, each line once.
func TestCopytruncateRegrownBeforeSeen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mail.log")
	appendLines(t, path, 1000, 1100)
	c := startFollower(t, FollowConfig{Patterns: []string{path}, FromStart: true, Poll: true, PollInterval: time.Second})
	c.wait(0)
	waitFor(t, "the first lines", func() bool { return c.count() == 100 })
	appendLines(t, path, 1100, 1110) // unread when the rotation comes
	copyFile(t, path, path+".1")
	os.Truncate(path, 0)
	appendLines(t, path, 2000, 2150) // past the old offset
	waitFor(t, "every line", func() bool { return c.count() == 260 })
	time.Sleep(1200 * time.Millisecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	for n, k := range c.seen {
		if k != 1 {
			t.Errorf("line %d seen %d times", n, k)
		}
	}
	if len(c.seen) != 260 {
		t.Errorf("saw %d lines, want 260", len(c.seen))
	}
}

// TestStatusWhileFollowing reads Status while the follower reads and
// rotates (run with -race: /metrics asks at any time).
func TestStatusWhileFollowing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mail.log")
	os.WriteFile(path, nil, 0o644)
	c := startFollower(t, FollowConfig{Patterns: []string{path}, FromStart: true})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			c.f.Status()
			time.Sleep(time.Millisecond)
		}
	}()
	for r := 0; r < 5; r++ {
		appendLines(t, path, r*100, r*100+100)
		c.wait(r*100 + 100)
		copyFile(t, path, fmt.Sprintf("%s.%d", path, r+1))
		os.Truncate(path, 0)
	}
	<-done
	if st := c.f.Status(); len(st) != 1 || !st[0].Following {
		t.Errorf("status %+v", st)
	}
}

// TestReusedInodeIsANewFile: logrotate with delaycompress removes
// mail.log.1 just before it creates the new mail.log, and ext4 hands the
// new file the removed one's inode at once. The new file must be read from
// its start, not from where the removed one was left (lines were lost:
// 612 of 900 in a loop of this test before the fix).
func TestReusedInodeIsANewFile(t *testing.T) {
	t.Run("the same key with other first bytes", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "mail.log")
		appendLines(t, path, 0, 100)
		fh, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		fi, _ := fh.Stat()
		id, err := identityOfFile(fh, fi)
		if err != nil {
			t.Fatal(err)
		}
		f := NewFollower(FollowConfig{Patterns: []string{path}})
		key := keyOf(path, fi)
		f.release(key, id, fi.Size())
		if off, ok := f.readUpTo(key, fh); !ok || off != fi.Size() {
			t.Errorf("the same file: readUpTo %d %v, want %d", off, ok, fi.Size())
		}
		// Another file behind the same key (the inode reused): lines that
		// do not start like the old file's.
		other := filepath.Join(dir, "other")
		appendLines(t, other, 5000, 5300)
		oh, err := os.Open(other)
		if err != nil {
			t.Fatal(err)
		}
		defer oh.Close()
		if off, ok := f.readUpTo(key, oh); ok || off != 0 {
			t.Errorf("another file with the key: readUpTo %d %v, want it read from its start", off, ok)
		}
	})
	t.Run("delaycompress rotations", func(t *testing.T) {
		for iter := 0; iter < 5; iter++ {
			dir := t.TempDir()
			path := filepath.Join(dir, "mail.log")
			os.WriteFile(path+".1", []byte("history: not read\n"), 0o644)
			os.WriteFile(path, nil, 0o644)
			c := startFollower(t, FollowConfig{Patterns: []string{path + "*"}, FirstStart: true})
			n := 0
			for r := 0; r < 3; r++ {
				appendLines(t, path, n, n+300)
				n += 300
				c.wait(n)
				if r == 2 {
					break
				}
				gzipFile(t, path+".1", path+".2.gz") // removes mail.log.1
				os.Rename(path, path+".1")
				os.WriteFile(path, nil, 0o644) // often the inode mail.log.1 had
				time.Sleep(time.Duration(iter) * 30 * time.Millisecond)
			}
			c.stop()
			c.mu.Lock()
			delete(c.seen, -1)
			c.mu.Unlock()
			c.exactlyOnce(n)
		}
	})
}
