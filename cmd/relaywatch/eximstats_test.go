package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/relaywatch/relaywatch/parsers/parsertest"
)

// TestTotalsEqualEximstats runs eximstats (Debian's exim4-base) on Exim logs
// and compares its grand totals with relaywatch's: received messages,
// delivered addresses, delayed messages (deferred) and rejects. One
// documented difference: eximstats also counts a delivery's failed outgoing
// connection ("ID H=host [ip] Connection refused") as a reject; relaywatch
// does not, and the test counts those lines to say so exactly. (The
// generated Exim log is left out: it uses Exim 4.97's long message ids, which
// the eximstats of Debian 12 does not read.)
func TestTotalsEqualEximstats(t *testing.T) {
	bin := eximstatsPath(t)
	logs := map[string]string{
		"normal":    filepath.Join("..", "..", "samples", "exim", "normal.log"),
		"incident":  filepath.Join("..", "..", "samples", "exim", "incident.log"),
		"realflows": filepath.Join("..", "..", "samples", "exim", "realflows.log"),
	}
	for _, dir := range parsertest.CorpusDirs(t, "exim") {
		if p := filepath.Join(dir, "gvengel-exim_exporter-mainlog.log"); fileExists(p) {
			logs["real exporter log"] = p
		}
	}
	// Connections Exim dropped for too many bad commands, next to relay
	// rejections (lines built from Exim's log formats).
	dropped := filepath.Join(t.TempDir(), "dropped")
	if err := os.WriteFile(dropped, []byte(strings.Join([]string{
		`2026-11-24 09:00:00 SMTP call from (probe) [203.0.113.70]:41000 I=[192.0.2.1]:25 dropped: too many nonmail commands (last was "RSET")`,
		`2026-11-24 09:00:01 SMTP call from [203.0.113.71]:41001 I=[192.0.2.1]:25 dropped: too many syntax or protocol errors (last command was "MAIL FROM:<>",  C=EHLO,MAIL,MAIL,MAIL)`,
		`2026-11-24 09:00:02 SMTP call from [203.0.113.72]:41002 I=[192.0.2.1]:25 dropped: too many unrecognized commands (last was "GET / HTTP/1.1")`,
		`2026-11-24 09:00:03 H=(bulk) [203.0.113.66]:41003 I=[192.0.2.1]:25 F=<spam@bulk.example> rejected RCPT <v@gmail.test>: relay not permitted`,
		`2026-11-24 09:00:04 1rKxyz-000abc-AB <= news@partner.test H=mx.partner.test [198.51.100.5]:41004 I=[192.0.2.1]:25 P=esmtp S=1000`,
		`2026-11-24 09:00:05 1rKxyz-000abc-AB => bob <bob@example.org> R=local_user T=local_delivery`,
		`2026-11-24 09:00:05 1rKxyz-000abc-AB Completed`,
	}, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logs["dropped calls"] = dropped
	for name, log := range logs {
		t.Run(name, func(t *testing.T) {
			out, err := exec.Command("perl", bin, log).Output()
			if err != nil {
				t.Fatalf("eximstats: %v", err)
			}
			want := eximstatsTotals(t, string(out))
			_, js, errOut := runCmd(t, "", append(append([]string{"analyze", "--format", "exim", "--output", "json"}, sampleArgs...), log)...)
			var rep jsonReport
			if err := json.Unmarshal([]byte(js), &rep); err != nil {
				t.Fatalf("%v: %s", err, errOut)
			}
			got := map[string]uint64{
				"received": rep.Totals.Received, "delivered": rep.Totals.Delivered, "deferred": rep.Totals.Deferred,
				"rejected": rep.Totals.Rejected + outgoingRefused(t, log),
			}
			for k, w := range want {
				if got[k] != w {
					t.Errorf("%s: relaywatch %d, eximstats %d", k, got[k], w)
				}
			}
			if len(want) < 3 {
				t.Errorf("read only %v from eximstats' report", want)
			}
		})
	}
}

var (
	eximstatsReceived  = regexp.MustCompile(`^\s+Received\s+\S+\s+(\d+)\s+\d+(?:\s+(\d+)\s+[\d.]+%)?`)
	eximstatsDelivered = regexp.MustCompile(`^\s+Delivered\s+\S+\s+\d+\s+(\d+)`)
	eximstatsRejects   = regexp.MustCompile(`^\s+Rejects\s+(\d+)`)
	eximstatsOutRefuse = regexp.MustCompile(`^\S+ \S+(?: [+-]\d{4})?(?: \[\d+\])? [0-9A-Za-z]+-[0-9A-Za-z]+-[0-9A-Za-z]+ H=\S+ \[[^]]+\](?::\d+)? Connection refused$`)
)

// eximstatsTotals reads the grand total table of eximstats' text report.
func eximstatsTotals(t *testing.T, report string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{"rejected": 0}
	num := func(s string) uint64 { n, _ := strconv.ParseUint(s, 10, 64); return n }
	for _, l := range strings.Split(report, "\n") {
		if m := eximstatsReceived.FindStringSubmatch(l); m != nil {
			out["received"] = num(m[1])
			out["deferred"] = num(m[2])
		} else if m := eximstatsDelivered.FindStringSubmatch(l); m != nil {
			out["delivered"] = num(m[1])
		} else if m := eximstatsRejects.FindStringSubmatch(l); m != nil {
			out["rejected"] = num(m[1])
		}
		if strings.HasPrefix(l, "Deliveries by transport") || strings.HasPrefix(l, "Messages received per hour") {
			break
		}
	}
	return out
}

// outgoingRefused counts the lines eximstats takes for rejects and
// relaywatch does not: a delivery's failed connection to the next hop.
func outgoingRefused(t *testing.T, log string) uint64 {
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, l := range strings.Split(string(data), "\n") {
		if eximstatsOutRefuse.MatchString(l) {
			n++
		}
	}
	return n
}
