package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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

// BenchmarkWatchFromStart measures the live path over the generated log:
// watch --from-start follows the file and hands its lines, batch by batch,
// through the same stage and detection as analyze. Report: lines/s.
func BenchmarkWatchFromStart(b *testing.B) {
	path := benchLog(b, "postfix")
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		stderr := newSyncBuffer()
		e := &env{stdout: io.Discard, stderr: stderr, getenv: func(string) string { return "" }}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		args := []string{"watch", "--mta-config", "none", "--listen", "127.0.0.1:0", "--state-dir", b.TempDir(), "--from-start", "--year=2026", "--timezone=UTC",
			"--local-domains=" + loggen.LocalDomains, path}
		go func() { done <- run(ctx, e, args) }()
		var addr string
		for addr == "" {
			if m := listenRE.FindStringSubmatch(stderr.String()); m != nil {
				addr = m[1]
			}
			time.Sleep(5 * time.Millisecond)
		}
		for {
			if n := benchScrapeLines(b, addr); n >= 1000000 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		<-done
	}
	b.ReportMetric(1000000*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// benchScrapeLines reads relaywatch_input_lines_total from /metrics.
func benchScrapeLines(b *testing.B, addr string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	total := 0.0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "relaywatch_input_lines_total{") {
			if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
				total += v
			}
		}
	}
	return total
}
