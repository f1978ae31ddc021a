// Command postfix-loggen writes a realistic Postfix (or, with -exim, Exim) log (see package loggen)
// to stdout, for benchmarks: go run ./samples/loggen/cmd/postfix-loggen -lines 1000000 > big.log
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/relaywatch/relaywatch/samples/loggen"
)

func main() {
	lines := flag.Int("lines", 1000000, "approximate number of lines")
	seed := flag.Uint64("seed", 42, "random seed")
	incident := flag.Float64("incident-at", 0.7, "fraction of the log at which an open-relay burst starts (0: none)")
	exim := flag.Bool("exim", false, "write an Exim main log instead of a Postfix log")
	week := flag.Bool("quiet-week", false, "seven days of ordinary traffic (nights, weekends, typos, guessing) without an incident")
	flag.Parse()
	cfg := loggen.DefaultConfig(*lines)
	cfg.Seed, cfg.IncidentAt = *seed, *incident
	if *week {
		cfg = loggen.QuietWeek(*lines)
	}
	write := loggen.Write
	if *exim {
		write = loggen.WriteExim
	}
	if err := write(os.Stdout, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "postfix-loggen:", err)
		os.Exit(1)
	}
}
