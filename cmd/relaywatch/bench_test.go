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
	benchLogOnce sync.Once
	benchLogPath string
	benchLogErr  error
)

// benchLog generates (once per process) a 1,000,000-line Postfix log with an
// open-relay incident, in the temporary directory; it is never committed.
func benchLog(b *testing.B) string {
	benchLogOnce.Do(func() {
		dir, err := os.MkdirTemp("", "relaywatch-bench")
		if err != nil {
			benchLogErr = err
			return
		}
		benchLogPath = filepath.Join(dir, "mail.log")
		f, err := os.Create(benchLogPath)
		if err != nil {
			benchLogErr = err
			return
		}
		if err := loggen.Write(f, loggen.DefaultConfig(1000000)); err != nil {
			benchLogErr = err
		}
		if err := f.Close(); err != nil && benchLogErr == nil {
			benchLogErr = err
		}
	})
	if benchLogErr != nil {
		b.Fatal(benchLogErr)
	}
	return benchLogPath
}

// BenchmarkAnalyze measures the whole analyze path (read, parse in
// parallel, correlate, classify, rules, totals, report) over the generated
// log. Report: lines/s and MB/s.
func BenchmarkAnalyze(b *testing.B) {
	path := benchLog(b)
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
