package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/postfix"
)

// BenchmarkLiveOpenAlerts measures the live path (parse a line, detect,
// alert lifecycle) on ordinary mail while 0 or 10,000 alerts are open
// (5,000 relaying addresses, two rules each): the cost of a line must not
// depend on how many alerts are open. Report: lines/s; compare the two
// with benchstat.
func BenchmarkLiveOpenAlerts(b *testing.B) {
	for _, open := range []int{0, 10000} {
		b.Run(fmt.Sprintf("open=%d", open), func(b *testing.B) { benchmarkLiveOpenAlerts(b, open) })
	}
}

func benchmarkLiveOpenAlerts(b *testing.B, open int) {
	f, err := os.Open(filepath.Join("..", "..", "samples", "postfix", "normal.log"))
	if err != nil {
		b.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	f.Close()

	o := &watchOptions{}
	fs := pflag.NewFlagSet("bench", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse([]string{"--local-domains=example.org", "--trusted-networks=127.0.0.1/32"}); err != nil {
		b.Fatal(err)
	}
	e := &env{stdout: io.Discard, stderr: io.Discard}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	alerts, err := o.alerts.start(ctx, e, false)
	if err != nil {
		b.Fatal(err)
	}
	defer alerts.stop(e)
	det, _, err := o.policy.detector(alerts)
	if err != nil {
		b.Fatal(err)
	}
	p := postfix.New(parsers.Options{Year: 2026, Location: time.UTC})
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var buf []parsers.Event
	handle := func(line string, at time.Time) {
		buf, _ = p.Parse(line, buf[:0])
		for i := range buf {
			buf[i].Time = at
			det.Handle(&buf[i])
		}
	}
	for i := 0; i < open/2; i++ {
		ts := start.Format(time.Stamp)
		qid := fmt.Sprintf("%010X", i+1)
		ip := fmt.Sprintf("198.18.%d.%d", i/250, i%250+1)
		handle(fmt.Sprintf("%s mx1 postfix/smtpd[1]: %s: client=unknown[%s]", ts, qid, ip), start)
		handle(fmt.Sprintf("%s mx1 postfix/qmgr[2]: %s: from=<x@spam.example>, size=100, nrcpt=1 (queue active)", ts, qid), start)
		handle(fmt.Sprintf("%s mx1 postfix/smtp[3]: %s: to=<v@victim.example>, relay=mx[192.0.2.9]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)", ts, qid), start)
		handle(fmt.Sprintf("%s mx1 postfix/qmgr[2]: %s: removed", ts, qid), start)
	}
	if n := alerts.manager.Len(); n < open {
		b.Fatalf("%d alerts open, want %d", n, open)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Event time moves on (100µs a line) but stays within the quiet
		// period, so that the alerts stay open.
		handle(lines[i%len(lines)], start.Add(time.Duration(i)*100*time.Microsecond))
	}
	b.StopTimer()
	if n := alerts.manager.Len(); n < open {
		b.Fatalf("%d alerts open at the end, want %d", n, open)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
