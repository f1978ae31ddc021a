package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"

	"github.com/relaywatch/relaywatch/alert"
	"github.com/relaywatch/relaywatch/detect"
	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/source"
	"github.com/relaywatch/relaywatch/parsers/stream"
	"github.com/relaywatch/relaywatch/parsers/syslog"
)

// DefaultListen is the sidecar's HTTP address: port 9792, away from the
// common exporters (node 9100, postfix_exporter 9154, blackbox 9115, ...).
const DefaultListen = ":9792"

// watchOptions are the flags of `relaywatch watch`.
type watchOptions struct {
	input         inputOptions
	policy        policyOptions
	alerts        alertOptions
	Listen        string
	StateDir      string
	StateInterval time.Duration
	Poll          bool
	Rescan        time.Duration
	FromStart     bool
	Journal       []string
	ShutdownGrace time.Duration
	Config        string
	Files         []string
}

// AddFlags registers watch's flags.
func (o *watchOptions) AddFlags(fs *pflag.FlagSet) {
	o.input.AddFlags(fs)
	o.policy.AddFlags(fs)
	o.alerts.AddFlags(fs)
	fs.StringVar(&o.Listen, "listen", DefaultListen, "HTTP address for /metrics, /healthz and /readyz (\"\" to disable)")
	fs.StringVar(&o.StateDir, "state-dir", "", "directory for positions and learned state (survives restarts); required")
	fs.DurationVar(&o.StateInterval, "state-interval", 5*time.Second, "how often positions and state are saved")
	fs.BoolVar(&o.Poll, "poll", false, "poll files instead of using inotify (network and overlay file systems)")
	fs.DurationVar(&o.Rescan, "rescan", 5*time.Second, "how often globs are matched again for new files")
	fs.BoolVar(&o.FromStart, "from-start", false, "read files found at the first start from their beginning (default: from their end)")
	fs.StringArrayVar(&o.Journal, "journal", nil, "follow a systemd unit's journal through journalctl (repeatable), e.g. postfix@-.service")
	fs.DurationVar(&o.ShutdownGrace, "shutdown-grace", 10*time.Second, "at SIGTERM, how long to drain before exiting")
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

// watchState is what survives a restart, saved atomically in the state dir.
type watchState struct {
	Version      int                  `json:"version"`
	Saved        time.Time            `json:"saved"`
	Positions    map[string]*position `json:"positions"`
	OpenAlerts   []alert.Alert        `json:"open_alerts"`
	LocalDomains []string             `json:"local_domains,omitempty"`
}

// position says how far a file was handed to detection.
type position struct {
	Identity source.Identity `json:"identity"`
	Offset   int64           `json:"offset"`
}

func loadState(path string) (*watchState, error) {
	st := &watchState{Version: 1, Positions: map[string]*position{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	if st.Positions == nil {
		st.Positions = map[string]*position{}
	}
	return st, nil
}

// fileState is the watcher's view of one followed input.
type fileState struct {
	parser   parsers.Parser
	format   string
	pending  []source.Line // lines waiting for the format to be sniffed
	years    *syslog.YearTracker
	offset   int64
	lastLine time.Time // wall clock
	lines    parsers.LineCounts
	kinds    [kindCount]uint64
}

// watcher is the running sidecar.
type watcher struct {
	o        *watchOptions
	e        *env
	res      *resolved
	det      *detect.Detector
	baseline *detect.Baseline // --baseline, saved with the state
	alerts   *alerting
	state    *watchState
	statePth string

	mu        sync.Mutex // guards everything below and the detector
	files     map[string]*fileState
	lastWall  time.Time // wall clock of the last line
	saves     uint64
	saveFails uint64
	ready     atomic.Bool
	buf       []parsers.Event
}

// runWatch is `relaywatch watch`.
func runWatch(ctx context.Context, e *env, o *watchOptions, args []string) error {
	args = append(append([]string(nil), o.Files...), args...)
	if len(args) == 0 && len(o.Journal) == 0 {
		return fmt.Errorf("%w: nothing to watch: give files, globs, - for stdin, or --journal UNIT", errUsage)
	}
	if o.StateDir == "" {
		return fmt.Errorf("%w: --state-dir is required (positions and learned state live there)", errUsage)
	}
	if err := os.MkdirAll(o.StateDir, 0o750); err != nil {
		return fmt.Errorf("%w: --state-dir: %w", errUsage, err)
	}
	if o.StateInterval <= 0 || o.Rescan <= 0 {
		return fmt.Errorf("%w: --state-interval and --rescan must be positive", errUsage)
	}
	res, err := o.input.resolve()
	if err != nil {
		return err
	}
	w := &watcher{o: o, e: e, res: res, files: map[string]*fileState{}, statePth: filepath.Join(o.StateDir, "state.json")}
	if w.state, err = loadState(w.statePth); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	// Alerts: the sinks get every transition; open alerts come back from
	// the state without being announced again.
	actx, acancel := context.WithCancel(context.Background())
	defer acancel()
	if w.alerts, err = o.alerts.start(actx, e, false); err != nil {
		return err
	}
	if err := w.alerts.restore(o.StateDir, w.state.OpenAlerts); err != nil {
		return err
	}
	if w.det, w.baseline, err = o.policy.detector(w.alerts); err != nil {
		return err
	}
	for _, d := range w.state.LocalDomains {
		w.det.Policy().LearnLocalDomain(d) // learned before the restart
	}

	// HTTP: /metrics, /healthz, /readyz.
	var srv *http.Server
	if o.Listen != "" {
		ln, err := net.Listen("tcp", o.Listen)
		if err != nil {
			return fmt.Errorf("%w: --listen: %w", errUsage, err)
		}
		var limited net.Listener
		srv, limited = newHTTPServer(ln, w.handler()) // timeouts and a connection limit: httpserver.go
		go srv.Serve(limited)
		fmt.Fprintf(e.stderr, "relaywatch watch: serving /metrics on %s\n", ln.Addr())
	}

	lines := make(chan source.Line, 4096)
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	var readers sync.WaitGroup

	var files []string
	for _, a := range args {
		if a == source.Stdin {
			readers.Add(1)
			go func() { defer readers.Done(); readStdin(rctx, e.stdin, lines) }()
			continue
		}
		files = append(files, a)
	}
	var follower *source.Follower
	if len(files) > 0 {
		follower = source.NewFollower(source.FollowConfig{
			Patterns: files, Poll: o.Poll, Rescan: o.Rescan,
			Start:   w.startOffset(rctx, lines),
			OnError: func(p string, err error) { fmt.Fprintf(e.stderr, "relaywatch watch: %s: %v\n", p, err) },
		})
		readers.Add(1)
		go func() { defer readers.Done(); follower.Run(rctx, lines) }()
	}
	for _, unit := range o.Journal {
		readers.Add(1)
		go func() { defer readers.Done(); w.readJournal(rctx, unit, lines) }()
	}
	if follower != nil {
		go func() {
			select {
			case <-follower.Ready():
				w.ready.Store(true)
			case <-rctx.Done():
			}
		}()
	} else {
		w.ready.Store(true)
	}

	// SIGHUP reopens the files.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	tick := time.NewTicker(o.StateInterval)
	defer tick.Stop()
	idle := time.NewTicker(time.Second)
	defer idle.Stop()
loop:
	for {
		select {
		case l := <-lines:
			w.handle(l)
		case <-tick.C:
			w.save()
		case <-idle.C:
			w.idle()
		case <-hup:
			w.reload()
			if follower != nil {
				// Stop the tailers, hand over what they had read, and save,
				// so that the next scan reopens every file at its position.
				follower.Reopen()
				w.handleQueued(lines)
				w.save()
			}
		case <-ctx.Done():
			break loop
		}
	}
	// Shutdown: stop reading, hand over what was read, save, flush alerts.
	rcancel()
	drained := make(chan struct{})
	go func() { readers.Wait(); close(drained) }()
	deadline := time.NewTimer(o.ShutdownGrace)
	defer deadline.Stop()
drain:
	for {
		select {
		case l := <-lines:
			w.handle(l)
		case <-drained:
			w.handleQueued(lines)
			break drain
		case <-deadline.C:
			break drain
		}
	}
	w.save()
	w.alerts.drain = min(w.alerts.drain, o.ShutdownGrace)
	w.alerts.stop(e)
	if srv != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		srv.Shutdown(sctx)
		scancel()
	}
	return nil
}

// startOffset decides where a newly followed file starts: at its saved
// position when it is the same file; after a rotation during downtime, the
// rest of the old file is read first (if it can be found), then the new one
// from its start; a file without a position starts at its end on the first
// start (unless --from-start) and at its beginning when it appears later.
func (w *watcher) startOffset(ctx context.Context, lines chan<- source.Line) func(string) (int64, bool) {
	firstScan := true
	var once sync.Once
	return func(path string) (int64, bool) {
		defer once.Do(func() { firstScan = false })
		w.mu.Lock()
		pos := w.state.Positions[path]
		w.mu.Unlock()
		if pos == nil {
			if firstScan && !w.o.FromStart {
				if _, err := os.Stat(path); err == nil {
					return 0, false // its end
				}
			}
			return 0, true
		}
		if pos.Identity.Same(path) {
			if _, size, err := source.IdentityOf(path); err == nil && size >= pos.Offset {
				return pos.Offset, true
			}
			return 0, true // truncated meanwhile
		}
		if old, ok := source.FindRotated(path, pos.Identity); ok {
			w.catchUp(ctx, path, old, pos.Offset, lines)
		}
		return 0, true
	}
}

// catchUp reads what was added to a rotated file after its saved position.
func (w *watcher) catchUp(ctx context.Context, path, old string, offset int64, lines chan<- source.Line) {
	f, err := os.Open(old)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return
	}
	readLines(ctx, f, path, lines)
}

// handleQueued hands over the lines already queued, without waiting for more.
func (w *watcher) handleQueued(lines <-chan source.Line) {
	for {
		select {
		case l := <-lines:
			w.handle(l)
		default:
			return
		}
	}
}

// reload reads the config file again (SIGHUP) and applies what can change
// while running: local domains, trusted networks and known clients. Other
// settings need a restart; a config with errors is reported and ignored.
func (w *watcher) reload() {
	if w.o.Config == "" {
		return
	}
	o := &watchOptions{}
	fs := pflag.NewFlagSet("watch", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.AddFlags(fs)
	if err := fs.Parse(w.e.args); err != nil {
		fmt.Fprintf(w.e.stderr, "relaywatch watch: reload: %v\n", err)
		return
	}
	errs, err := applyConfig(w.o.Config, fs)
	if err == nil && len(errs) > 0 {
		err = errs[0]
	}
	var p *detect.Policy
	if err == nil {
		p, err = detect.NewPolicy(o.policy.LocalDomains, o.policy.TrustedNetworks, o.policy.KnownClients)
	}
	if err != nil {
		fmt.Fprintf(w.e.stderr, "relaywatch watch: reload of %s ignored: %v\n", w.o.Config, err)
		return
	}
	w.mu.Lock()
	w.det.SetPolicy(p)
	w.mu.Unlock()
	fmt.Fprintf(w.e.stderr, "relaywatch watch: reloaded %s\n", w.o.Config)
}

// handle parses one line and hands its events to detection.
func (w *watcher) handle(l source.Line) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fsx := w.files[l.File]
	if fsx == nil {
		fsx = &fileState{years: syslog.NewYearTracker(w.o.input.Year != 0, time.Now())}
		if w.res.format != nil {
			fsx.parser, fsx.format = w.res.format.New(w.options()), w.res.format.Name
		}
		w.files[l.File] = fsx
	}
	now := time.Now()
	fsx.lastLine, w.lastWall = now, now
	if l.Offset >= 0 {
		fsx.offset = l.Offset
	}
	if fsx.parser == nil {
		// Sniff the format from the first lines of the input.
		fsx.pending = append(fsx.pending, l)
		texts := make([]string, len(fsx.pending))
		for i, p := range fsx.pending {
			texts[i] = p.Text
		}
		f, err := w.res.registry.Sniff(texts)
		if err != nil {
			if len(fsx.pending) >= stream.SniffLines {
				fsx.lines[parsers.Unrecognized] += uint64(len(fsx.pending))
				fsx.pending = fsx.pending[:0]
			}
			return
		}
		fsx.parser, fsx.format = f.New(w.options()), f.Name
		pending := fsx.pending
		fsx.pending = nil
		for _, p := range pending {
			w.parse(fsx, p.Text)
		}
		return
	}
	w.parse(fsx, l.Text)
}

func (w *watcher) options() parsers.Options {
	return parsers.Options{Year: w.o.input.Year, ModTime: time.Now(), Location: w.res.location}
}

// parse runs one line through the file's parser and detection; w.mu is held.
func (w *watcher) parse(fsx *fileState, text string) {
	var r parsers.Result
	w.buf, r = fsx.parser.Parse(text, w.buf[:0])
	fsx.lines.Add(r)
	for i := range w.buf {
		ev := &w.buf[i]
		if ev.YearGuessed {
			ev.Time = fsx.years.Fix(ev.Time)
		}
		if int(ev.Kind) < kindCount {
			fsx.kinds[ev.Kind]++
		}
		w.det.Handle(ev)
	}
	clear(w.buf)
}

// idle lets alerts resolve while the logs are quiet: event time is
// extrapolated by the wall-clock time since the last line.
func (w *watcher) idle() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lastWall.IsZero() || w.det.Now().IsZero() {
		return
	}
	w.alerts.advance(w.det.Now().Add(time.Since(w.lastWall)))
}

// save writes positions, open alerts and learned domains atomically. A
// position only covers lines already handed to detection.
func (w *watcher) save() {
	w.mu.Lock()
	st := &watchState{Version: 1, Saved: time.Now().UTC(), Positions: map[string]*position{}}
	for path, fsx := range w.files {
		if path == source.Stdin || strings.HasPrefix(path, "journal:") {
			continue
		}
		st.Positions[path] = &position{Offset: fsx.offset}
	}
	saveAlerts := w.alerts.snapshot() // open alerts and deliveries: alerts.journal
	st.LocalDomains = w.det.Policy().LearnedLocalDomains()
	w.mu.Unlock()
	for path, p := range st.Positions {
		id, size, err := source.IdentityOf(path)
		if err != nil || size < p.Offset {
			delete(st.Positions, path)
			continue
		}
		p.Identity = id
	}
	// The alerts first: after a crash between the two, lines are read
	// again rather than their alerts forgotten.
	err := saveAlerts()
	data, merr := json.MarshalIndent(st, "", " ")
	if err == nil {
		err = merr
	}
	if err == nil {
		err = detect.WriteFileAtomic(w.statePth, append(data, '\n'))
	}
	if err == nil && w.baseline != nil {
		w.mu.Lock()
		w.baseline.MergeLocalDomains(st.LocalDomains)
		data, err = json.MarshalIndent(w.baseline, "", "  ")
		w.mu.Unlock()
		if err == nil {
			err = detect.WriteFileAtomic(w.o.policy.Baseline, append(data, '\n'))
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.saveFails++
		fmt.Fprintf(w.e.stderr, "relaywatch watch: saving state: %v\n", err)
		return
	}
	w.saves++
	w.state = st
}

// readStdin reads lines from stdin until it ends or ctx is done.
func readStdin(ctx context.Context, r io.Reader, out chan<- source.Line) {
	readLines(ctx, r, source.Stdin, out)
}

// readJournal follows a unit's journal through journalctl, resuming with
// journalctl's own cursor file in the state directory.
func (w *watcher) readJournal(ctx context.Context, unit string, out chan<- source.Line) {
	name := strings.NewReplacer("/", "_", "@", "_").Replace(unit)
	cursor := filepath.Join(w.o.StateDir, "journal-"+name+".cursor")
	cmd := exec.CommandContext(ctx, "journalctl", "--follow", "--output=short-iso-precise", "--no-pager", "--quiet", "--unit="+unit, "--cursor-file="+cursor)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintf(w.e.stderr, "relaywatch watch: journal %s: %v\n", unit, err)
		return
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(w.e.stderr, "relaywatch watch: journal %s: %v\n", unit, err)
		return
	}
	readLines(ctx, stdout, "journal:"+unit, out)
	cmd.Wait()
}

// readLines sends the lines of a stream without positions (stdin, a
// journalctl pipe) until it ends or ctx is done.
func readLines(ctx context.Context, r io.Reader, name string, out chan<- source.Line) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), source.DefaultBlockSize)
	for sc.Scan() {
		select {
		case out <- source.Line{File: name, Text: strings.TrimSuffix(sc.Text(), "\r"), Offset: -1}:
		case <-ctx.Done():
			return
		}
	}
}

// handler serves /metrics, /healthz and /readyz.
func (w *watcher) handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(w.collector())
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
	descFileOffset = prometheus.NewDesc("relaywatch_file_offset_bytes", "Read offset of a followed file.", []string{"file"}, nil)
	descFileBehind = prometheus.NewDesc("relaywatch_file_behind_bytes", "Bytes of a followed file not read yet.", []string{"file"}, nil)
	descFileIdle   = prometheus.NewDesc("relaywatch_file_last_line_age_seconds", "Seconds since the last line of a followed file.", []string{"file"}, nil)
	descSaves      = prometheus.NewDesc("relaywatch_state_saves_total", "State saves, by result (ok, failed).", []string{"result"}, nil)
)

// watchCollector snapshots the watcher under its lock at scrape time.
type watchCollector struct{ w *watcher }

func (w *watcher) collector() prometheus.Collector {
	return watchCollector{w}
}

// Describe implements prometheus.Collector.
func (c watchCollector) Describe(ch chan<- *prometheus.Desc) {
	(&runMetrics{}).Describe(ch)
	for _, d := range []*prometheus.Desc{descFileOffset, descFileBehind, descFileIdle, descSaves} {
		ch <- d
	}
	for _, coll := range []prometheus.Collector{prometheusGo, prometheusProcess} {
		coll.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (c watchCollector) Collect(ch chan<- prometheus.Metric) {
	w := c.w
	w.mu.Lock()
	m := &runMetrics{
		lines: map[string]*parsers.LineCounts{}, kinds: map[string]*[kindCount]uint64{},
		stats: w.det.Stats(), inFlight: w.det.MessagesInFlight(), findings: w.det.Findings(),
		fired: map[[2]string]uint64{}, active: w.alerts.manager.Open(), sinks: []alert.Fanout{w.alerts.dispatchers},
	}
	for k, v := range w.alerts.fired {
		m.fired[k] = v
	}
	if !w.det.Now().IsZero() {
		m.lastEvent = float64(w.det.Now().UnixNano()) / 1e9
	}
	type fileMetric struct {
		path   string
		offset int64
		age    float64
	}
	var fm []fileMetric
	for path, fsx := range w.files {
		m.addInput(fsx.format, &fsx.lines, &fsx.kinds)
		fm = append(fm, fileMetric{path, fsx.offset, time.Since(fsx.lastLine).Seconds()})
	}
	saves, fails := w.saves, w.saveFails
	w.mu.Unlock()
	m.Collect(ch)
	sort.Slice(fm, func(i, j int) bool { return fm[i].path < fm[j].path })
	for _, f := range fm {
		if f.path == source.Stdin || strings.HasPrefix(f.path, "journal:") {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descFileOffset, prometheus.GaugeValue, float64(f.offset), f.path)
		if fi, err := os.Stat(f.path); err == nil {
			ch <- prometheus.MustNewConstMetric(descFileBehind, prometheus.GaugeValue, float64(max(fi.Size()-f.offset, 0)), f.path)
		}
		ch <- prometheus.MustNewConstMetric(descFileIdle, prometheus.GaugeValue, f.age, f.path)
	}
	ch <- prometheus.MustNewConstMetric(descSaves, prometheus.CounterValue, float64(saves), "ok")
	ch <- prometheus.MustNewConstMetric(descSaves, prometheus.CounterValue, float64(fails), "failed")
	prometheusGo.Collect(ch)
	prometheusProcess.Collect(ch)
}
