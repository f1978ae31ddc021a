package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/spf13/pflag"

	"github.com/relaywatch/relaywatch/samples/loggen"
)

var (
	benchLogMu    sync.Mutex
	benchLogPaths = map[string]string{}
)

// benchLog generates (once per process and format) a 1,000,000-line log
// with an open-relay incident, in the temporary directory; it is never
// committed.
func benchLog(b *testing.B, format string) string {
	benchLogMu.Lock()
	defer benchLogMu.Unlock()
	if p, ok := benchLogPaths[format]; ok {
		return p
	}
	write := loggen.Write
	if format == "exim" {
		write = loggen.WriteExim
	}
	dir, err := os.MkdirTemp("", "relaywatch-bench")
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, format+".log")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := write(f, loggen.DefaultConfig(1000000)); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	benchLogPaths[format] = path
	return path
}

// BenchmarkAnalyze measures the whole analyze path (read, parse in
// parallel, correlate, classify, rules, totals, report) over the generated
// log. Report: lines/s and MB/s.
func BenchmarkAnalyze(b *testing.B) {
	for _, format := range []string{"postfix", "exim"} {
		b.Run(format, func(b *testing.B) { benchmarkAnalyze(b, format) })
	}
}

func benchmarkAnalyze(b *testing.B, format string) {
	path := benchLog(b, format)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	// Measure the production pipeline, not the tests' small poisoned blocks.
	defer func(bs int, poison bool) { blockSize, poisonBlocks = bs, poison }(blockSize, poisonBlocks)
	blockSize, poisonBlocks = 0, false
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	b.ResetTimer()
	var lines uint64
	for i := 0; i < b.N; i++ {
		o := &analyzeOptions{}
		fs := pflag.NewFlagSet("bench", pflag.ContinueOnError)
		o.AddFlags(fs)
		if err := fs.Parse([]string{"--year=2026", "--timezone=UTC", "--local-domains=" + loggen.LocalDomains, "--output=json", "--progress=never"}); err != nil {
			b.Fatal(err)
		}
		e := &env{stdout: io.Discard, stderr: io.Discard}
		err := runAnalyze(context.Background(), e, o, []string{path})
		if err != nil && err != errFindings {
			b.Fatal(err)
		}
		lines = 1000000
	}
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
