package main

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	yamlv2 "go.yaml.in/yaml/v2"
)

// The files in deploy/ are checked with Prometheus' own packages (rulefmt
// and the PromQL parser) and against the metrics a running watch serves,
// so that a renamed metric or a typo in a query fails here rather than in
// an operator's Prometheus or Grafana.

var promql = parser.NewParser(parser.Options{})

// servedMetricNames runs the relaywatch binary's watch on a copy of the
// Exim incident with a JSON alerts log (a sink) and returns the metric names
// on its /metrics once it has read the file, fired its alerts and saved its
// state.
func servedMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	dir := t.TempDir()
	sample, err := os.ReadFile(filepath.Join("..", "..", "samples", "exim", "incident.log"))
	if err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "mainlog")
	if err := os.WriteFile(logFile, sample, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, addr, _ := startProcess(t, buildBinary(t, dir), "watch", "--listen", "127.0.0.1:0", "--state-interval", "100ms",
		"--rescan", "100ms", "--year", "2026", "--timezone", "UTC", "--trusted-networks", "127.0.0.1/32",
		"--state-dir", filepath.Join(dir, "state"), "--from-start", "--alerts-log", filepath.Join(dir, "alerts.jsonl"), logFile)
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	names := map[string]bool{}
	waitUntil(t, 20*time.Second, "the incident and a state save", func() bool {
		m := scrape(t, addr)
		clear(names)
		for k := range m {
			names[k[:strings.IndexByte(k, '{')]] = true
		}
		return m[`relaywatch_alerts_active{rule=foreign-to-foreign,severity=critical}`] == 2 && m[`relaywatch_state_saves_total{result=ok}`] > 0
	})
	return names
}

// metricNames returns the metric names an expression selects.
func metricNames(t *testing.T, expr string) []string {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Errorf("PromQL %q does not parse: %v", expr, err)
		return nil
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			names = append(names, vs.Name)
		}
		return nil
	})
	return names
}

// checkServed fails for every relaywatch metric in names that watch does not serve.
func checkServed(t *testing.T, where string, names []string, served map[string]bool) {
	t.Helper()
	for _, n := range names {
		if strings.HasPrefix(n, "relaywatch_") && !served[n] {
			t.Errorf("%s uses %s, which /metrics does not serve", where, n)
		}
	}
}

// ruleFiles returns the Prometheus rule files in deploy/prometheus.
func ruleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "deploy", "prometheus", "*.rules.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule files in deploy/prometheus (%v)", err)
	}
	return files
}

func TestDeployPrometheusRules(t *testing.T) {
	served := servedMetricNames(t)
	recorded := map[string]bool{}
	var exprs []struct{ where, expr string }
	for _, f := range ruleFiles(t) {
		groups, errs := rulefmt.ParseFile(f, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
		for _, err := range errs {
			t.Errorf("%v", err)
		}
		if groups == nil {
			continue
		}
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				name := r.Alert + r.Record
				if r.Record != "" {
					recorded[r.Record] = true
				}
				if r.Alert != "" && r.Annotations["summary"] == "" {
					t.Errorf("%s: alert %s has no summary", f, r.Alert)
				}
				exprs = append(exprs, struct{ where, expr string }{filepath.Base(f) + " " + name, r.Expr})
			}
		}
	}
	for _, e := range exprs {
		var names []string
		for _, n := range metricNames(t, e.expr) {
			if !recorded[n] { // a recording rule's output is served by Prometheus
				names = append(names, n)
			}
		}
		checkServed(t, e.where, names, served)
	}
}

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	Title      string `json:"title"`
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID      int    `json:"id"`
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			Expr  string `json:"expr"`
			RefID string `json:"refId"`
		} `json:"targets"`
	} `json:"panels"`
}

var grafanaVar = regexp.MustCompile(`\$(__rate_interval|__interval|__range|\{?[A-Za-z_]+\}?)`)

func TestDeployGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "relaywatch.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("dashboard without uid or title")
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	served := servedMetricNames(t)
	ids := map[int]bool{}
	queries := 0
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d repeated", p.ID)
		}
		ids[p.ID] = true
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			// Grafana's variables become what Grafana would put there.
			expr := grafanaVar.ReplaceAllStringFunc(tg.Expr, func(v string) string {
				name := strings.Trim(v, "${}")
				switch name {
				case "__rate_interval", "__interval", "__range":
					return "5m"
				}
				if !vars[name] {
					t.Errorf("panel %q uses $%s, which the dashboard does not define", p.Title, name)
				}
				return ".*"
			})
			checkServed(t, "panel "+p.Title, metricNames(t, expr), served)
		}
	}
	for _, v := range d.Templating.List {
		if m := regexp.MustCompile(`label_values\((\w+)`).FindStringSubmatch(v.Definition); m != nil {
			checkServed(t, "variable $"+v.Name, []string{m[1]}, served)
		}
	}
	// Served metrics that no panel shows are listed, not failed: not every
	// counter deserves a panel.
	var all []string
	for n := range served {
		if strings.HasPrefix(n, "relaywatch_") && !strings.Contains(string(b), n) {
			all = append(all, n)
		}
	}
	sort.Strings(all)
	t.Logf("%d queries; metrics served but not on the dashboard: %v", queries, all)
}

// prometheusExample is the part of Prometheus' configuration that
// deploy/prometheus/prometheus.example.yml uses, decoded strictly (an
// unknown or misspelt key fails). Prometheus' own config package pulls in
// every cloud SDK, so the relabelling is checked with its relabel package.
type prometheusExample struct {
	Global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	} `yaml:"global"`
	RuleFiles []string `yaml:"rule_files"`
	Alerting  struct {
		Alertmanagers []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"alertmanagers"`
	} `yaml:"alerting"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		StaticConfigs []struct {
			Targets []string          `yaml:"targets"`
			Labels  map[string]string `yaml:"labels"`
		} `yaml:"static_configs"`
		KubernetesSDConfigs []struct {
			Role string `yaml:"role"`
		} `yaml:"kubernetes_sd_configs"`
		RelabelConfigs []*relabel.Config `yaml:"relabel_configs"`
	} `yaml:"scrape_configs"`
}

// TestDeployPrometheusExample checks the fleet's scrape configuration: its
// rule files exist, its relabelling is valid and turns each static target
// into job="relaywatch" and instance="the host name", which the rules use.
func TestDeployPrometheusExample(t *testing.T) {
	dir := filepath.Join("..", "..", "deploy", "prometheus")
	b, err := os.ReadFile(filepath.Join(dir, "prometheus.example.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg prometheusExample
	if err := yamlv2.UnmarshalStrict(b, &cfg); err != nil {
		t.Fatalf("prometheus.example.yml: %v", err)
	}
	for _, f := range cfg.RuleFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("rule_files: %v", err)
		}
	}
	targets := 0
	for _, sc := range cfg.ScrapeConfigs {
		for _, rc := range sc.RelabelConfigs {
			if err := rc.Validate(model.UTF8Validation); err != nil {
				t.Errorf("%s: relabel_configs: %v", sc.JobName, err)
			}
		}
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				targets++
				lb := labels.NewBuilder(labels.FromStrings("__address__", target, "job", sc.JobName))
				if !relabel.ProcessBuilder(lb, sc.RelabelConfigs...) {
					t.Errorf("%s: %s dropped", sc.JobName, target)
				}
				got := lb.Labels()
				host := strings.Split(target, ":")[0]
				if got.Get("instance") != host || got.Get("job") != "relaywatch" {
					t.Errorf("%s: %s becomes %v, want instance=%q job=relaywatch", sc.JobName, target, got, host)
				}
			}
		}
		if len(sc.KubernetesSDConfigs) > 0 {
			lb := labels.NewBuilder(labels.FromStrings("__address__", "10.1.2.3:9792", "job", sc.JobName,
				"__meta_kubernetes_pod_annotation_prometheus_io_scrape", "true",
				"__meta_kubernetes_pod_container_port_name", "metrics",
				"__meta_kubernetes_pod_label_app_kubernetes_io_instance", "mx1"))
			if !relabel.ProcessBuilder(lb, sc.RelabelConfigs...) {
				t.Errorf("%s: the annotated Pod of deploy/kubernetes is dropped", sc.JobName)
			} else if got := lb.Labels(); got.Get("instance") != "mx1" || got.Get("job") != "relaywatch" {
				t.Errorf("%s: the annotated Pod becomes %v", sc.JobName, got)
			}
		}
	}
	if targets == 0 {
		t.Error("no static targets")
	}
}
