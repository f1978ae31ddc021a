package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/relaywatch/relaywatch/detect"
	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/all"
	"github.com/relaywatch/relaywatch/parsers/stream"
)

// analyzeOptions are the flags of `relaywatch analyze`.
type analyzeOptions struct {
	input   inputOptions
	policy  policyOptions
	alerts  alertOptions
	metrics metricsOptions
	confirm confirmOptions
	Output  string
	HTML    string
	FailOn  string
	// Progress is auto (on a terminal), always or never.
	Progress string
	Config   string
}

// policyOptions are the flags that configure detection.
type policyOptions struct {
	LocalDomains    []string
	TrustedNetworks []string
	KnownClients    []string
	Baseline        string
	WarnNewRelayers bool
	LearnPeriod     time.Duration
	MinRelayed      int
	SpikeWindow     time.Duration
	SpikeFactor     float64
	SpikeMin        int
	SpikeAlpha      float64
	MaxMessages     int
	MessageTTL      time.Duration
	MaxFindings     int
	ClockWindow     time.Duration
	ClockConfirm    int
	// The MTA's own configuration (paths; "" for none).
	PostfixConfig  string
	EximConfig     string
	ExchangeConfig string
	// trust is what was read from them, for the report.
	trust []parsers.Trust
}

// AddFlags registers the detection flags.
func (o *policyOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&o.LocalDomains, "local-domains", nil, "our mail domains, comma-separated or repeated (\".example.org\" for all subdomains); more are learned from local deliveries")
	fs.StringSliceVar(&o.TrustedNetworks, "trusted-networks", detect.DefaultTrustedNetworks, "networks (CIDRs or addresses) whose clients may relay, like Postfix's mynetworks")
	fs.StringSliceVar(&o.KnownClients, "known-clients", nil, "other clients (CIDRs or addresses) known to relay legitimately")
	fs.StringVar(&o.PostfixConfig, "postfix-config", "", "take local domains, relay domains and mynetworks from this Postfix configuration (directory or main.cf; asks postconf when installed)")
	fs.StringVar(&o.EximConfig, "exim-config", "", "take local_domains, relay_to_domains and relay_from_hosts from this Exim configuration file (\"auto\": ask exim -bP config_file)")
	fs.StringVar(&o.ExchangeConfig, "exchange-config", "", "take accepted domains and relay connectors' remote IP ranges from this file (see the README's PowerShell one-liner)")
	fs.StringVar(&o.Baseline, "baseline", "", "JSON file of relayers and local domains learned by earlier runs; read at start and updated at the end")
	fs.BoolVar(&o.WarnNewRelayers, "warn-new-relayers", false, "warn when a trusted client or an authenticated user relays for the first time (against --baseline)")
	fs.DurationVar(&o.LearnPeriod, "learn-period", 24*time.Hour, "event time, from the baseline's start, during which new relayers are learned without a warning")
	fs.IntVar(&o.MinRelayed, "min-relayed", 1, "relayed messages from one client before foreign-to-foreign and unknown-relaying-client report it")
	fs.DurationVar(&o.SpikeWindow, "spike-window", detect.DefaultSpikeWindow, "outbound-spike: length of the counting window")
	fs.Float64Var(&o.SpikeFactor, "spike-factor", detect.DefaultSpikeFactor, "outbound-spike: a window must reach this multiple of the learned baseline")
	fs.IntVar(&o.SpikeMin, "spike-min", detect.DefaultSpikeMin, "outbound-spike: fewer outbound deliveries in a window never raise a finding")
	fs.Float64Var(&o.SpikeAlpha, "spike-alpha", detect.DefaultSpikeAlpha, "outbound-spike: weight of the newest window in the baseline (EWMA), in (0,1]")
	fs.IntVar(&o.MaxMessages, "max-messages", 50000, "messages kept in memory for correlation; the least recently active is evicted beyond it")
	fs.DurationVar(&o.MessageTTL, "message-ttl", 120*time.Hour, "event time after which a message without a removal line is forgotten")
	fs.IntVar(&o.MaxFindings, "max-findings", 10000, "findings (rule and key) kept in memory; the stalest is forgotten beyond it, never a new one")
	fs.DurationVar(&o.ClockWindow, "clock-window", detect.DefaultClockWindow, "a line dated further ahead of event time does not move it until --clock-confirm lines in a row agree")
	fs.IntVar(&o.ClockConfirm, "clock-confirm", detect.DefaultClockConfirm, "consecutive lines beyond --clock-window (from two hosts when the log has several) that step event time")
}

// detector builds the detector and the baseline from the options; alerts
// (may be nil) hears of findings as they appear, grow and end.
func (o *policyOptions) detector(alerts *alerting) (*detect.Detector, *detect.Baseline, error) {
	var baseline *detect.Baseline
	localDomains := o.LocalDomains
	if o.Baseline != "" {
		var err error
		if baseline, err = detect.LoadBaseline(o.Baseline); err != nil {
			return nil, nil, fmt.Errorf("%w: --baseline: %w", errUsage, err)
		}
		localDomains = append(append([]string(nil), localDomains...), baseline.LocalDomains...)
	}
	policy, err := o.policy(localDomains)
	if err != nil {
		return nil, nil, err
	}
	cfg := detect.Config{
		Policy:          policy,
		MessageTTL:      o.MessageTTL,
		MaxMessages:     o.MaxMessages,
		MaxFindings:     o.MaxFindings,
		ClockWindow:     o.ClockWindow,
		ClockConfirm:    o.ClockConfirm,
		MinRelayed:      o.MinRelayed,
		WarnNewRelayers: o.WarnNewRelayers,
		Baseline:        baseline,
		LearnPeriod:     o.LearnPeriod,
		Advice:          all.Formats().AdviceFor,
		Spike: detect.SpikeConfig{
			Window: o.SpikeWindow, Factor: o.SpikeFactor, Min: o.SpikeMin, Alpha: o.SpikeAlpha,
		},
	}
	if alerts != nil {
		alerts.configure(&cfg)
	}
	d, err := detect.New(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	if alerts != nil {
		alerts.attach(d)
	}
	return d, baseline, nil
}

// policy builds the trust model from the flags, extra local domains (a
// baseline's) and the MTA's configuration (read again at each call: watch
// calls it at SIGHUP).
func (o *policyOptions) policy(localDomains []string) (*detect.Policy, error) {
	trusted := o.TrustedNetworks
	trust, err := o.readTrust()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	o.trust = trust
	for _, t := range trust {
		localDomains = append(append(append([]string(nil), localDomains...), t.LocalDomains...), t.RelayDomains...)
		trusted = append(append([]string(nil), trusted...), t.Networks...)
	}
	p, err := detect.NewPolicy(localDomains, trusted, o.KnownClients)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	return p, nil
}

// AddFlags registers analyze's flags.
func (o *analyzeOptions) AddFlags(fs *pflag.FlagSet) {
	o.input.AddFlags(fs)
	o.policy.AddFlags(fs)
	o.alerts.AddFlags(fs)
	o.metrics.AddFlags(fs)
	o.confirm.AddFlags(fs)
	fs.StringVarP(&o.Output, "output", "o", "text", "report format: text or json")
	fs.StringVar(&o.HTML, "html", "", "also write the report as one self-contained HTML file (chart, timeline, findings)")
	fs.StringVar(&o.FailOn, "fail-on", "critical", "exit 1 when a finding has this severity or worse: info, warning, critical")
	fs.StringVar(&o.Progress, "progress", "auto", "progress on stderr: auto (when stderr is a terminal), always, never")
	fs.StringVar(&o.Config, "config", "", "YAML file of settings: flag names without dashes as keys (the command line wins)")
}

func analyzeCommand() command {
	return command{
		name:    "analyze",
		summary: "analyze log files (plain, .gz, - for stdin) and report traffic totals and relay findings",
		usage:   "analyze [flags] FILE...",
		flags: func() (*pflag.FlagSet, func(context.Context, *env, []string) error) {
			o := &analyzeOptions{}
			fs := pflag.NewFlagSet("analyze", pflag.ContinueOnError)
			o.AddFlags(fs)
			return fs, func(ctx context.Context, e *env, args []string) error { return runAnalyze(ctx, e, o, args) }
		},
	}
}

// check validates analyze's settings; analyze runs it at start and
// check-config --for analyze runs the same.
func (o *analyzeOptions) check() []settingError {
	var errs []settingError
	if o.Output != "text" && o.Output != "json" {
		errs = append(errs, settingError{"output", fmt.Errorf("--output %q: use text or json", o.Output)})
	}
	if _, err := detect.ParseSeverity(o.FailOn); err != nil {
		errs = append(errs, settingError{"fail-on", fmt.Errorf("--fail-on: %w", err)})
	}
	switch o.Progress {
	case "auto", "always", "never":
	default:
		errs = append(errs, settingError{"progress", fmt.Errorf("--progress %q: use auto, always or never", o.Progress)})
	}
	errs = append(errs, o.input.check()...)
	errs = append(errs, o.policy.check()...)
	errs = append(errs, o.alerts.check()...)
	errs = append(errs, o.confirm.check()...)
	return errs
}

// runAnalyze is `relaywatch analyze`.
func runAnalyze(ctx context.Context, e *env, o *analyzeOptions, files []string) error {
	if errs := o.check(); len(errs) > 0 {
		return fmt.Errorf("%w: %w", errUsage, errs[0].Err)
	}
	if len(files) == 0 {
		return fmt.Errorf("%w: no input files (use - for stdin)", errUsage)
	}
	failOn, _ := detect.ParseSeverity(o.FailOn)
	res, err := o.input.resolve()
	if err != nil {
		return err
	}
	alerts, err := o.alerts.start(ctx, e, true)
	if err != nil {
		return err
	}
	stopAlerts := sync.OnceFunc(func() { alerts.stop(e) })
	defer stopAlerts()
	det, baseline, err := o.policy.detector(alerts)
	if err != nil {
		return err
	}
	writeTrust(e.stderr, o.policy.trust)
	totals := detect.NewTotalsCounter()
	rep := &report{hosts: map[string]bool{}}

	prog := &progress{}
	if o.Progress == "always" || (o.Progress == "auto" && e.stderrIsTerminal) {
		stop := startProgress(e.stderr, prog)
		defer stop()
	}
	start := time.Now()
	pipe := &pipeline{det: det, observe: func(ev *parsers.Event) {
		totals.Handle(ev)
		rep.observe(ev)
	}}
	results, readErr := readInputs(ctx, e, &o.input, res, files, prog, func(b *stream.Batch) error {
		pipe.handle(b.Events)
		return nil
	})
	if readErr != nil && !errors.Is(readErr, errInput) {
		return readErr
	}
	det.Flush() // the end of the input: copies still waiting for a parent are judged
	rep.elapsed = time.Since(start)
	rep.fill(results, totals.Totals(), det)
	rep.trust = o.policy.trust
	rep.probe = confirmFindings(ctx, o.confirm.confirmer(o.policy.LocalDomains), rep.findings)
	alerts.sendSummary(rep.findings)
	stopAlerts() // before the report, which may share stdout with --alerts-log -
	m := rep.metrics(det, alerts)
	m.instanceID = o.alerts.instance()
	if err := o.metrics.export(ctx, m); err != nil {
		fmt.Fprintf(e.stderr, "relaywatch analyze: %v\n", err)
		if readErr == nil {
			readErr = fmt.Errorf("%w: %w", errInput, err)
		}
	}

	if baseline != nil {
		baseline.MergeLocalDomains(det.Policy().LearnedLocalDomains())
		if err := baseline.Save(o.policy.Baseline); err != nil {
			// The report is still printed, and findings still win.
			fmt.Fprintf(e.stderr, "relaywatch analyze: --baseline: %v\n", err)
			readErr = errors.Join(readErr, fmt.Errorf("%w: --baseline: %w", errInput, err))
		}
	}
	switch o.Output {
	case "json":
		enc := json.NewEncoder(jsonTerminalWriter{e.stdout})
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // evidence lines keep their <, > and &
		if err := enc.Encode(rep.json()); err != nil {
			return err
		}
	default:
		rep.writeText(terminalSafe(e.stdout))
	}
	if o.HTML != "" {
		if err := rep.writeHTMLFile(o.HTML); err != nil {
			// As with --baseline: reported, and findings still win.
			fmt.Fprintf(e.stderr, "relaywatch analyze: %v\n", err)
			readErr = errors.Join(readErr, fmt.Errorf("%w: %w", errInput, err))
		}
	}
	// Exit status for cron: findings at or above --fail-on win over input
	// errors (exit 1, not 2), so that a wrapper that pages on 1 never misses
	// a relay because a rotated file vanished; the input errors are on
	// stderr and in the JSON report either way.
	for _, f := range rep.findings {
		if f.Severity >= failOn {
			if readErr != nil {
				fmt.Fprintf(e.stderr, "relaywatch analyze: %v\n", readErr)
			}
			return errFindings
		}
	}
	return readErr
}
