package main

import (
	"context"
	"fmt"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/push"
	"github.com/spf13/pflag"

	"github.com/relaywatch/relaywatch/alert"
	"github.com/relaywatch/relaywatch/detect"
	"github.com/relaywatch/relaywatch/parsers"
)

// metricsOptions are the flags that export a batch run's metrics.
type metricsOptions struct {
	Textfile    string
	Pushgateway string
	PushJob     string
}

// AddFlags registers the metrics flags.
func (o *metricsOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Textfile, "metrics-textfile", "", "write the run's metrics to FILE in the node_exporter textfile-collector format (atomically)")
	fs.StringVar(&o.Pushgateway, "pushgateway", "", "push the run's metrics to this Prometheus Pushgateway URL")
	fs.StringVar(&o.PushJob, "pushgateway-job", "relaywatch", "job name for --pushgateway")
}

// runMetrics is what a run counted, for Prometheus. Every label value comes
// from a fixed set (formats, results, kinds, classes, statuses, rules,
// severities, sink names): none from log content, so that a spammer cannot
// create series.
type runMetrics struct {
	lines      map[string]*parsers.LineCounts // by format
	kinds      map[string]*[kindCount]uint64  // events by format and kind
	stats      detect.Stats
	inFlight   int
	findings   []detect.Finding
	fired      map[[2]string]uint64 // alerts fired by rule and severity
	active     []alert.Alert
	sinks      []alert.Fanout
	lastEvent  float64
	inputErrs  int
	instanceID string
}

const kindCount = parsers.NumKinds

// addInput adds one input's line and event counts under its format.
func (m *runMetrics) addInput(format string, lines *parsers.LineCounts, kinds *[kindCount]uint64) {
	if format == "" {
		format = "unknown"
	}
	if m.lines[format] == nil {
		m.lines[format], m.kinds[format] = &parsers.LineCounts{}, &[kindCount]uint64{}
	}
	m.lines[format].Merge(lines)
	for k, n := range kinds {
		m.kinds[format][k] += n
	}
}

var (
	descBuild      = prometheus.NewDesc("relaywatch_build_info", "relaywatch's version; always 1.", []string{"version", "goversion"}, nil)
	descLines      = prometheus.NewDesc("relaywatch_lines_total", "Log lines read, by format and what the parser made of them.", []string{"format", "result"}, nil)
	descEvents     = prometheus.NewDesc("relaywatch_events_total", "Events parsed, by format and kind.", []string{"format", "kind"}, nil)
	descDeliveries = prometheus.NewDesc("relaywatch_deliveries_total", "Delivery attempts, by class (local, inbound, outbound, hop) and status.", []string{"class", "status"}, nil)
	descRelayed    = prometheus.NewDesc("relaywatch_relayed_for_strangers_total", "Outbound deliveries of messages from clients that may not relay.", nil, nil)
	descFindings   = prometheus.NewDesc("relaywatch_findings", "Findings of this run, by rule and severity.", []string{"rule", "severity"}, nil)
	descFired      = prometheus.NewDesc("relaywatch_alerts_fired_total", "Alerts that fired, by rule and severity.", []string{"rule", "severity"}, nil)
	descActive     = prometheus.NewDesc("relaywatch_alerts_active", "Alerts currently open, by rule and severity.", []string{"rule", "severity"}, nil)
	descEvictions  = prometheus.NewDesc("relaywatch_correlation_evictions_total", "Messages dropped from correlation before their end, by reason (cap, ttl).", []string{"reason"}, nil)
	descInFlight   = prometheus.NewDesc("relaywatch_correlation_messages", "Messages currently remembered for correlation.", nil, nil)
	descNotif      = prometheus.NewDesc("relaywatch_notifications_total", "Alert notifications, by sink and result (sent, failed, dropped, merged: an update folded into the same alert's queued notification).", []string{"sink", "result"}, nil)
	descFailures   = prometheus.NewDesc("relaywatch_notification_failures_total", "Failed notification attempts, by sink and reason (timeout, network, rate_limited, server_error, rejected, other).", []string{"sink", "reason"}, nil)
	descRetries    = prometheus.NewDesc("relaywatch_notification_retries_total", "Retried notification sends, by sink.", []string{"sink"}, nil)
	descQueue      = prometheus.NewDesc("relaywatch_notification_queue_length", "Notifications waiting to be sent, by sink.", []string{"sink"}, nil)
	descLastEvent  = prometheus.NewDesc("relaywatch_last_event_timestamp_seconds", "Event time of the latest log line, as a Unix time.", nil, nil)
	descFEvicted   = prometheus.NewDesc("relaywatch_findings_evicted_total", "Findings forgotten, the stalest first, to keep at most --max-findings.", nil, nil)
	descClockLines = prometheus.NewDesc("relaywatch_event_time_outliers_total", "Events judged without moving event time, by reason: ahead (dated beyond --clock-window, not confirmed by the stream) or late (dated more than the window before event time).", []string{"reason"}, nil)
	descClockSteps = prometheus.NewDesc("relaywatch_event_time_steps_total", "Times event time stepped forward by more than --clock-window, confirmed by the lines that followed.", nil, nil)
	descInputErrs  = prometheus.NewDesc("relaywatch_input_errors", "Inputs of this run that could not be read.", nil, nil)
)

// Describe implements prometheus.Collector.
func (m *runMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBuild, descLines, descEvents, descDeliveries, descRelayed, descFindings, descFired, descActive, descEvictions, descInFlight, descNotif, descFailures, descRetries, descQueue, descLastEvent, descInputErrs, descFEvicted, descClockLines, descClockSteps} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *runMetrics) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descBuild, prometheus.GaugeValue, 1, buildVersion(), runtime.Version())
	for format, c := range m.lines {
		for _, r := range parsers.Results() {
			ch <- prometheus.MustNewConstMetric(descLines, prometheus.CounterValue, float64(c[r]), format, r.String())
		}
	}
	for format, k := range m.kinds {
		for i, n := range k {
			if n > 0 {
				ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(n), format, parsers.Kind(i).String())
			}
		}
	}
	for class, byStatus := range m.stats.Deliveries {
		for status, n := range byStatus {
			st := parsers.Status(status).String()
			if st == "" {
				st = "none"
			}
			if n > 0 {
				ch <- prometheus.MustNewConstMetric(descDeliveries, prometheus.CounterValue, float64(n), detect.DeliveryClass(class).String(), st)
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(descRelayed, prometheus.CounterValue, float64(m.stats.RelayedByStranger))
	for _, rule := range detect.Rules {
		for _, sev := range []detect.Severity{detect.SeverityInfo, detect.SeverityWarning, detect.SeverityCritical} {
			n, fired, active := 0, m.fired[[2]string{rule, sev.String()}], 0
			for _, f := range m.findings {
				if f.Rule == rule && f.Severity == sev {
					n++
				}
			}
			for _, a := range m.active {
				if a.Rule == rule && a.Severity == sev {
					active++
				}
			}
			ch <- prometheus.MustNewConstMetric(descFindings, prometheus.GaugeValue, float64(n), rule, sev.String())
			ch <- prometheus.MustNewConstMetric(descFired, prometheus.CounterValue, float64(fired), rule, sev.String())
			ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(active), rule, sev.String())
		}
	}
	ch <- prometheus.MustNewConstMetric(descEvictions, prometheus.CounterValue, float64(m.stats.MessagesEvicted), "cap")
	ch <- prometheus.MustNewConstMetric(descEvictions, prometheus.CounterValue, float64(m.stats.MessagesExpired), "ttl")
	ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(m.inFlight))
	ch <- prometheus.MustNewConstMetric(descFEvicted, prometheus.CounterValue, float64(m.stats.FindingsEvicted))
	ch <- prometheus.MustNewConstMetric(descClockLines, prometheus.CounterValue, float64(m.stats.LinesAhead), "ahead")
	ch <- prometheus.MustNewConstMetric(descClockLines, prometheus.CounterValue, float64(m.stats.LinesLate), "late")
	ch <- prometheus.MustNewConstMetric(descClockSteps, prometheus.CounterValue, float64(m.stats.ClockSteps))
	for _, f := range m.sinks {
		for _, d := range f {
			st := d.Stats()
			ch <- prometheus.MustNewConstMetric(descNotif, prometheus.CounterValue, float64(st.Sent), d.Name(), "sent")
			ch <- prometheus.MustNewConstMetric(descNotif, prometheus.CounterValue, float64(st.Failed), d.Name(), "failed")
			ch <- prometheus.MustNewConstMetric(descNotif, prometheus.CounterValue, float64(st.Dropped), d.Name(), "dropped")
			ch <- prometheus.MustNewConstMetric(descNotif, prometheus.CounterValue, float64(st.Merged), d.Name(), "merged")
			ch <- prometheus.MustNewConstMetric(descRetries, prometheus.CounterValue, float64(st.Retried), d.Name())
			for _, r := range alert.Reasons() {
				ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(st.Failures[r]), d.Name(), r)
			}
			ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(st.Queued), d.Name())
		}
	}
	if m.lastEvent > 0 {
		ch <- prometheus.MustNewConstMetric(descLastEvent, prometheus.GaugeValue, m.lastEvent)
	}
	ch <- prometheus.MustNewConstMetric(descInputErrs, prometheus.GaugeValue, float64(m.inputErrs))
}

// The Go and process collectors, shared by the batch and live registries.
var (
	prometheusGo      = collectors.NewGoCollector()
	prometheusProcess = collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})
)

// registry builds a registry with the run's metrics and the Go and process
// collectors; main creates it, never the global default.
func (m *runMetrics) registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(m, prometheusGo, prometheusProcess)
	return reg
}

// export writes the textfile and pushes to the Pushgateway, as asked.
func (o *metricsOptions) export(ctx context.Context, m *runMetrics) error {
	if o.Textfile == "" && o.Pushgateway == "" {
		return nil
	}
	reg := m.registry()
	if o.Textfile != "" {
		if err := prometheus.WriteToTextfile(o.Textfile, reg); err != nil {
			return fmt.Errorf("--metrics-textfile: %w", err)
		}
	}
	if o.Pushgateway != "" {
		p := push.New(o.Pushgateway, o.PushJob).Gatherer(reg)
		if m.instanceID != "" {
			p = p.Grouping("instance", m.instanceID)
		}
		if err := p.PushContext(ctx); err != nil {
			return fmt.Errorf("--pushgateway: %w", err)
		}
	}
	return nil
}
