package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/relaywatch/relaywatch/alert"
	"github.com/relaywatch/relaywatch/detect"
	"github.com/relaywatch/relaywatch/detect/probe"
	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/source"
	"github.com/relaywatch/relaywatch/parsers/stream"
)

// DefaultListen is the sidecar's HTTP address: port 9792, away from the
// common exporters (node 9100, postfix_exporter 9154, blackbox 9115, ...).
const DefaultListen = ":9792"

// watchOptions are the flags of `relaywatch watch`.
type watchOptions struct {
	input         inputOptions
	policy        policyOptions
	alerts        alertOptions
	confirm       confirmOptions
	Listen        string
	StateDir      string
	StateInterval time.Duration
	Poll          bool
	PollInterval  time.Duration
	Rescan        time.Duration
	FromStart     bool
	Journal       []string
	ShutdownGrace time.Duration
	LogFormat     string
	MTAConfig     string
	Config        string
	Files         []string
}

// AddFlags registers watch's flags.
func (o *watchOptions) AddFlags(fs *pflag.FlagSet) {
	o.input.AddFlags(fs)
	o.policy.AddFlags(fs)
	o.alerts.AddFlags(fs)
	o.confirm.AddFlags(fs)
	fs.StringVar(&o.Listen, "listen", DefaultListen, "HTTP address for /metrics, /healthz and /readyz (\"\" to disable)")
	fs.StringVar(&o.StateDir, "state-dir", "", "directory for positions and learned state (survives restarts); required")
	fs.DurationVar(&o.StateInterval, "state-interval", 5*time.Second, "how often positions and state are saved")
	fs.BoolVar(&o.Poll, "poll", false, "no change notifications (inotify): look at files only every --poll-interval (network file systems)")
	fs.DurationVar(&o.PollInterval, "poll-interval", 250*time.Millisecond, "how often a followed file is looked at for new lines, rotation and truncation when idle")
	fs.DurationVar(&o.Rescan, "rescan", 5*time.Second, "how often globs are matched again for new files")
	fs.BoolVar(&o.FromStart, "from-start", false, "read files found at the first start from their beginning (default: from their end)")
	fs.StringArrayVar(&o.Journal, "journal", nil, "follow a systemd unit's journal through journalctl (repeatable), e.g. postfix@-.service")
	fs.DurationVar(&o.ShutdownGrace, "shutdown-grace", 10*time.Second, "at SIGTERM, how long queued alerts may take to be sent before exiting")
	fs.StringVar(&o.LogFormat, "log-format", "text", "format of watch's own log on stderr: text or json")
	fs.StringVar(&o.MTAConfig, "mta-config", "auto", "auto: without --postfix-config or --exim-config, take the trust model from the local MTA's configuration when its tool (postconf, exim) is installed; none: only the flags")
	fs.StringVar(&o.Config, "config", "", "YAML file of settings: flag names without dashes as keys (the command line wins); check it with relaywatch check-config")
	fs.StringArrayVar(&o.Files, "files", nil, "files or globs to follow, like the arguments (for the config file)")
}

func watchCommand() command {
	return command{
		name:    "watch",
		summary: "follow live logs (files, globs, - for stdin, journald), alert and serve Prometheus metrics: the sidecar",
		usage:   "watch [flags] PATH|GLOB|- ...",
		flags: func() (*pflag.FlagSet, func(context.Context, *env, []string) error) {
			o := &watchOptions{}
			fs := pflag.NewFlagSet("watch", pflag.ContinueOnError)
			o.AddFlags(fs)
			return fs, func(ctx context.Context, e *env, args []string) error { return runWatch(ctx, e, o, args) }
		},
	}
}

// check validates watch's settings; watch runs it at start and check-config
// runs the same. Each problem names its setting.
func (o *watchOptions) check(args []string) []settingError {
	var errs []settingError
	add := func(setting string, format string, a ...any) {
		errs = append(errs, settingError{Setting: setting, Err: fmt.Errorf(format, a...)})
	}
	if len(args)+len(o.Files) == 0 && len(o.Journal) == 0 {
		add("files", "nothing to watch: give files, globs, - for stdin, or --journal UNIT")
	}
	if o.StateDir == "" {
		add("state-dir", "--state-dir is required (positions and learned state live there)")
	}
	if o.StateInterval <= 0 {
		add("state-interval", "--state-interval %v: must be positive", o.StateInterval)
	}
	if o.Rescan <= 0 {
		add("rescan", "--rescan %v: must be positive", o.Rescan)
	}
	if o.PollInterval <= 0 {
		add("poll-interval", "--poll-interval %v: must be positive", o.PollInterval)
	}
	if o.ShutdownGrace < 0 {
		add("shutdown-grace", "--shutdown-grace %v: must not be negative", o.ShutdownGrace)
	}
	if o.MTAConfig != "auto" && o.MTAConfig != "none" {
		add("mta-config", "--mta-config %q: use auto or none", o.MTAConfig)
	}
	if o.LogFormat != "text" && o.LogFormat != "json" {
		add("log-format", "--log-format %q: use text or json", o.LogFormat)
	}
	if o.Listen != "" {
		if _, port, err := net.SplitHostPort(o.Listen); err != nil || port == "" {
			add("listen", "--listen %q: want HOST:PORT or :PORT (e.g. :9792 or 127.0.0.1:9792)", o.Listen)
		}
	}
	errs = append(errs, o.input.check()...)
	errs = append(errs, o.policy.check()...)
	errs = append(errs, o.alerts.check()...)
	errs = append(errs, o.confirm.check()...)
	return errs
}

// watcher is the running sidecar.
type watcher struct {
	o        *watchOptions
	e        *env
	log      *slog.Logger
	res      *resolved
	pipe     *pipeline
	baseline *detect.Baseline // --baseline, saved with the state
	alerts   *alerting
	state    *stateFiles
	follower *source.Follower
	confirm  *liveConfirmer // nil without --confirm-with-probe
	started  time.Time

	mu        sync.Mutex // guards everything below and the detector
	live      *stream.Live
	positions source.Positions
	lastWall  time.Time // wall clock of the last line
	saves     uint64
	saveFails uint64
	ready     atomic.Bool
	buf       []parsers.Event
}

// runWatch is `relaywatch watch`.
func runWatch(ctx context.Context, e *env, o *watchOptions, args []string) error {
	args = append(append([]string(nil), o.Files...), args...)
	if errs := o.check(args); len(errs) > 0 {
		return fmt.Errorf("%w: %w", errUsage, errs[0].Err)
	}
	log := newLogger(e.stderr, o.LogFormat)
	if err := os.MkdirAll(o.StateDir, 0o750); err != nil {
		return fmt.Errorf("%w: --state-dir: %w", errUsage, err)
	}
	res, err := o.input.resolve()
	if err != nil {
		return err
	}
	if o.MTAConfig == "auto" {
		o.policy.localMTA(log)
	}
	w := &watcher{o: o, e: e, log: log, res: res, started: time.Now()}
	w.live = stream.NewLive(res.registry, res.format, func() parsers.Options {
		return parsers.Options{Year: o.input.Year, ModTime: time.Now(), Location: res.location}
	})
	if w.state, err = openState(o.StateDir); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	w.positions = w.state.positions.Clone()
	// Alerts: the sinks get every transition; open alerts come back from
	// the state without being announced again.
	actx, acancel := context.WithCancel(context.Background())
	defer acancel()
	if w.alerts, err = o.alerts.start(actx, e, false); err != nil {
		return err
	}
	if err := w.alerts.restore(o.StateDir, w.state.saved.OpenAlerts); err != nil {
		return err
	}
	det, baseline, err := o.policy.detector(w.alerts)
	if err != nil {
		return err
	}
	w.baseline = baseline
	w.pipe = &pipeline{det: det}
	if c := o.confirm.confirmer(o.policy.LocalDomains); c != nil {
		w.confirm = &liveConfirmer{c: c, log: log, announce: w.announceConfirmation}
	}
	logTrust(log, o.policy.trust)
	for _, d := range w.state.saved.LocalDomains {
		det.Policy().LearnLocalDomain(d) // learned before the restart
	}

	// HTTP: /metrics, /healthz, /readyz. Listening now fails fast on a bad
	// --listen; serving starts once the inputs are set up.
	var srv *http.Server
	var ln net.Listener
	if o.Listen != "" {
		if ln, err = net.Listen("tcp", o.Listen); err != nil {
			return fmt.Errorf("%w: --listen: %w", errUsage, err)
		}
	}

	batches := make(chan source.Batch, 64)
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	if w.confirm != nil {
		// A new critical relay finding calls for a probe: the alert that
		// fires for it says so, without copying the findings.
		w.alerts.onAlert = func(f detect.Finding) { w.confirm.consider(rctx, []detect.Finding{f}) }
	}
	var followers sync.WaitGroup // readers that stop when rctx is done
	var files []string
	for _, a := range args {
		if a == source.Stdin {
			w.live.Add(source.Stdin, w.started)
			// Not waited for: a read from a terminal cannot be interrupted.
			go func() {
				if err := source.ReadStream(rctx, source.Stdin, e.stdin, 0, batches); err != nil && rctx.Err() == nil {
					log.Error("reading stdin", "err", err)
				}
			}()
			continue
		}
		files = append(files, a)
		if !strings.ContainsAny(a, "*?[") {
			w.live.Add(a, w.started) // its series exist from the start, even while it cannot be read
		}
	}
	if len(files) > 0 {
		w.follower = source.NewFollower(source.FollowConfig{
			Patterns: files, Positions: w.state.positions, FirstStart: w.state.firstStart,
			FromStart: o.FromStart, Saved: w.state.savedAt, Poll: o.Poll, PollInterval: o.PollInterval,
			Rescan: o.Rescan, Logger: log,
		})
		followers.Add(1)
		go func() { defer followers.Done(); w.follower.Run(rctx, batches) }()
	}
	for _, unit := range o.Journal {
		w.live.Add(source.JournalInput(unit), w.started)
		name := strings.NewReplacer("/", "_", "@", "_").Replace(unit)
		followers.Add(1)
		go func() {
			defer followers.Done()
			source.FollowJournal(rctx, source.JournalConfig{
				Unit: unit, CursorFile: filepath.Join(o.StateDir, "journal-"+name+".cursor"), Logger: log,
			}, batches)
		}()
	}
	if ln != nil {
		var limited net.Listener
		srv, limited = newHTTPServer(ln, w.handler()) // timeouts and a connection limit: httpserver.go
		go srv.Serve(limited)
		log.Info("serving /metrics, /healthz and /readyz", "addr", ln.Addr().String())
	}
	if w.follower != nil {
		go func() {
			select {
			case <-w.follower.Ready():
				w.ready.Store(true)
				log.Info("ready: following", "inputs", len(w.follower.Status()), "first_start", w.state.firstStart)
			case <-rctx.Done():
			}
		}()
	} else {
		w.ready.Store(true)
	}

	// SIGHUP reloads the config file; reading goes on meanwhile.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reloads := make(chan *detect.Policy, 1)

	tick := time.NewTicker(o.StateInterval)
	defer tick.Stop()
	idle := time.NewTicker(time.Second)
	defer idle.Stop()
loop:
	for {
		select {
		case b := <-batches:
			w.handle(&b)
		case <-tick.C:
			w.save()
		case <-idle.C:
			w.idle()
		case <-hup:
			go func() {
				if p := w.reload(); p != nil {
					reloads <- p
				}
			}()
		case p := <-reloads:
			w.mu.Lock()
			w.pipe.det.SetPolicy(p)
			w.mu.Unlock()
			log.Info("reloaded the config file", "config", o.Config)
		case <-ctx.Done():
			break loop
		}
	}
	// Shutdown: stop reading, hand over what was read, save, flush alerts.
	rcancel()
	stopped := make(chan struct{})
	go func() { followers.Wait(); close(stopped) }()
	deadline := time.NewTimer(time.Second)
	defer deadline.Stop()
drain:
	for {
		select {
		case b := <-batches:
			w.handle(&b)
		case <-stopped:
			w.handleQueued(batches)
			break drain
		case <-deadline.C:
			log.Warn("a reader did not stop within a second: it is left behind")
			break drain
		}
	}
	w.confirm.wait() // a probe in flight stops with rctx
	w.save()
	w.alerts.drain = min(w.alerts.drain, o.ShutdownGrace)
	w.alerts.stop(e)
	if srv != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		srv.Shutdown(sctx)
		scancel()
	}
	log.Info("stopped", "saves", w.saves, "save_failures", w.saveFails)
	return nil
}

// newLogger returns watch's logger on w: text or JSON lines.
func newLogger(w io.Writer, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// handle parses a batch of lines of one input and hands their events to
// detection; the input's position advances only after that.
func (w *watcher) handle(b *source.Batch) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if len(b.Lines) > 0 {
		w.lastWall = now
	}
	w.buf = w.live.Handle(b, now, w.buf[:0])
	w.pipe.handle(w.buf)
	clear(w.buf)
	w.positions.Advance(b)
}

// announceConfirmation sends a probe's verdict to every sink as an update
// of the open alert of the finding that called for the probe.
func (w *watcher) announceConfirmation(rule, key string, conf probe.Confirmation) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.alerts.manager.Open() {
		if a.Rule == rule && a.Key == key {
			a.Summary += " " + confirmationLine(conf)
			a.Evidence = append(append([]string(nil), a.Evidence...), confirmationLine(conf))
			w.alerts.emit(alert.Transition{Kind: alert.Updated, Alert: a})
			return
		}
	}
}

// handleQueued hands over the batches already queued, without waiting.
func (w *watcher) handleQueued(batches <-chan source.Batch) {
	for {
		select {
		case b := <-batches:
			w.handle(&b)
		default:
			return
		}
	}
}

// reload reads the config file again (SIGHUP) and returns the policy to
// apply: local domains, trusted networks and known clients. Other settings
// need a restart; a config with errors is reported and ignored (nil).
func (w *watcher) reload() *detect.Policy {
	if w.o.Config == "" {
		w.log.Info("SIGHUP: no --config to reload")
		return nil
	}
	o := &watchOptions{}
	fs := pflag.NewFlagSet("watch", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.AddFlags(fs)
	if err := fs.Parse(w.e.args); err != nil {
		w.log.Error("reload ignored", "err", err)
		return nil
	}
	errs, err := applyConfig(w.o.Config, fs, "watch")
	if err == nil && len(errs) > 0 {
		err = errs[0]
	}
	var p *detect.Policy
	if err == nil {
		if o.MTAConfig == "auto" {
			o.policy.localMTA(nil)
		}
		p, err = o.policy.policy(nil) // the MTA's configuration is read again too
	}
	if err == nil {
		logTrust(w.log, o.policy.trust)
	}
	if err != nil {
		w.log.Error("reload of the config file ignored", "config", w.o.Config, "err", err)
		return nil
	}
	return p
}

// idle lets alerts resolve while the logs are quiet: event time is
// extrapolated by the wall-clock time since the last line.
func (w *watcher) idle() {
	w.mu.Lock()
	defer w.mu.Unlock()
	det := w.pipe.det
	if w.lastWall.IsZero() || det.Now().IsZero() {
		return
	}
	w.alerts.advance(det.Now().Add(time.Since(w.lastWall)))
}

// save writes positions, open alerts and learned domains, each file
// atomically. A position only covers lines already handed to detection.
func (w *watcher) save() {
	w.mu.Lock()
	positions := w.positions.Clone()
	saveAlerts := w.alerts.snapshot() // open alerts and each sink's deliveries: alerts.journal
	st := &watchState{Version: 2, Saved: time.Now().UTC()}
	st.LocalDomains = w.pipe.det.Policy().LearnedLocalDomains()
	var baseline []byte
	var err error
	if w.baseline != nil {
		w.baseline.MergeLocalDomains(st.LocalDomains)
		baseline, err = marshalIndent(w.baseline)
	}
	w.mu.Unlock()
	// The alerts first: after a crash between the two, lines are read
	// again rather than their alerts forgotten.
	if err == nil {
		err = saveAlerts()
	}
	if err == nil {
		err = w.state.save(positions, st)
	}
	if err == nil && baseline != nil {
		err = detect.WriteFileAtomic(w.o.policy.Baseline, baseline)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.saveFails++
		w.log.Error("saving state", "err", err)
		return
	}
	w.saves++
}
