package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/relaywatch/relaywatch/alert"
	"github.com/relaywatch/relaywatch/detect"
	"github.com/relaywatch/relaywatch/detect/probe"
	"github.com/relaywatch/relaywatch/parsers"
)

// maxReportHosts bounds the host names a report lists.
const maxReportHosts = 100

// report collects what `analyze` prints.
type report struct {
	hosts       map[string]bool
	first, last time.Time
	elapsed     time.Duration

	inputs    []inputResult
	lines     parsers.LineCounts
	totals    detect.Totals
	stats     detect.Stats
	hourly    []detect.HourCount
	findings  []detect.Finding
	incidents []detect.Incident
	// undeclared: relaying dominated by a few domains nothing declared.
	undeclared *detect.Undeclared
	// trust: what was read from the MTA's configuration.
	trust     []parsers.Trust
	learned   []string
	noDomains bool
	// probe: the verdict of --confirm-with-probe, if one ran.
	probe *probe.Confirmation
}

// observe notes an event's host and time.
func (r *report) observe(e *parsers.Event) {
	if e.Host != "" && len(r.hosts) < maxReportHosts && !r.hosts[e.Host] {
		r.hosts[strings.Clone(e.Host)] = true
	}
	if r.first.IsZero() || e.Time.Before(r.first) {
		r.first = e.Time
	}
	if e.Time.After(r.last) {
		r.last = e.Time
	}
}

func (r *report) fill(inputs []inputResult, t detect.Totals, d *detect.Detector) {
	r.inputs = inputs
	for i := range inputs {
		r.lines.Merge(&inputs[i].Lines)
	}
	r.totals = t
	r.stats = d.Stats()
	r.hourly = d.OutboundByHour()
	r.findings = d.Findings()
	r.incidents = d.Incidents()
	r.undeclared = d.UndeclaredDomains()
	r.learned = d.Policy().LearnedLocalDomains()
	r.noDomains = len(r.learned) == 0 && !d.Policy().HasConfiguredDomains()
}

// metrics gathers the run's metrics.
func (r *report) metrics(d *detect.Detector, a *alerting) *runMetrics {
	m := &runMetrics{
		lines: map[string]*parsers.LineCounts{}, kinds: map[string]*[kindCount]uint64{},
		stats: r.stats, inFlight: d.MessagesInFlight(), findings: r.findings, fired: a.fired,
		active: a.manager.Open(), sinks: []alert.Fanout{a.dispatchers, a.summary},
	}
	for i := range r.inputs {
		in := &r.inputs[i]
		if in.Error != "" {
			m.inputErrs++
		}
		m.addInput(in.Format, &in.Lines, &in.Kinds)
	}
	if !r.last.IsZero() {
		m.lastEvent = float64(r.last.UnixNano()) / 1e9
	}
	return m
}

func (r *report) hostList() []string {
	out := make([]string, 0, len(r.hosts))
	for h := range r.hosts {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

// jsonReport is the stable JSON schema of `analyze --output json`
// (documented in README.md). Fields are only ever added.
type jsonReport struct {
	Inputs      []jsonInput        `json:"inputs"`
	Lines       jsonLines          `json:"lines"`
	Hosts       []string           `json:"hosts"`
	FirstEvent  *time.Time         `json:"first_event"` // null without events
	LastEvent   *time.Time         `json:"last_event"`
	Totals      detect.Totals      `json:"totals"`
	Deliveries  map[string]uint64  `json:"deliveries"`
	Relayed     uint64             `json:"relayed_for_strangers"`
	Hourly      []detect.HourCount `json:"outbound_by_hour"`
	Correlation jsonCorrelation    `json:"correlation"`
	Learned     []string           `json:"learned_local_domains"`
	Findings    []detect.Finding   `json:"findings"`
	// Incidents group the findings by relaying client.
	Incidents []detect.Incident `json:"incidents"`
	// UndeclaredDomains is set when relaying went mostly to a few domains
	// nothing declared (a gateway or backup MX without its domains).
	UndeclaredDomains *jsonUndeclared `json:"undeclared_domains"` // null unless relaying went to undeclared domains
	// MTAConfig is what was taken from the MTA's own configuration.
	MTAConfig []parsers.Trust `json:"mta_config"`
	// Probe is the verdict of --confirm-with-probe (null when no probe ran).
	Probe *probe.Confirmation `json:"probe"`
}

type jsonUndeclared struct {
	*detect.Undeclared
	Note string `json:"note"`
}

type jsonInput struct {
	Name   string    `json:"name"`
	Format string    `json:"format"` // "" when it could not be told
	Lines  jsonLines `json:"lines"`
	Error  *string   `json:"error"` // null when it was read
	// Warning says when an input gave no usable line (empty, wrong
	// --format, only over-long lines): never a quiet "Findings: none".
	Warning string `json:"warning"`
	// Note says when the input was read in its rotated set's format
	// rather than the one its own first lines suggested; "" otherwise.
	Note string `json:"note"`
}

type jsonLines map[string]uint64

type jsonCorrelation struct {
	Messages        uint64 `json:"messages"`
	Evicted         uint64 `json:"evicted"`
	Expired         uint64 `json:"expired"`
	UnknownOrigin   uint64 `json:"deliveries_of_unknown_origin"`
	ParentNeverSeen uint64 `json:"copies_parent_never_seen"`
	HopsUnconfirmed uint64 `json:"hops_unconfirmed"`
	FindingsDropped uint64 `json:"findings_dropped"`
}

func lineMap(c *parsers.LineCounts) jsonLines {
	m := jsonLines{"total": c.Total(), "skipped": c.Skipped()}
	for _, res := range parsers.Results() {
		m[res.String()] = c[res]
	}
	return m
}

func (r *report) deliveryMap() map[string]uint64 {
	m := map[string]uint64{}
	for class, byStatus := range r.stats.Deliveries {
		for status, n := range byStatus {
			if n == 0 {
				continue
			}
			st := parsers.Status(status).String()
			if st == "" {
				st = "none"
			}
			m[detect.DeliveryClass(class).String()+"/"+st] += n
		}
	}
	return m
}

func (r *report) json() jsonReport {
	j := jsonReport{
		Inputs:     []jsonInput{},
		Lines:      lineMap(&r.lines),
		Hosts:      append([]string{}, r.hostList()...),
		Totals:     r.totals,
		Deliveries: r.deliveryMap(),
		Relayed:    r.stats.RelayedByStranger,
		Hourly:     append([]detect.HourCount{}, r.hourly...),
		Correlation: jsonCorrelation{
			Messages: r.stats.Messages, Evicted: r.stats.MessagesEvicted, Expired: r.stats.MessagesExpired,
			UnknownOrigin: r.stats.UnknownOrigin, FindingsDropped: r.stats.FindingsEvicted,
			ParentNeverSeen: r.stats.ParentNeverSeen, HopsUnconfirmed: r.stats.HopsUnconfirmed,
		},
		Learned:   append([]string{}, r.learned...),
		Findings:  append([]detect.Finding{}, r.findings...),
		Incidents: append([]detect.Incident{}, r.incidents...),
		MTAConfig: append([]parsers.Trust{}, r.trust...),
		Probe:     r.probe,
	}
	if r.undeclared != nil {
		j.UndeclaredDomains = &jsonUndeclared{r.undeclared, undeclaredNote(r.undeclared)}
	}
	if !r.first.IsZero() {
		f, l := r.first, r.last
		j.FirstEvent, j.LastEvent = &f, &l
	}
	for i := range r.inputs {
		in := &r.inputs[i]
		ji := jsonInput{Name: in.Name, Format: in.Format, Lines: lineMap(&in.Lines), Warning: in.warning(), Note: in.Note}
		if in.Error != "" {
			ji.Error = &in.Error
		}
		j.Inputs = append(j.Inputs, ji)
	}
	return j
}

func (r *report) writeText(w io.Writer) {
	total := r.lines.Total()
	rate := ""
	if s := r.elapsed.Seconds(); s > 0 {
		rate = fmt.Sprintf(" in %.2fs (%s lines/s)", s, humanInt(uint64(float64(total)/s)))
	}
	fmt.Fprintf(w, "relaywatch analyze: %d input(s), %s lines%s\n", len(r.inputs), humanInt(total), rate)
	fmt.Fprintf(w, "  %s parsed, %s irrelevant, %s skipped", humanInt(r.lines[parsers.Parsed]), humanInt(r.lines[parsers.Irrelevant]), humanInt(r.lines.Skipped()))
	if r.lines.Skipped() > 0 {
		fmt.Fprintf(w, " (%s malformed, %s unrecognized, %s too long)", humanInt(r.lines[parsers.Malformed]), humanInt(r.lines[parsers.Unrecognized]), humanInt(r.lines[parsers.TooLong]))
	}
	fmt.Fprintln(w)
	for _, in := range r.inputs {
		if in.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", in.Error)
		} else if warn := in.warning(); warn != "" {
			fmt.Fprintf(w, "  warning: %s\n", warn)
		}
		if in.Note != "" {
			fmt.Fprintf(w, "  note: %s: %s\n", in.Name, in.Note)
		}
	}
	if hosts := r.hostList(); len(hosts) > 0 {
		fmt.Fprintf(w, "  hosts: %s\n", strings.Join(hosts, ", "))
	}
	if !r.first.IsZero() {
		fmt.Fprintf(w, "  period: %s .. %s\n", r.first.Format(time.RFC3339), r.last.Format(time.RFC3339))
	}

	t := r.totals
	fmt.Fprintln(w, "\nGrand totals (pflogsumm's terms)")
	row := func(n uint64, label string) { fmt.Fprintf(w, "  %9s  %s\n", humanInt(n), label) }
	row(t.Received, "received")
	row(t.Delivered, "delivered")
	row(t.Forwarded, "forwarded")
	fmt.Fprintf(w, "  %9s  deferred  (%s deferrals)\n", humanInt(t.Deferred), humanInt(t.Deferrals))
	row(t.Bounced, "bounced")
	row(t.Rejected, "rejected")
	row(t.RejectWarnings, "reject warnings")
	row(t.Held, "held")
	row(t.Discarded, "discarded")
	approx := ""
	if t.DistinctCapped {
		approx = " (at least)"
	}
	row(uint64(t.Senders), "senders"+approx)
	row(uint64(t.Recipients), "recipients"+approx)

	fmt.Fprintln(w, "\nDeliveries by class")
	var byClass [len(detect.Stats{}.Deliveries)]uint64
	for c, st := range r.stats.Deliveries {
		for _, n := range st {
			byClass[c] += n
		}
	}
	fmt.Fprintf(w, "  local %s, inbound %s, outbound %s (relayed for strangers %s), forwarded %s, content-filter hops %s\n",
		humanInt(byClass[detect.DeliveryLocal]), humanInt(byClass[detect.DeliveryInbound]), humanInt(byClass[detect.DeliveryOutbound]),
		humanInt(r.stats.RelayedByStranger), humanInt(byClass[detect.DeliveryForwarded]), humanInt(byClass[detect.DeliveryHop]))
	if len(r.learned) > 0 {
		fmt.Fprintf(w, "  local domains learned: %s\n", strings.Join(truncateList(r.learned, 10), ", "))
	}
	if r.noDomains {
		fmt.Fprintln(w, "  note: no local domains were configured or learned, so every delivery with a domain counts as outbound;\n        pass --local-domains for a gateway that delivers to another host.")
	}

	writeChart(w, r.hourly, r.findings)

	if len(r.findings) == 0 {
		fmt.Fprintln(w, "\nFindings: none.")
		return
	}
	if r.undeclared != nil {
		fmt.Fprintf(w, "\nNOTE: %s\n", termSafe(undeclaredNote(r.undeclared)))
	}
	writeIncidents(w, r.incidents)
	writeConfirmation(w, r.probe)
	fmt.Fprintf(w, "\nFindings (%d), worst first\n", len(r.findings))
	for _, f := range r.findings {
		fmt.Fprintf(w, "\n[%s] %s  %s", strings.ToUpper(f.Severity.String()), f.Rule, f.Key)
		if f.Host != "" {
			fmt.Fprintf(w, "  on %s", f.Host)
		}
		fmt.Fprintf(w, "\n  %s\n", f.Summary)
		fmt.Fprintf(w, "  count %d, seen %s .. %s", f.Count, f.FirstSeen.Format(time.RFC3339), f.LastSeen.Format(time.RFC3339))
		if !f.WindowStart.IsZero() {
			fmt.Fprintf(w, ", window %s .. %s", f.WindowStart.Format("15:04"), f.WindowEnd.Format("15:04"))
		}
		fmt.Fprintln(w, "\n  evidence:")
		for _, l := range f.Evidence {
			fmt.Fprintf(w, "    %s\n", l)
		}
		fmt.Fprintf(w, "  next step: %s\n", f.NextStep)
	}
}

func truncateList(l []string, n int) []string {
	if len(l) <= n {
		return l
	}
	return append(append([]string(nil), l[:n]...), fmt.Sprintf("and %d more", len(l)-n))
}

// writeChart draws outbound deliveries per hour (per day for long periods)
// as bars, marking the buckets in which findings began.
func writeChart(w io.Writer, hourly []detect.HourCount, findings []detect.Finding) {
	if len(hourly) == 0 {
		return
	}
	rows, bucket := outboundSlots(hourly)
	layout, label := "2006-01-02 15:00", "hour"
	if bucket > time.Hour {
		layout, label = "2006-01-02", "day"
	}
	var max uint64
	for _, r := range rows {
		if r.n > max {
			max = r.n
		}
	}
	marks := map[time.Time][]string{}
	for _, f := range findings {
		if f.Severity < detect.SeverityWarning {
			continue
		}
		t := f.FirstSeen.UTC().Truncate(bucket)
		if !contains(marks[t], f.Rule) {
			marks[t] = append(marks[t], f.Rule)
		}
	}
	fmt.Fprintf(w, "\nOutbound deliveries per %s (UTC)\n", label)
	const width = 40
	for _, r := range rows {
		n := 0
		if max > 0 {
			n = int((r.n*width + max - 1) / max)
		}
		mark := ""
		if m := marks[r.t]; len(m) > 0 {
			mark = "  <- " + strings.Join(m, ", ")
		}
		fmt.Fprintf(w, "  %s  %-*s %7s%s\n", r.t.Format(layout), width, strings.Repeat("#", n), humanInt(r.n), mark)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// humanInt formats 1234567 as "1,234,567".
func humanInt(n uint64) string {
	s := fmt.Sprint(n)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// startProgress prints progress to w twice a second until stop is called.
func startProgress(w io.Writer, p *progress) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-tick.C:
				name, _ := p.file.Load().(string)
				bytes := p.doneBytes.Load() + p.curBytes.Load()
				lines := p.lines.Load()
				secs := time.Since(start).Seconds()
				of := ""
				if total := p.totalBytes.Load(); total > 0 {
					of = fmt.Sprintf(" of %.1f MB (%.0f%%)", float64(total)/1e6, 100*float64(bytes)/float64(total))
				}
				fmt.Fprintf(w, "\r\033[K%s (%d/%d): %.1f MB read%s, %s lines, %s lines/s",
					name, p.fileIndex.Load(), p.files.Load(), float64(bytes)/1e6, of, humanInt(lines), humanInt(uint64(float64(lines)/secs)))
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
