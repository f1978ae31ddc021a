package main

import (
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/relaywatch/relaywatch/alert"
	"github.com/relaywatch/relaywatch/detect/probe"
	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/source"
)

// handler serves /metrics, /healthz and /readyz.
func (w *watcher) handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(watchCollector{w})
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(rw http.ResponseWriter, _ *http.Request) { rw.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(rw http.ResponseWriter, _ *http.Request) {
		if !w.ready.Load() {
			http.Error(rw, "starting", http.StatusServiceUnavailable)
			return
		}
		rw.Write([]byte("ready\n"))
	})
	return mux
}

var (
	descFileOffset  = prometheus.NewDesc("relaywatch_file_offset_bytes", "Read offset of a followed file.", []string{"file"}, nil)
	descFileBehind  = prometheus.NewDesc("relaywatch_file_behind_bytes", "Bytes of a followed file not read yet.", []string{"file"}, nil)
	descFileIdle    = prometheus.NewDesc("relaywatch_file_last_line_age_seconds", "Seconds since the last line of an input (a followed file, - for stdin, journal:UNIT), or since relaywatch started following it.", []string{"file"}, nil)
	descInputLines  = prometheus.NewDesc("relaywatch_input_lines_total", "Lines read from an input.", []string{"file"}, nil)
	descInputUp     = prometheus.NewDesc("relaywatch_input_up", "1 when a followed file is open and readable, 0 while it is missing or cannot be read.", []string{"file"}, nil)
	descInputErrors = prometheus.NewDesc("relaywatch_input_errors_total", "Problems with a followed file, by reason (missing, permission, read, other).", []string{"file", "reason"}, nil)
	descProbeRuns   = prometheus.NewDesc("relaywatch_probe_runs_total", "Probes of the server run to confirm a relay finding (--confirm-with-probe).", nil, nil)
	descProbe       = prometheus.NewDesc("relaywatch_probe_verdict", "1 for the verdict of the latest confirming probe (open, closed, untested).", []string{"verdict"}, nil)
	descSaves       = prometheus.NewDesc("relaywatch_state_saves_total", "State saves, by result (ok, failed).", []string{"result"}, nil)
)

// watchCollector snapshots the watcher under its lock at scrape time.
type watchCollector struct{ w *watcher }

// Describe implements prometheus.Collector.
func (c watchCollector) Describe(ch chan<- *prometheus.Desc) {
	(&runMetrics{}).Describe(ch)
	for _, d := range []*prometheus.Desc{descFileOffset, descFileBehind, descFileIdle, descInputLines, descInputUp, descInputErrors, descProbeRuns, descProbe, descSaves} {
		ch <- d
	}
	prometheusGo.Describe(ch)
	prometheusProcess.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c watchCollector) Collect(ch chan<- prometheus.Metric) {
	w := c.w
	var status map[string]source.InputStatus
	if w.follower != nil {
		status = map[string]source.InputStatus{}
		for _, s := range w.follower.Status() {
			status[s.Path] = s
		}
	}
	w.mu.Lock()
	det := w.pipe.det
	m := &runMetrics{
		lines: map[string]*parsers.LineCounts{}, kinds: map[string]*[kindCount]uint64{},
		stats: det.Stats(), inFlight: det.MessagesInFlight(), findings: det.Findings(),
		fired: map[[2]string]uint64{}, active: w.alerts.manager.Open(), sinks: []alert.Fanout{w.alerts.dispatchers},
	}
	for k, v := range w.alerts.fired {
		m.fired[k] = v
	}
	if !det.Now().IsZero() {
		m.lastEvent = float64(det.Now().UnixNano()) / 1e9
	}
	for format, fc := range w.live.Formats() {
		var kinds [kindCount]uint64
		copy(kinds[:], fc.Kinds[:])
		m.addInput(format, &fc.Lines, &kinds)
	}
	type inputMetric struct {
		name  string
		lines uint64
		age   float64
	}
	var ims []inputMetric
	now := time.Now()
	known := map[string]bool{}
	for _, in := range w.live.Inputs() {
		last := in.LastLine
		if last.IsZero() {
			last = in.Since
		}
		known[in.Name] = true
		ims = append(ims, inputMetric{in.Name, in.Lines, now.Sub(last).Seconds()})
	}
	for name := range status {
		if !known[name] {
			// Matched but never read (missing, unreadable, or quiet).
			ims = append(ims, inputMetric{name, 0, now.Sub(w.started).Seconds()})
		}
	}
	saves, fails := w.saves, w.saveFails
	w.mu.Unlock()
	m.Collect(ch)
	sort.Slice(ims, func(i, j int) bool { return ims[i].name < ims[j].name })
	for _, im := range ims {
		ch <- prometheus.MustNewConstMetric(descInputLines, prometheus.CounterValue, float64(im.lines), im.name)
		ch <- prometheus.MustNewConstMetric(descFileIdle, prometheus.GaugeValue, im.age, im.name)
		if im.name == source.Stdin || strings.HasPrefix(im.name, "journal:") {
			continue
		}
		st, ok := status[im.name]
		if !ok {
			continue
		}
		up := 0.0
		if st.Following && st.Problem == "" {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descInputUp, prometheus.GaugeValue, up, im.name)
		for _, reason := range []string{"missing", "permission", "read", "other"} {
			ch <- prometheus.MustNewConstMetric(descInputErrors, prometheus.CounterValue, float64(st.Errors[reason]), im.name, reason)
		}
		if st.Following {
			ch <- prometheus.MustNewConstMetric(descFileOffset, prometheus.GaugeValue, float64(st.Offset), im.name)
			size := st.Size
			if fi, err := os.Stat(im.name); err == nil {
				size = fi.Size()
			}
			ch <- prometheus.MustNewConstMetric(descFileBehind, prometheus.GaugeValue, float64(max(size-st.Offset, 0)), im.name)
		}
	}
	if w.confirm != nil {
		last, runs := w.confirm.latest()
		ch <- prometheus.MustNewConstMetric(descProbeRuns, prometheus.CounterValue, float64(runs))
		for _, v := range []string{probe.Open, probe.Closed, probe.Untested} {
			val := 0.0
			if last != nil && last.Verdict == v {
				val = 1
			}
			ch <- prometheus.MustNewConstMetric(descProbe, prometheus.GaugeValue, val, v)
		}
	}
	ch <- prometheus.MustNewConstMetric(descSaves, prometheus.CounterValue, float64(saves), "ok")
	ch <- prometheus.MustNewConstMetric(descSaves, prometheus.CounterValue, float64(fails), "failed")
	prometheusGo.Collect(ch)
	prometheusProcess.Collect(ch)
}
