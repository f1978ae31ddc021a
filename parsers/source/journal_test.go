package source

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestFollowJournalRestartsJournalctl runs a stand-in for journalctl that
// prints its arguments and a line longer than the limit, then exits: its
// lines arrive as the unit's input, the over-long one is counted, and it is
// started again after a backoff.
func TestFollowJournalRestartsJournalctl(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no shell")
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "journalctl")
	script := "#!/bin/sh\necho \"args $*\"\nhead -c 300000 /dev/zero | tr '\\0' x; echo\necho after\nexit 1\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan Batch, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		FollowJournal(ctx, JournalConfig{Unit: "postfix@-.service", CursorFile: filepath.Join(dir, "cursor"), Command: fake,
			MinBackoff: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(testLog{t}, nil))}, out)
	}()
	var lines []string
	var tooLong uint64
	deadline := time.After(10 * time.Second)
	for len(lines) < 4 {
		select {
		case b := <-out:
			if b.Input != "journal:postfix@-.service" || b.Positioned {
				t.Errorf("batch %+v", b)
			}
			lines = append(lines, b.Lines...)
			tooLong += b.TooLong
		case <-deadline:
			t.Fatalf("lines %q", lines)
		}
	}
	cancel()
	<-done
	if !strings.Contains(lines[0], "--unit=postfix@-.service") || !strings.Contains(lines[0], "--cursor-file=") || lines[1] != "after" || lines[2] != lines[0] {
		t.Errorf("lines %q", lines)
	}
	if tooLong < 2 {
		t.Errorf("too long: %d, want one per run", tooLong)
	}
}
