package source

import (
	"context"
	"errors"
	"log/slog"
	"os/exec"
	"time"
)

// JournalConfig configures FollowJournal.
type JournalConfig struct {
	// Unit is the systemd unit whose journal is followed (postfix@-.service).
	Unit string
	// CursorFile is journalctl's cursor file: a restart resumes after the
	// last entry read.
	CursorFile string
	// Command is the journalctl binary (default "journalctl").
	Command string
	// MaxLineLength bounds lines (default MaxLineLength).
	MaxLineLength int
	// Logger hears of starts, exits and restarts.
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the wait before journalctl is started
	// again after it exited (default 1s and 1m; doubled at each failure in
	// a row, reset after a run that lasted longer than MaxBackoff).
	MinBackoff, MaxBackoff time.Duration
}

// JournalInput is the input name of a unit's journal.
func JournalInput(unit string) string { return "journal:" + unit }

// FollowJournal follows a unit's journal through journalctl until ctx is
// done, sending its lines as batches named JournalInput(unit). When
// journalctl exits or cannot start, it is started again after a backoff;
// each failure is logged.
func FollowJournal(ctx context.Context, cfg JournalConfig, out chan<- Batch) {
	if cfg.Command == "" {
		cfg.Command = "journalctl"
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("input", JournalInput(cfg.Unit))
	backoff := cfg.MinBackoff
	for {
		started := time.Now()
		err := runJournalctl(ctx, cfg, out)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > cfg.MaxBackoff {
			backoff = cfg.MinBackoff
		}
		log.Error("journalctl stopped: starting it again", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, cfg.MaxBackoff)
	}
}

// runJournalctl runs journalctl once and reads its output to the end.
func runJournalctl(ctx context.Context, cfg JournalConfig, out chan<- Batch) error {
	args := []string{"--follow", "--output=short-iso-precise", "--no-pager", "--quiet", "--unit=" + cfg.Unit}
	if cfg.CursorFile != "" {
		args = append(args, "--cursor-file="+cfg.CursorFile)
	}
	cmd := exec.CommandContext(ctx, cfg.Command, args...)
	cmd.WaitDelay = time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	readErr := ReadStream(ctx, JournalInput(cfg.Unit), stdout, cfg.MaxLineLength, out)
	waitErr := cmd.Wait()
	if readErr != nil && !errors.Is(readErr, context.Canceled) {
		return readErr
	}
	if waitErr != nil {
		return waitErr
	}
	return errors.New("journalctl exited")
}
