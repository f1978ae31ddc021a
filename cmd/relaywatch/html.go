package main

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/relaywatch/relaywatch/detect"
	"github.com/relaywatch/relaywatch/parsers"
)

// The HTML report (`analyze --html FILE`): one self-contained file an
// operator can open offline or mail as an attachment. It loads nothing, runs
// no script, and its Content-Security-Policy allows only its own inline
// style (by hash). Every string from a log goes through html/template's
// contextual escaping.

var (
	//go:embed report.html.tmpl
	reportHTMLTemplate string
	//go:embed report.css
	reportCSS string

	reportHTML = template.Must(template.New("report").Funcs(template.FuncMap{"join": strings.Join}).Parse(reportHTMLTemplate))
	// reportCSP forbids everything but the inline style sheet above.
	reportCSP = func() string {
		sum := sha256.Sum256([]byte(reportCSS))
		return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
			"'; script-src 'none'; img-src 'none'; font-src 'none'; connect-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'"
	}()
)

// maxTimelineClients bounds the rows of the relaying clients' timeline.
const maxTimelineClients = 40

type htmlRow struct{ Value, Label string }

type htmlInput struct{ Name, Format, Lines, Error string }

type htmlFinding struct {
	N                                  int
	Severity, SeverityUpper            string
	Rule, Key, Host, Summary, NextStep string
	Count, Recipients                  int
	FirstSeen, LastSeen                string
	Window, Baseline                   string
	Evidence                           []string
}

type svgBar struct {
	X, Y, W, H   string
	Label, Count string
}

type svgText struct{ X, Label, Anchor string }

type svgGrid struct{ Y, TextY, Label string }

type svgMark struct {
	N                int
	x                float64
	X, LabelY, Label string
	Severity, Title  string
}

type htmlChart struct {
	W, H, Left, Right, Top, Bottom, LabelX, TickY string
	Bucket                                        string
	Bars                                          []svgBar
	Grid                                          []svgGrid
	Ticks                                         []svgText
	Marks                                         []svgMark
}

type svgSeg struct {
	N               int
	X, Y, W, H      string
	Severity, Title string
}

type htmlClientRow struct {
	Client string
	TextY  string
	Segs   []svgSeg
}

type htmlClients struct {
	W, H, Bottom, TickY string
	From, To            string
	Ticks               []svgText
	Rows                []htmlClientRow
	More                int
}

type htmlReport struct {
	CSP        string
	CSS        template.CSS
	Version    string
	Period     string
	Hosts      []string
	Critical   int
	Chart      htmlChart
	Clients    htmlClients
	Totals     []htmlRow
	Deliveries []htmlRow
	Relayed    string
	Inputs     []htmlInput
	Lines      string
	Note       string
	Findings   []htmlFinding
}

func px(f float64) string { return fmt.Sprintf("%.1f", f) }

// writeHTMLFile writes the HTML report to path atomically.
func (r *report) writeHTMLFile(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".relaywatch-report-*.html")
	if err != nil {
		return fmt.Errorf("--html: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := r.writeHTML(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("--html %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("--html %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("--html %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("--html: %w", err)
	}
	return nil
}

// writeHTML renders the report as one self-contained HTML page.
func (r *report) writeHTML(w io.Writer) error {
	h := htmlReport{CSP: reportCSP, CSS: template.CSS(reportCSS), Version: buildVersion(), Hosts: r.hostList()}
	if !r.first.IsZero() {
		h.Period = r.first.UTC().Format("2006-01-02 15:04:05") + " … " + r.last.UTC().Format("2006-01-02 15:04:05")
	}
	t := r.totals
	approx := ""
	if t.DistinctCapped {
		approx = " (at least)"
	}
	for _, row := range []struct {
		n     uint64
		label string
	}{
		{t.Received, "received"}, {t.Delivered, "delivered"}, {t.Forwarded, "forwarded"},
		{t.Deferred, fmt.Sprintf("deferred (%s deferrals)", humanInt(t.Deferrals))}, {t.Bounced, "bounced"},
		{t.Rejected, "rejected"}, {t.RejectWarnings, "reject warnings"}, {t.Held, "held"}, {t.Discarded, "discarded"},
		{uint64(t.Senders), "senders" + approx}, {uint64(t.Recipients), "recipients" + approx},
	} {
		h.Totals = append(h.Totals, htmlRow{humanInt(row.n), row.label})
	}
	deliveries := r.deliveryMap()
	keys := make([]string, 0, len(deliveries))
	for k := range deliveries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h.Deliveries = append(h.Deliveries, htmlRow{humanInt(deliveries[k]), k})
	}
	h.Relayed = humanInt(r.stats.RelayedByStranger)
	for _, in := range r.inputs {
		h.Inputs = append(h.Inputs, htmlInput{Name: in.Name, Format: in.Format, Lines: humanInt(in.Lines.Total()), Error: in.Error})
	}
	h.Lines = fmt.Sprintf("%s lines: %s parsed, %s irrelevant, %s skipped (malformed, unrecognized or too long)",
		humanInt(r.lines.Total()), humanInt(r.lines[parsers.Parsed]), humanInt(r.lines[parsers.Irrelevant]), humanInt(r.lines.Skipped()))
	if r.noDomains {
		h.Note = "No local domains were configured or learned, so every delivery with a domain counts as outbound; pass --local-domains for a gateway that delivers to another host."
	}
	for i, f := range r.findings {
		hf := htmlFinding{
			N: i + 1, Severity: f.Severity.String(), SeverityUpper: strings.ToUpper(f.Severity.String()),
			Rule: f.Rule, Key: f.Key, Host: f.Host, Summary: f.Summary, NextStep: f.NextStep,
			Count: f.Count, Recipients: f.Recipients, Evidence: f.Evidence,
			FirstSeen: f.FirstSeen.UTC().Format("2006-01-02 15:04:05"), LastSeen: f.LastSeen.UTC().Format("2006-01-02 15:04:05"),
		}
		if !f.WindowStart.IsZero() {
			hf.Window = f.WindowStart.UTC().Format("15:04") + " … " + f.WindowEnd.UTC().Format("15:04")
			hf.Baseline = fmt.Sprintf("%.1f per window", f.Baseline)
		}
		if f.Severity == detect.SeverityCritical {
			h.Critical++
		}
		h.Findings = append(h.Findings, hf)
	}
	h.Chart = outboundChart(r.hourly, r.findings)
	h.Clients = clientTimeline(r.first, r.last, r.findings)
	return reportHTML.Execute(w, h)
}

// outboundChart lays out outbound deliveries per hour (per day beyond two
// days) as SVG bars, with a numbered line where each finding at warning or
// worse began.
func outboundChart(hourly []detect.HourCount, findings []detect.Finding) htmlChart {
	const w, h, left, right, top, bottom = 960.0, 260.0, 56.0, 944.0, 22.0, 226.0
	c := htmlChart{W: px(w), H: px(h), Left: px(left), Right: px(right), Top: px(top), Bottom: px(bottom),
		LabelX: px(left - 6), TickY: px(bottom + 16), Bucket: "hour"}
	if len(hourly) == 0 {
		return c
	}
	slots, bucket := outboundSlots(hourly)
	layout := "Jan 2 15:00"
	if bucket > time.Hour {
		layout, c.Bucket = "Jan 2", "day"
	}
	var max uint64
	for _, s := range slots {
		max = uint64(math.Max(float64(max), float64(s.n)))
	}
	if max == 0 {
		max = 1
	}
	start, end := slots[0].t, slots[len(slots)-1].t.Add(bucket)
	span := end.Sub(start).Seconds()
	xOf := func(t time.Time) float64 {
		f := t.Sub(start).Seconds() / span
		return left + math.Min(1, math.Max(0, f))*(right-left)
	}
	slotW := (right - left) / float64(len(slots))
	for i := 0; i <= 4; i++ {
		v := float64(max) * float64(i) / 4
		y := bottom - (bottom-top)*float64(i)/4
		c.Grid = append(c.Grid, svgGrid{Y: px(y), TextY: px(y + 4), Label: humanInt(uint64(math.Round(v)))})
	}
	every := int(math.Ceil(float64(len(slots)) / 10))
	for i, s := range slots {
		bh := (bottom - top) * float64(s.n) / float64(max)
		c.Bars = append(c.Bars, svgBar{X: px(left + float64(i)*slotW + slotW*0.1), Y: px(bottom - bh), W: px(slotW * 0.8), H: px(bh),
			Label: s.t.UTC().Format("2006-01-02 15:04") + " UTC", Count: humanInt(s.n)})
		if i%every == 0 {
			c.Ticks = append(c.Ticks, svgText{X: px(left + (float64(i)+0.5)*slotW), Label: s.t.UTC().Format(layout), Anchor: "middle"})
		}
	}
	// Findings that began within a few pixels of each other share one line,
	// labelled with all their numbers.
	var marked []int
	for i := range findings {
		if findings[i].Severity >= detect.SeverityWarning {
			marked = append(marked, i)
		}
	}
	sort.SliceStable(marked, func(a, b int) bool { return findings[marked[a]].FirstSeen.Before(findings[marked[b]].FirstSeen) })
	for _, i := range marked {
		f := &findings[i]
		x := xOf(f.FirstSeen)
		title := fmt.Sprintf("%d: %s %s, from %s UTC", i+1, f.Rule, f.Key, f.FirstSeen.UTC().Format("2006-01-02 15:04:05"))
		if n := len(c.Marks); n > 0 && x-c.Marks[n-1].x < 8 {
			m := &c.Marks[n-1]
			m.Label += "," + fmt.Sprint(i+1)
			m.Title += "\n" + title
			if f.Severity > detect.SeverityWarning {
				m.Severity = f.Severity.String()
			}
			continue
		}
		c.Marks = append(c.Marks, svgMark{N: i + 1, Label: fmt.Sprint(i + 1), x: x, X: px(x), LabelY: px(top - 6), Severity: f.Severity.String(), Title: title})
	}
	return c
}

// relayingClient returns the client a finding is about, if it is about one.
func relayingClient(f *detect.Finding) (string, bool) {
	switch {
	case f.Rule == detect.RuleForeignToForeign || f.Rule == detect.RuleUnknownRelayingClient:
		return strings.TrimPrefix(f.Key, "client:"), true
	case f.Rule == detect.RuleOutboundSpike && strings.HasPrefix(f.Key, "client:"):
		return strings.TrimPrefix(f.Key, "client:"), true
	}
	return "", false
}

// clientTimeline lays out, per relaying client, a bar from the first to the
// last evidence of each of its findings on the report's time axis.
func clientTimeline(first, last time.Time, findings []detect.Finding) htmlClients {
	const w, left, right, rowH = 960.0, 190.0, 944.0, 26.0
	var order []string
	segs := map[string][]int{}
	for i := range findings {
		if c, ok := relayingClient(&findings[i]); ok {
			if _, seen := segs[c]; !seen {
				order = append(order, c)
			}
			segs[c] = append(segs[c], i)
		}
	}
	var out htmlClients
	if len(order) == 0 || first.IsZero() {
		return out
	}
	if len(order) > maxTimelineClients {
		out.More = len(order) - maxTimelineClients
		order = order[:maxTimelineClients]
	}
	start, end := first.UTC(), last.UTC()
	if !end.After(start) {
		end = start.Add(time.Minute)
	}
	span := end.Sub(start).Seconds()
	xOf := func(t time.Time) float64 {
		f := t.Sub(start).Seconds() / span
		return left + math.Min(1, math.Max(0, f))*(right-left)
	}
	bottom := rowH * float64(len(order))
	out.W, out.H, out.Bottom, out.TickY = px(w), px(bottom+24), px(bottom), px(bottom+16)
	out.From, out.To = start.Format("2006-01-02 15:04:05"), end.Format("2006-01-02 15:04:05")
	layout := "15:04"
	switch d := end.Sub(start); {
	case d > 24*time.Hour:
		layout = "Jan 2 15:04"
	case d < time.Hour:
		layout = "15:04:05"
	}
	for i := 0; i <= 4; i++ {
		t := start.Add(time.Duration(float64(end.Sub(start)) * float64(i) / 4))
		anchor := "middle"
		if i == 4 {
			anchor = "end" // the last label ends at the right edge
		}
		out.Ticks = append(out.Ticks, svgText{X: px(xOf(t)), Label: t.Format(layout), Anchor: anchor})
	}
	for r, client := range order {
		y := float64(r) * rowH
		row := htmlClientRow{Client: client, TextY: px(y + rowH*0.65)}
		idx := segs[client]
		for k, i := range idx {
			f := &findings[i]
			x0, x1 := xOf(f.FirstSeen), xOf(f.LastSeen)
			segH := (rowH - 8) / float64(len(idx))
			row.Segs = append(row.Segs, svgSeg{N: i + 1, X: px(x0), W: px(math.Max(3, x1-x0)), Y: px(y + 4 + float64(k)*segH), H: px(segH),
				Severity: f.Severity.String(),
				Title: fmt.Sprintf("%d: %s %s, %s … %s UTC, count %d", i+1, f.Rule, f.Key,
					f.FirstSeen.UTC().Format("15:04:05"), f.LastSeen.UTC().Format("15:04:05"), f.Count)})
		}
		out.Rows = append(out.Rows, row)
	}
	return out
}
