package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"

	"github.com/relaywatch/relaywatch/alert"
	"github.com/relaywatch/relaywatch/detect"
)

// Environment variables that carry secrets, so that they stay out of
// process listings and config files.
const (
	envSlackWebhook = "RELAYWATCH_SLACK_WEBHOOK"
	envSlackToken   = "RELAYWATCH_SLACK_TOKEN"
)

// alertOptions are the flags that say where alerts go.
type alertOptions struct {
	SlackWebhook     string
	SlackToken       string
	SlackChannel     string
	SlackAPIURL      string
	Alertmanagers    []string
	AMRefresh        time.Duration
	AlertsLog        string
	ResolveAfter     time.Duration
	Instance         string
	DrainTimeout     time.Duration
	SlackMinSeverity string
	// SlackUpdateInterval is the least time between two Slack messages
	// about one alert (alert.DispatchConfig.UpdateInterval).
	SlackUpdateInterval time.Duration
	slackMinPeriod      time.Duration // tests lower it
}

// AddFlags registers the alert flags.
func (o *alertOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.SlackWebhook, "slack-webhook", "", "Slack incoming webhook URL (better: $"+envSlackWebhook+")")
	fs.StringVar(&o.SlackToken, "slack-token", "", "Slack bot token, with --slack-channel (better: $"+envSlackToken+")")
	fs.StringVar(&o.SlackMinSeverity, "slack-min-severity", "warning", "alerts below this severity (info, warning, critical) are not posted to Slack; Alertmanager and the alerts log get every one")
	fs.DurationVar(&o.SlackUpdateInterval, "slack-update-interval", 5*time.Minute, "least time between two Slack messages about one alert: its updates within it are merged into one with the latest counts (a new alert, a rise in severity and the resolution go at once; 0 sends every update)")
	fs.StringVar(&o.SlackChannel, "slack-channel", "", "Slack channel for the bot token, e.g. #mail-alerts or C0123456")
	fs.StringVar(&o.SlackAPIURL, "slack-api-url", "", "Slack Web API base URL (default Slack's; for tests and proxies)")
	fs.StringArrayVar(&o.Alertmanagers, "alertmanager", nil, "Alertmanager base URL, e.g. http://127.0.0.1:9093 (repeatable)")
	fs.DurationVar(&o.AMRefresh, "alertmanager-refresh", time.Minute, "how often firing alerts are re-sent to Alertmanager")
	fs.StringVar(&o.AlertsLog, "alerts-log", "", "write every alert transition as a JSON line to FILE (- for stdout)")
	fs.DurationVar(&o.ResolveAfter, "resolve-after", alert.DefaultResolveAfter, "event time without new evidence after which an alert resolves")
	fs.StringVar(&o.Instance, "instance", "", "name of this mail host in alerts (default: the host name)")
	fs.DurationVar(&o.DrainTimeout, "alert-drain-timeout", 30*time.Second, "at exit, how long to wait for queued alerts to be sent")
}

// instance names this mail host: --instance, else the host name.
func (o *alertOptions) instance() string {
	if o.Instance != "" {
		return o.Instance
	}
	h, _ := os.Hostname()
	return h
}

// alerting is the running alert machinery: the lifecycle manager, a
// notifier per sink (a dispatcher per network sink, the alerts log written
// at once) and, in watch, the journal of what was delivered.
type alerting struct {
	manager     *alert.Manager
	dispatchers alert.Fanout // get every transition
	summary     alert.Fanout // batch mode: Slack gets one summary at the end
	am          []*alert.Alertmanager
	bot         *alert.SlackBot // the Slack bot sink, if any
	closers     []io.Closer
	senders     sync.WaitGroup // dispatcher goroutines
	refreshers  sync.WaitGroup // Alertmanager refresh loops
	cancel      context.CancelFunc
	drain       time.Duration
	fired       map[[2]string]uint64 // by rule and severity, for metrics
	log         *alert.JSONLog       // --alerts-log, written at once
	store       atomic.Pointer[alert.Store]
	// resolveAfter ends a finding's episode (detect.Config.EpisodeGap).
	resolveAfter time.Duration
	// slackMin is --slack-min-severity: a batch run's Slack summary lists
	// the findings at or above it.
	slackMin detect.Severity
	// onAlert, if set, hears of every alert that fired or grew (watch's
	// --confirm-with-probe); it is called on the detection goroutine and
	// must not block.
	onAlert func(detect.Finding)
	det     *detect.Detector
}

// secrets returns the webhook and token from flags or the environment.
func (o *alertOptions) secrets(e *env) (webhook, token string) {
	webhook, token = o.SlackWebhook, o.SlackToken
	if webhook == "" && e.getenv != nil {
		webhook = e.getenv(envSlackWebhook)
	}
	if token == "" && e.getenv != nil {
		token = e.getenv(envSlackToken)
	}
	return webhook, token
}

// start builds the sinks and starts their dispatchers. With no sink
// configured it returns an alerting that only keeps the lifecycle. In batch
// mode Slack gets one summary per run (sendSummary) instead of every
// transition.
func (o *alertOptions) start(ctx context.Context, e *env, batch bool) (*alerting, error) {
	webhook, token := o.secrets(e)
	if token != "" && o.SlackChannel == "" {
		return nil, fmt.Errorf("%w: a Slack bot token needs --slack-channel", errUsage)
	}
	if o.SlackChannel != "" && token == "" {
		return nil, fmt.Errorf("%w: --slack-channel needs a bot token (--slack-token or $%s)", errUsage, envSlackToken)
	}
	if o.ResolveAfter <= 0 {
		return nil, fmt.Errorf("%w: --resolve-after must be positive", errUsage)
	}
	if webhook != "" {
		if err := checkURL(webhook, true); err != nil {
			return nil, fmt.Errorf("%w: the Slack webhook URL: %w", errUsage, err)
		}
	}
	if o.SlackAPIURL != "" {
		if err := checkURL(o.SlackAPIURL, false); err != nil {
			return nil, fmt.Errorf("%w: --slack-api-url: %w", errUsage, err)
		}
	}
	for _, u := range o.Alertmanagers {
		if err := checkURL(u, false); err != nil {
			return nil, fmt.Errorf("%w: --alertmanager: %w", errUsage, err)
		}
	}
	instance := o.instance()
	a := &alerting{drain: o.DrainTimeout}
	logf := func(msg string) { fmt.Fprintf(e.stderr, "relaywatch: alerts to %s\n", alert.EscapeControl(msg, "")) }
	cfg := alert.DispatchConfig{MinInterval: o.slackMinPeriod, Log: logf, OnDelivered: a.delivered}
	var sinks, slackSinks []alert.Sink
	client := &http.Client{Timeout: 15 * time.Second}
	if webhook != "" {
		slackSinks = append(slackSinks, alert.NewSlackWebhook(webhook, client))
	}
	if token != "" {
		a.bot = alert.NewSlackBot(token, o.SlackChannel, o.SlackAPIURL, client)
		slackSinks = append(slackSinks, a.bot)
	}
	if !batch {
		sinks = append(sinks, slackSinks...)
	}
	for _, u := range o.Alertmanagers {
		am := alert.NewAlertmanager(u, instance, o.AMRefresh, client, nil)
		am.Log = func(msg string) { fmt.Fprintf(e.stderr, "relaywatch: %s\n", alert.EscapeControl(msg, "")) }
		a.am = append(a.am, am)
		sinks = append(sinks, am)
	}
	if o.AlertsLog != "" {
		w := e.stdout
		if o.AlertsLog != "-" {
			f, err := os.OpenFile(o.AlertsLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
			if err != nil {
				return nil, fmt.Errorf("%w: --alerts-log: %w", errUsage, err)
			}
			a.closers = append(a.closers, f)
			w = f
		}
		// The audit trail is written as transitions happen, never queued
		// behind the network sinks.
		a.log = alert.NewJSONLog(w)
		a.log.Log = func(msg string) { fmt.Fprintf(e.stderr, "relaywatch: %s\n", alert.EscapeControl(msg, "")) }
		a.dispatchers = append(a.dispatchers, a.log)
	}
	runCtx, cancel := context.WithCancel(ctx)
	a.cancel = cancel
	startSink := func(s alert.Sink) *alert.Dispatcher {
		c := cfg
		if _, ok := s.(*alert.Alertmanager); ok {
			c.MinInterval = -1 // Slack's rate limit is not Alertmanager's
		} else {
			c.MinSeverity, _ = detect.ParseSeverity(o.SlackMinSeverity) // checked
			c.UpdateInterval = o.SlackUpdateInterval
		}
		d := alert.NewDispatcher(s, c)
		a.senders.Add(1)
		go func() { defer a.senders.Done(); d.Run(runCtx) }()
		return d
	}
	for _, s := range sinks {
		a.dispatchers = append(a.dispatchers, startSink(s))
	}
	if batch {
		for _, s := range slackSinks {
			a.summary = append(a.summary, startSink(s))
		}
	}
	for _, am := range a.am {
		a.refreshers.Add(1)
		go func() { defer a.refreshers.Done(); am.Refresh(runCtx) }()
	}
	a.fired = map[[2]string]uint64{}
	a.resolveAfter = o.ResolveAfter
	a.slackMin, _ = detect.ParseSeverity(o.SlackMinSeverity) // checked
	a.manager = alert.NewManager(a.emit)
	return a, nil
}

// emit hands a transition to the alerts log, at once, and to the sinks'
// queues.
func (a *alerting) emit(t alert.Transition) {
	if t.Kind == alert.Fired {
		a.fired[[2]string{t.Alert.Rule, t.Alert.Severity.String()}]++
	}
	if a.onAlert != nil && (t.Kind == alert.Fired || t.Kind == alert.Updated) {
		a.onAlert(t.Alert.Finding)
	}
	if st := a.store.Load(); st != nil {
		st.Record(t)
	}
	a.dispatchers.Emit(t)
}

// delivered hears from the dispatchers what each sink took.
func (a *alerting) delivered(sink string, batch []alert.Transition) {
	if st := a.store.Load(); st != nil {
		st.Delivered(sink, batch)
	}
}

// alertStoreFile is the alerts' journal in the state directory.
const alertStoreFile = "alerts.journal"

// restore opens the alerts' journal in stateDir (a sidecar's state) and
// brings back what the last run left: the open alerts are re-opened
// without being announced again (and their episodes go on, see attach),
// each sink is sent what it had not taken (a Slack outage, a queue dropped
// at exit), and Alertmanager gets every open alert at once and with every
// refresh, and the Slack bot gets back which message shows which alert.
// legacy are the open alerts of a state file written before the
// journal existed; they count as delivered. Call it before detector.
func (a *alerting) restore(stateDir string, legacy []alert.Alert) error {
	var sinks []string
	for _, n := range a.dispatchers {
		if d, ok := n.(*alert.Dispatcher); ok {
			sinks = append(sinks, d.Name())
		}
	}
	st, err := alert.OpenStore(filepath.Join(stateDir, alertStoreFile), sinks)
	if err != nil {
		return err
	}
	if st.Len() == 0 {
		for _, al := range legacy {
			t := alert.Transition{Kind: alert.Fired, Alert: al}
			st.Record(t)
			for _, s := range sinks {
				st.Delivered(s, []alert.Transition{t})
			}
		}
	}
	open := st.Open()
	a.manager.Restore(open)
	if a.bot != nil {
		// The bot's messages, before it is sent what it missed: an update
		// edits the message it posted before the restart.
		a.bot.Restore(st.Posts(a.bot.Name()), st)
	}
	for _, n := range a.dispatchers {
		if d, ok := n.(*alert.Dispatcher); ok {
			for _, t := range st.Pending(d.Name()) {
				d.Enqueue(t)
			}
		}
	}
	for _, am := range a.am {
		am.Restore(open)
	}
	a.store.Store(st)
	return nil
}

// snapshot takes the alerts that changed since the last save (call it
// under the lock that the positions saved with them are taken under) and
// returns the function that writes them to the journal.
func (a *alerting) snapshot() func() error {
	st := a.store.Load()
	if st == nil {
		return func() error { return nil }
	}
	return st.Snapshot()
}

// checkURL checks a sink's URL at start: absolute, http or https, with a
// host. A webhook URL is a secret: the error never shows it.
func checkURL(raw string, secret bool) error {
	u, err := url.Parse(raw)
	show := func() string {
		if secret || u == nil {
			return "it"
		}
		return fmt.Sprintf("%q", raw)
	}
	switch {
	case err != nil:
		if secret {
			return errors.New("not a URL")
		}
		return err
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%s must start with https:// (or http://)", show())
	case u.Host == "":
		return fmt.Errorf("%s has no host", show())
	}
	return nil
}

// sendSummary queues one summary of a batch run's findings (at or above
// --slack-min-severity, worst first) for the Slack sinks.
func (a *alerting) sendSummary(findings []detect.Finding, notes []string) {
	var batch []alert.Transition
	for _, f := range findings {
		if f.Severity >= a.slackMin {
			batch = append(batch, alert.Transition{Kind: alert.Summary, Alert: alert.FromFinding(f)})
		}
	}
	if len(batch) > 0 {
		batch[0].Notes = notes
	}
	if len(batch) == 0 || len(a.summary) == 0 {
		return
	}
	for _, d := range a.summary {
		d.EnqueueBatch(batch)
	}
}

// observe feeds a finding to the lifecycle (detect.Config.OnFinding).
func (a *alerting) observe(f detect.Finding) { a.manager.Observe(f) }

// configure points a detector's findings at the alerts: they report to
// observe, and their episodes end after --resolve-after.
func (a *alerting) configure(cfg *detect.Config) {
	cfg.OnFinding = a.observe
	cfg.EpisodeGap = a.resolveAfter
}

// attach gives the detector the episodes of the alerts restored from a
// saved state, so that their counts go on and they resolve on event time.
func (a *alerting) attach(d *detect.Detector) {
	a.det = d
	d.Restore(a.manager.Findings())
}

// advance moves the episode clock without a line, so that alerts resolve
// while the logs are quiet.
func (a *alerting) advance(t time.Time) {
	if a.det != nil {
		a.det.Advance(t)
	}
}

// stop lets the dispatchers send what is queued, for at most the drain
// timeout, and reports what could not be sent.
func (a *alerting) stop(e *env) {
	all := append(append(alert.Fanout(nil), a.dispatchers...), a.summary...)
	for _, d := range all {
		d.Close()
	}
	done := make(chan struct{})
	go func() { a.senders.Wait(); close(done) }()
	timer := time.NewTimer(a.drain)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
	a.cancel() // what is still queued is counted as dropped
	a.senders.Wait()
	a.refreshers.Wait()
	for _, d := range all {
		if st := d.Stats(); st.Dropped > 0 || st.Failed > 0 {
			fmt.Fprintf(e.stderr, "relaywatch: alerts to %s: %d sent, %d failed, %d dropped\n", d.Name(), st.Sent, st.Failed, st.Dropped)
		}
	}

	if st := a.store.Load(); st != nil {
		// What the sinks took while draining.
		if err := st.Save(); err != nil {
			fmt.Fprintf(e.stderr, "relaywatch: %v\n", err)
		}
		st.Close()
	}
	for _, c := range a.closers {
		c.Close()
	}
}

// terminalWriter shows control characters written to it as escapes (\e,
// \x07, \u009b), keeping newlines and tabs: the text report prints log
// lines, which attackers write, and must not let them clear the
// operator's screen or paint "ALL CLEAR" on it.
type terminalWriter struct{ w io.Writer }

// terminalSafe wraps w for a report meant for a terminal.
func terminalSafe(w io.Writer) io.Writer { return terminalWriter{w} }

// Write implements io.Writer; it reports len(p) written when all of the
// escaped text was.
func (t terminalWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(t.w, alert.EscapeControl(string(p), "\n\t")); err != nil {
		return 0, err
	}
	return len(p), nil
}

// jsonTerminalWriter escapes, in JSON written to it in whole values (as
// json.Encoder does), the control characters encoding/json leaves raw.
type jsonTerminalWriter struct{ w io.Writer }

// Write implements io.Writer.
func (j jsonTerminalWriter) Write(p []byte) (int, error) {
	if _, err := j.w.Write(alert.EscapeJSONControls(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}
