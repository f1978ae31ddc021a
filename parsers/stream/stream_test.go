package stream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/postfix"
)

func registry() *parsers.Registry { return parsers.NewRegistry(postfix.Format()) }

// genLog returns n Postfix lines with increasing queue ids, one second apart.
func genLog(n int, start time.Time, crlf bool) string {
	var b strings.Builder
	eol := "\n"
	if crlf {
		eol = "\r\n"
	}
	for i := 0; i < n; i++ {
		t := start.Add(time.Duration(i) * time.Second)
		fmt.Fprintf(&b, "%s mail postfix/qmgr[1]: %010X: removed%s", t.Format(time.Stamp), i, eol)
	}
	return b.String()
}

func collect(t *testing.T, input string, cfg Config) ([]parsers.Event, parsers.LineCounts, parsers.Format, error) {
	t.Helper()
	var evs []parsers.Event
	var counts parsers.LineCounts
	f, err := Run(context.Background(), strings.NewReader(input), cfg, func(b *Batch) error {
		for _, e := range b.Events {
			e.QueueID = strings.Clone(e.QueueID)
			e.Line = ""
			evs = append(evs, e)
		}
		counts.Merge(&b.Counts)
		return nil
	})
	return evs, counts, f, err
}

func TestParallelParsingKeepsInputOrder(t *testing.T) {
	input := genLog(20000, time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC), false)
	opts := parsers.Options{Year: 2026, Location: time.UTC}
	seq, _, _, err := collect(t, input, Config{Registry: registry(), Options: opts, Workers: 1, BlockSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	par, counts, f, err := collect(t, input, Config{Registry: registry(), Options: opts, Workers: 4, BlockSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "postfix" {
		t.Errorf("sniffed %q", f.Name)
	}
	if len(par) != 20000 || counts[parsers.Parsed] != 20000 {
		t.Fatalf("%d events, counts %v", len(par), counts)
	}
	for i := range par {
		if par[i].QueueID != seq[i].QueueID || !par[i].Time.Equal(seq[i].Time) {
			t.Fatalf("event %d: parallel %s %v, sequential %s %v", i, par[i].QueueID, par[i].Time, seq[i].QueueID, seq[i].Time)
		}
		if want := fmt.Sprintf("%010X", i); par[i].QueueID != want {
			t.Fatalf("event %d has queue id %s, want %s", i, par[i].QueueID, want)
		}
	}
}

func TestYearRolloverAcrossBlocks(t *testing.T) {
	// Dec 31 23:00 .. Jan 1 (next year); the file was last written in January 2027.
	input := genLog(7200, time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), true)
	opts := parsers.Options{ModTime: time.Date(2027, 1, 1, 1, 0, 0, 0, time.UTC), Location: time.UTC}
	evs, counts, _, err := collect(t, input, Config{Registry: registry(), Options: opts, BlockSize: 8192})
	if err != nil {
		t.Fatal(err)
	}
	if counts[parsers.Parsed] != 7200 {
		t.Fatalf("counts %v (CRLF lines must parse)", counts)
	}
	if y := evs[0].Time.Year(); y != 2026 {
		t.Errorf("first event in %d, want 2026", y)
	}
	if last := evs[len(evs)-1].Time; last.Year() != 2027 || last.Month() != time.January {
		t.Errorf("last event %v, want January 2027", last)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Time.Before(evs[i-1].Time) {
			t.Fatalf("time goes backwards at %d: %v after %v", i, evs[i].Time, evs[i-1].Time)
		}
	}
}

func TestUnknownFormatNamesTheFormats(t *testing.T) {
	_, _, _, err := collect(t, "hello\nworld\n", Config{Registry: registry()})
	if !errors.Is(err, parsers.ErrUnknownFormat) || !strings.Contains(err.Error(), "postfix") || !strings.Contains(err.Error(), "--format") {
		t.Errorf("error %v: want ErrUnknownFormat naming the formats and --format", err)
	}
}

func TestForcedFormatCountsWhatItCannotParse(t *testing.T) {
	f := postfix.Format()
	long := strings.Repeat("z", 10000)
	input := "garbage\n" + long + "\nNov 24 05:58:48 mail postfix/qmgr[1]: ABCDEF1234: removed\nNov 24 05:58:48 mail dovecot: imap-login: x\n"
	evs, counts, _, err := collect(t, input, Config{Format: &f, Options: parsers.Options{Year: 2026, Location: time.UTC}, BlockSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || counts[parsers.Malformed] != 1 || counts[parsers.TooLong] != 1 || counts[parsers.Irrelevant] != 1 {
		t.Errorf("%d events, counts %v", len(evs), counts)
	}
}

func TestCallbackErrorStopsTheStream(t *testing.T) {
	input := genLog(50000, time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC), false)
	stop := errors.New("enough")
	batches := 0
	_, err := Run(context.Background(), strings.NewReader(input), Config{Registry: registry(), Options: parsers.Options{Year: 2026}, BlockSize: 4096}, func(*Batch) error {
		batches++
		if batches == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || batches != 3 {
		t.Errorf("err %v after %d batches, want %v after 3", err, batches, stop)
	}
}

func TestCancelledContext(t *testing.T) {
	input := genLog(50000, time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC), false)
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err := Run(ctx, strings.NewReader(input), Config{Registry: registry(), Options: parsers.Options{Year: 2026}, BlockSize: 4096}, func(*Batch) error {
		n++
		if n == 2 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
}

func TestEmptyInput(t *testing.T) {
	evs, counts, _, err := collect(t, "", Config{Registry: registry()})
	if err != nil || len(evs) != 0 || counts.Total() != 0 {
		t.Errorf("empty input: %d events, %v, %v", len(evs), counts, err)
	}
}
