package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaywatch/relaywatch/samples/loggen"
)

// TestRuleFlagsChecked: every rule threshold is checked with its setting's
// name, as watch, analyze and check-config report it.
func TestRuleFlagsChecked(t *testing.T) {
	for _, tc := range []struct{ flag, value string }{
		{"--probing-window", "1s"},
		{"--probing-max-clients", "0"},
		{"--blocklist-window", "1s"},
		{"--blocklist-receivers", "0"},
		{"--blocklist-share", "1.5"},
		{"--blocklist-min-refused", "0"},
		{"--account-window", "1s"},
		{"--account-factor", "0.5"},
		{"--account-min-outbound", "0"},
		{"--account-auth-failures", "0"},
		{"--account-max-users", "0"},
		{"--storm-window", "1s"},
		{"--storm-factor", "0"},
		{"--storm-min-backscatter", "-1"},
	} {
		code, _, errOut := runCmd(t, "", "analyze", tc.flag, tc.value, "-")
		if code != exitUsage || !strings.Contains(errOut, tc.flag) {
			t.Errorf("%s %s: exit %d, stderr %q", tc.flag, tc.value, code, errOut)
		}
	}
}

// TestQuietWeekCalibration: on a generated week of ordinary traffic
// (diurnal swings, weekend lows, relay probes, password guessing, typed-
// wrong passwords followed by a login) no rule raises more than info.
func TestQuietWeekCalibration(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a week of log")
	}
	for _, format := range []string{"postfix", "exim"} {
		t.Run(format, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "week.log")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			cfg := loggen.QuietWeek(80000)
			write := loggen.Write
			if format == "exim" {
				write = loggen.WriteExim
			}
			if err := write(f, cfg); err != nil {
				t.Fatal(err)
			}
			f.Close()
			code, out, errOut := runCmd(t, "", "analyze", "--output", "json", "--year", "2026", "--timezone", "UTC", "--progress", "never", "--local-domains", loggen.LocalDomains, path)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var rep struct {
				Findings []struct {
					Rule, Key string
					Severity  string
				}
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			for _, f := range rep.Findings {
				if f.Severity != "info" {
					t.Errorf("%s %s: %s on a quiet week", f.Severity, f.Rule, f.Key)
				}
			}
		})
	}
}
