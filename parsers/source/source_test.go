package source

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExpandOrdersRotatedSetsOldestFirst(t *testing.T) {
	dir := t.TempDir()
	names := []string{"mail.log", "mail.log.1", "mail.log.2.gz", "mail.log.10.gz", "other.log-20261120", "other.log-20261122.gz", "other.log"}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Given in a scrambled order.
	given := []string{"mail.log.1", "other.log", "mail.log", "mail.log.10.gz", "other.log-20261122.gz", "mail.log.2.gz", "other.log-20261120"}
	for i := range given {
		given[i] = filepath.Join(dir, given[i])
	}
	inputs, err := Expand(given, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range inputs {
		got = append(got, filepath.Base(in.Name))
	}
	want := "mail.log.10.gz mail.log.2.gz mail.log.1 mail.log other.log-20261120 other.log-20261122.gz other.log"
	if strings.Join(got, " ") != want {
		t.Errorf("order:\n got  %s\n want %s", strings.Join(got, " "), want)
	}
}

func TestExpandReportsMissingFilesAndKeepsTheRest(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok.log")
	os.WriteFile(ok, []byte("x\n"), 0o644)
	inputs, err := Expand([]string{filepath.Join(dir, "missing.log"), ok}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "missing.log") {
		t.Fatalf("error %v, want one naming missing.log", err)
	}
	if len(inputs) != 1 || inputs[0].Name != ok {
		t.Fatalf("inputs %v, want only %s", inputs, ok)
	}
}

func gz(t *testing.T, data []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

func TestOpenDecompressesByContent(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "mail.log.1") // no .gz suffix
	os.WriteFile(p, gz(t, []byte("line one\nline two\n")), 0o644)
	rc, err := Open(Input{Name: p})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil || string(data) != "line one\nline two\n" {
		t.Fatalf("read %q, %v", data, err)
	}
}

func TestTruncatedGzipNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "mail.log.2.gz")
	full := gz(t, bytes.Repeat([]byte("Nov 24 05:58:48 mail postfix/qmgr[1]: ABCDEF1234: removed\n"), 2000))
	os.WriteFile(p, full[:len(full)/2], 0o644)
	rc, err := Open(Input{Name: p})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err == nil {
		t.Fatal("no error from a truncated gzip file")
	}
	if !errors.Is(err, ErrCompressed) || !strings.Contains(err.Error(), "mail.log.2.gz") || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("error %q: want ErrCompressed naming the file and saying truncated", err)
	}
	if len(data) == 0 {
		t.Error("no data before the truncation point")
	}
}

func TestGarbageGzipHeader(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.gz")
	os.WriteFile(p, []byte{0x1f, 0x8b, 0, 0}, 0o644)
	_, err := Open(Input{Name: p})
	if !errors.Is(err, ErrCompressed) || !strings.Contains(err.Error(), "bad.gz") {
		t.Errorf("error %v: want ErrCompressed naming bad.gz", err)
	}
}

func readAllBlocks(t *testing.T, r io.Reader, size int) ([]string, int) {
	t.Helper()
	b := NewBlocker(r, size)
	var lines []string
	for {
		blk, err := b.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(blk) > 0 && blk[len(blk)-1] != '\n' {
			// Only the stream's last line may lack its newline.
			if _, err := b.Next(); err != io.EOF {
				t.Fatalf("block without trailing newline before the end: %q", blk)
			}
			lines = append(lines, strings.Split(string(blk), "\n")...)
			break
		}
		lines = append(lines, strings.Split(strings.TrimSuffix(string(blk), "\n"), "\n")...)
	}
	return lines, b.TooLong()
}

func TestBlockerSkipsOverlongLinesAndKeepsTheRest(t *testing.T) {
	long := strings.Repeat("x", 2<<20) // 2 MiB
	input := "first\n" + long + "\nsecond\n" + strings.Repeat("y", 5000) + "\nthird"
	lines, tooLong := readAllBlocks(t, strings.NewReader(input), 4096)
	if tooLong != 2 {
		t.Errorf("too long = %d, want 2", tooLong)
	}
	if strings.Join(lines, ",") != "first,second,third" {
		t.Errorf("lines = %q", lines)
	}
}

func TestBlockerSmallReads(t *testing.T) {
	var want []string
	var b strings.Builder
	for i := 0; i < 1000; i++ {
		l := strings.Repeat("a", i%97) + "\xff\xfe" // invalid UTF-8 is kept as bytes
		want = append(want, l)
		b.WriteString(l + "\n")
	}
	lines, tooLong := readAllBlocks(t, io.MultiReader(oneByteReader{strings.NewReader(b.String())}), 300)
	if tooLong != 0 {
		t.Errorf("too long = %d", tooLong)
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines differ: got %d lines, want %d", len(lines), len(want))
	}
}

type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 7 {
		p = p[:7]
	}
	return o.r.Read(p)
}

func TestBlockerReturnsReadErrorAfterLines(t *testing.T) {
	boom := errors.New("disk on fire")
	r := io.MultiReader(strings.NewReader("a\nb\npartial"), errReader{boom})
	b := NewBlocker(r, 1024)
	blk, err := b.Next()
	if err != nil || string(blk) != "a\nb\n" && string(blk) != "a\nb\npartial" {
		t.Fatalf("first block %q, %v", blk, err)
	}
	for err == nil {
		_, err = b.Next()
	}
	if !errors.Is(err, boom) {
		t.Errorf("error %v, want %v", err, boom)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestExpandGlobs(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"MSGTRK2026112407-1.LOG", "MSGTRK2026112408-1.LOG", "MSGTRK2026112323-1.LOG", "RECV2026112407-1.LOG"} {
		os.WriteFile(filepath.Join(dir, n), []byte("x\n"), 0o644)
	}
	inputs, err := Expand([]string{filepath.Join(dir, "MSGTRK*.LOG")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range inputs {
		got = append(got, filepath.Base(in.Name))
	}
	if strings.Join(got, " ") != "MSGTRK2026112323-1.LOG MSGTRK2026112407-1.LOG MSGTRK2026112408-1.LOG" {
		t.Errorf("glob: %v", got)
	}
	if _, err := Expand([]string{filepath.Join(dir, "NOPE*.LOG")}, time.Now()); err == nil || !strings.Contains(err.Error(), "no file matches") {
		t.Errorf("empty glob: %v", err)
	}
}
