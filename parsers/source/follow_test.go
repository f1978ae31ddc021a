package source

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// copyFile copies src to dst (as logrotate's copytruncate does).
func copyFile(t *testing.T, src, dst string) {
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

// TestFollowThroughRotations appends about 5,000 lines/s while the file is
// rotated 20 times, alternately by rename+create and by copytruncate: every
// line must be seen exactly once.
func TestFollowThroughRotations(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	followRotations(t, false)
}

// TestFollowPolling follows a file by polling (--poll): appended lines,
// then a rename+create rotation.
func TestFollowPolling(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mail.log")
	os.WriteFile(path, []byte("line 0\n"), 0o644)
	f := NewFollower(FollowConfig{Patterns: []string{path}, Poll: true, Rescan: 100 * time.Millisecond,
		Start: func(string) (int64, bool) { return 0, true }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lines := make(chan Line, 1024)
	go f.Run(ctx, lines)
	appendLines := func(from, to int) {
		w, _ := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		for i := from; i < to; i++ {
			fmt.Fprintf(w, "line %d\n", i)
		}
		w.Close()
	}
	seen := map[string]bool{}
	waitLines := func(n int) {
		deadline := time.After(20 * time.Second)
		for len(seen) < n {
			select {
			case l := <-lines:
				seen[l.Text] = true
			case <-deadline:
				t.Fatalf("saw %d of %d lines", len(seen), n)
			}
		}
	}
	waitLines(1)
	appendLines(1, 100)
	waitLines(100)
	os.Rename(path, path+".1")
	appendLines(100, 200)
	waitLines(200)
}

func followRotations(t *testing.T, poll bool) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mail.log")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f := NewFollower(FollowConfig{Patterns: []string{path}, Poll: poll, Rescan: 100 * time.Millisecond,
		Start: func(string) (int64, bool) { return 0, true }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lines := make(chan Line, 1024)
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, lines) }()

	const rotations, perRotation = 20, 500
	total := rotations*perRotation + 50 // and a last batch after the last rotation
	seen := make(map[int]int, total)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for l := range lines {
			n, err := strconv.Atoi(strings.TrimPrefix(l.Text, "line "))
			if err != nil {
				t.Errorf("garbled line %q", l.Text)
				continue
			}
			seen[n]++
			if len(seen) == total {
				return
			}
		}
	}()

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
			// rename+create
			w.Close()
			if err := os.Rename(path, rotated); err != nil {
				t.Fatal(err)
			}
			if w, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
				t.Fatal(err)
			}
		} else {
			// copytruncate
			copyFile(t, path, rotated)
			if err := w.Truncate(0); err != nil {
				t.Fatal(err)
			}
		}
		bw.Reset(w)
	}
	// The writer goes on after the last rotation, as a mail server does;
	// lines that were only in the copy are recovered when the next comes.
	for j := 0; j < 50; j++ {
		fmt.Fprintf(bw, "line %d\n", n)
		n++
	}
	bw.Flush()
	w.Close()
	select {
	case <-collected:
	case <-time.After(15 * time.Second):
		var missing []int
		for i := 0; i < total && len(missing) < 30; i++ {
			if seen[i] == 0 {
				missing = append(missing, i)
			}
		}
		t.Fatalf("saw %d of %d lines; missing %v", len(seen), total, missing)
	}
	cancel()
	<-done
	for i := 0; i < total; i++ {
		if seen[i] != 1 {
			t.Errorf("line %d seen %d times", i, seen[i])
			if i > 20 {
				break
			}
		}
	}
}
