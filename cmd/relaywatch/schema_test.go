package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// reportSchema compiles docs/report.schema.json, asserting formats
// (date-time) as well.
func reportSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	sch, err := c.Compile(filepath.Join("..", "..", "docs", "report.schema.json"))
	if err != nil {
		t.Fatalf("report schema: %v", err)
	}
	return sch
}

func validateReport(t *testing.T, sch *jsonschema.Schema, name, report string) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(report))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := sch.Validate(v); err != nil {
		t.Errorf("%s does not match docs/report.schema.json: %v", name, err)
	}
}

// TestReportSchema validates the samples' reports (the golden files that
// TestSamplesGolden compares analyze's output with) and the reports of an
// empty and of an unreadable input against the schema.
func TestReportSchema(t *testing.T) {
	sch := reportSchema(t)
	files, _ := filepath.Glob(filepath.Join("..", "..", "samples", "*", "*.expected.json"))
	if len(files) < 8 {
		t.Fatalf("only %d sample reports", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		validateReport(t, sch, f, string(b))
	}

	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.log")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, out, _ := runCmd(t, "", append(append([]string{"analyze", "--output", "json"}, sampleArgs...), empty, filepath.Join(dir, "missing.log"))...)
	validateReport(t, sch, "the report of an empty and a missing input", out)
	var rep struct {
		FirstEvent *string `json:"first_event"`
		Inputs     []struct {
			Error *string `json:"error"`
		} `json:"inputs"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	errs := 0
	for _, in := range rep.Inputs {
		if in.Error != nil {
			errs++
		}
	}
	if rep.FirstEvent != nil || len(rep.Inputs) != 2 || errs != 1 {
		t.Errorf("empty and missing inputs: first_event %v, inputs %+v; want null and one error", rep.FirstEvent, rep.Inputs)
	}
	for _, field := range []string{`"first_event": null`, `"hosts": []`, `"findings": []`, `"outbound_by_hour": []`, `"distinct_capped": false`} {
		if !strings.Contains(out, field) {
			t.Errorf("report of an empty input lacks %s", field)
		}
	}
}

// TestJSONOutputsAreNotHTMLEscaped: scripts grep the JSON report, the
// alerts log and parse's events for `from=<`; Go's encoder would write
// \u003c.
func TestJSONOutputsAreNotHTMLEscaped(t *testing.T) {
	log := filepath.Join("..", "..", "samples", "postfix", "incident.log")
	alerts := filepath.Join(t.TempDir(), "alerts.jsonl")
	_, report, _ := runCmd(t, "", append(append([]string{"analyze", "--output", "json", "--alerts-log", alerts}, sampleArgs...), log)...)
	_, events, _ := runCmd(t, "", "parse", "--year", "2026", "--timezone", "UTC", log)
	alertLog, err := os.ReadFile(alerts)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"report": report, "alerts log": string(alertLog), "parse": events} {
		if strings.Contains(out, `\u003c`) || strings.Contains(out, `\u0026`) || !strings.Contains(out, "=<") {
			t.Errorf("%s: HTML-escaped or without any `=<`: %.300s", name, out)
		}
	}

	// Every field the README lists for the alerts log is on every line.
	sc := bufio.NewScanner(strings.NewReader(string(alertLog)))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var line struct {
			Transition string                     `json:"transition"`
			Alert      map[string]json.RawMessage `json:"alert"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		n++
		for _, f := range []string{"rule", "key", "severity", "host", "summary", "next_step", "count", "recipients",
			"first_seen", "last_seen", "window_start", "window_end", "baseline", "evidence", "resolved_at"} {
			if _, ok := line.Alert[f]; !ok {
				t.Errorf("alerts log line %d (%s) lacks %q", n, line.Transition, f)
			}
		}
	}
	if n == 0 {
		t.Fatal("no alert transitions logged")
	}
}
