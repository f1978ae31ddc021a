package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCentralArchiveOfManyHosts analyzes one log holding two mail hosts'
// lines interleaved, as a central syslog server stores them, with the same
// queue ids on both (the worst case): messages are followed per host, so the
// totals are the sum of the hosts', both hosts are listed, and every finding
// names a host of the archive.
func TestCentralArchiveOfManyHosts(t *testing.T) {
	one, err := os.ReadFile(filepath.Join("..", "..", "samples", "postfix", "incident.log"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSuffix(string(one), "\n"), "\n") {
		b.WriteString(strings.Replace(l, " mail postfix/", " mx1 postfix/", 1) + "\n")
		b.WriteString(strings.Replace(l, " mail postfix/", " mx2 postfix/", 1) + "\n")
	}
	archive := filepath.Join(t.TempDir(), "mail.log")
	if err := os.WriteFile(archive, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	type report struct {
		Hosts  []string         `json:"hosts"`
		Totals map[string]any   `json:"totals"`
		Relay  int              `json:"relayed_for_strangers"`
		Find   []map[string]any `json:"findings"`
	}
	analyze := func(file string) report {
		code, out, errOut := runCmd(t, "", append(append([]string{"analyze", "--output", "json"}, sampleArgs...), file)...)
		if code != exitFindings {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var r report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	single, both := analyze(filepath.Join("..", "..", "samples", "postfix", "incident.log")), analyze(archive)
	if strings.Join(both.Hosts, ",") != "mx1,mx2" {
		t.Errorf("hosts %v, want mx1,mx2", both.Hosts)
	}
	for _, k := range []string{"received", "delivered", "deferred", "bounced", "rejected"} {
		if both.Totals[k].(float64) != 2*single.Totals[k].(float64) {
			t.Errorf("%s: %v, want twice one host's %v", k, both.Totals[k], single.Totals[k])
		}
	}
	if both.Relay != 2*single.Relay {
		t.Errorf("relayed for strangers %d, want %d", both.Relay, 2*single.Relay)
	}
	for _, f := range both.Find {
		if h := f["host"]; h != "mx1" && h != "mx2" {
			t.Errorf("%s %s: host %v", f["rule"], f["key"], h)
		}
	}
}
