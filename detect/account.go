package detect

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
)

// RuleCompromisedAccount is raised when an authenticated user's mail or
// logins jump far above that user's own baseline.
const RuleCompromisedAccount = "compromised-account"

// AccountConfig configures the compromised-account rule. Zero values take
// the defaults.
type AccountConfig struct {
	// Window is the counting window, aligned to the epoch. Default 1h.
	Window time.Duration
	// Factor: a window must reach Factor times the user's baseline (an
	// EWMA of its windows) in one of the measures. Default 10.
	Factor float64
	// MinOutbound, MinDomains and MinNetworks are floors: fewer outbound
	// deliveries, distinct recipient domains or distinct login networks
	// (/24, /48) in a window never raise a finding. Defaults 100, 30, 4.
	// Networks are judged against the floor or twice the baseline, not
	// Factor times it: logins from many networks are suspect in themselves.
	MinOutbound, MinDomains, MinNetworks int
	// AuthFailures failed logins for the user within Window (a burst), in
	// the day before the jump, make it critical. Default 5.
	AuthFailures int
	// MaxUsers caps the users followed (names are chosen by whoever tries
	// to log in). Default 10,000.
	MaxUsers int
}

// Defaults of AccountConfig.
const (
	DefaultAccountWindow       = time.Hour
	DefaultAccountFactor       = 10.0
	DefaultAccountMinOutbound  = 100
	DefaultAccountMinDomains   = 30
	DefaultAccountMinNetworks  = 4
	DefaultAccountAuthFailures = 5
	DefaultAccountMaxUsers     = 10000
)

// failureMemory is how long a burst of failed logins is remembered.
const failureMemory = 24 * time.Hour

// maxAccountSet bounds the distinct domains and networks counted per user
// and window: past it the count saturates (far above any threshold).
const maxAccountSet = 256

// AccountMeasures are what compromised-account counts per user and window
// (outbound deliveries, distinct recipient domains, distinct login
// networks), or their moving averages.
type AccountMeasures struct {
	Outbound float64 `json:"outbound"`
	Domains  float64 `json:"domains"`
	Networks float64 `json:"networks"`
}

type account struct {
	windowStart time.Time
	outbound    int
	domains     map[string]struct{}
	networks    map[netip.Prefix]struct{}
	ewma        AccountMeasures
	windows     int
	// fromStart: first seen in the stream's first window, so judged only
	// once a full window of history exists (a busy sender at the start
	// of a batch is not a jump).
	fromStart bool
	// failTimes are the latest failed logins (at most AuthFailures, a
	// ring); a burst is AuthFailures of them within Window. burstAt is
	// the last burst, burstLine its last failure, burstCount its size.
	failTimes  []time.Time
	failNext   int
	burstAt    time.Time
	burstLine  string
	burstCount int
}

type accountRule struct {
	cfg   AccountConfig
	users *lru[string, *account]
}

func newAccountRule(cfg AccountConfig) (*accountRule, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if cfg.Window == 0 {
		cfg.Window = DefaultAccountWindow
	}
	if cfg.Factor == 0 {
		cfg.Factor = DefaultAccountFactor
	}
	def(&cfg.MinOutbound, DefaultAccountMinOutbound)
	def(&cfg.MinDomains, DefaultAccountMinDomains)
	def(&cfg.MinNetworks, DefaultAccountMinNetworks)
	def(&cfg.AuthFailures, DefaultAccountAuthFailures)
	def(&cfg.MaxUsers, DefaultAccountMaxUsers)
	switch {
	case cfg.Window < time.Minute:
		return nil, fmt.Errorf("account window %v: must be at least 1m", cfg.Window)
	case cfg.Factor < 1:
		return nil, fmt.Errorf("account factor %v: must be at least 1", cfg.Factor)
	case cfg.MinOutbound < 1 || cfg.MinDomains < 1 || cfg.MinNetworks < 1 || cfg.AuthFailures < 1 || cfg.MaxUsers < 1:
		return nil, fmt.Errorf("account floors, failures and users must be at least 1")
	}
	return &accountRule{cfg: cfg, users: newLRU[string, *account](cfg.MaxUsers)}, nil
}

// user returns the state of name, creating it (seeded from the baseline
// file) when needed.
func (r *accountRule) user(d *Detector, name string, t time.Time) *account {
	a, ok := r.users.get(name)
	if !ok {
		a = &account{windowStart: t.Truncate(r.cfg.Window), fromStart: t.Before(d.start.Add(r.cfg.Window))}
		if b := d.cfg.Baseline; b != nil {
			if rec, ok := b.Accounts[name]; ok {
				a.ewma, a.windows = rec.Mean, rec.Windows
			}
		}
		r.users.put(strings.Clone(name), a)
	}
	r.roll(d, name, a, t.Truncate(r.cfg.Window))
	return a
}

// roll closes the user's window when t's window is later, folding it into
// the baseline (and into the baseline file).
func (r *accountRule) roll(d *Detector, name string, a *account, ws time.Time) {
	if !ws.After(a.windowStart) {
		return
	}
	alpha := 0.1
	cur := AccountMeasures{float64(a.outbound), float64(len(a.domains)), float64(len(a.networks))}
	if a.windows == 0 {
		a.ewma = cur
	} else {
		a.ewma.Outbound = alpha*cur.Outbound + (1-alpha)*a.ewma.Outbound
		a.ewma.Domains = alpha*cur.Domains + (1-alpha)*a.ewma.Domains
		a.ewma.Networks = alpha*cur.Networks + (1-alpha)*a.ewma.Networks
	}
	a.windows++
	if gap := int(ws.Sub(a.windowStart)/r.cfg.Window) - 1; gap > 0 {
		decay := math.Pow(1-alpha, float64(min(gap, 10000)))
		a.ewma.Outbound *= decay
		a.ewma.Domains *= decay
		a.ewma.Networks *= decay
		a.windows += min(gap, 10000)
	}
	a.windowStart, a.outbound, a.domains, a.networks = ws, 0, nil, nil
	if b := d.cfg.Baseline; b != nil {
		b.noteAccount(name, a.ewma, a.windows, ws)
	}
}

// authFailed counts a failed login for a named user. Guessing against
// real accounts goes on all day on any server on the Internet: only a
// burst (AuthFailures failures within Window) counts.
func (r *accountRule) authFailed(d *Detector, e *parsers.Event) {
	if !namedUser(e.AuthUser) {
		return
	}
	a := r.user(d, e.AuthUser, e.Time)
	if len(a.failTimes) < r.cfg.AuthFailures {
		a.failTimes = append(a.failTimes, e.Time)
	} else {
		a.failTimes[a.failNext] = e.Time
		a.failNext = (a.failNext + 1) % len(a.failTimes)
	}
	if len(a.failTimes) < r.cfg.AuthFailures {
		return
	}
	oldest := a.failTimes[a.failNext%len(a.failTimes)]
	if e.Time.Sub(oldest) > r.cfg.Window {
		return
	}
	if e.Time.Sub(a.burstAt) > r.cfg.Window {
		a.burstCount = 0 // a new burst
	}
	if a.burstCount == 0 {
		a.burstCount = r.cfg.AuthFailures
	} else {
		a.burstCount++
	}
	a.burstAt, a.burstLine = e.Time, strings.Clone(e.Line)
}

// login counts the network an authenticated session came from.
func (r *accountRule) login(d *Detector, e *parsers.Event, m *message) {
	if !namedUser(m.authUser) || !m.client.IsValid() || m.client.IsLoopback() {
		return
	}
	a := r.user(d, m.authUser, e.Time)
	bits := 24
	if m.client.Is6() && !m.client.Is4In6() {
		bits = 48
	}
	p, err := m.client.Unmap().Prefix(bits)
	if err != nil {
		return
	}
	if a.networks == nil {
		a.networks = map[netip.Prefix]struct{}{}
	}
	if len(a.networks) < maxAccountSet {
		a.networks[p] = struct{}{}
	}
	r.judge(d, e, m, a)
}

// delivered counts an outbound delivery of an authenticated user's message.
func (r *accountRule) delivered(d *Detector, e *parsers.Event, m *message) {
	if m.submission != SubmissionAuthenticated || !namedUser(m.authUser) {
		return
	}
	a := r.user(d, m.authUser, e.Time)
	a.outbound++
	if dom := Domain(e.To); dom != "" {
		if a.domains == nil {
			a.domains = map[string]struct{}{}
		}
		if _, ok := a.domains[dom]; !ok && len(a.domains) < maxAccountSet {
			a.domains[strings.Clone(dom)] = struct{}{}
		}
	}
	r.judge(d, e, m, a)
}

// judge raises the finding when a measure of the current window is far
// above the user's baseline.
func (r *accountRule) judge(d *Detector, e *parsers.Event, m *message, a *account) {
	over := func(v int, floor int, base float64) bool {
		return float64(v) >= math.Max(float64(floor), r.cfg.Factor*base)
	}
	if a.fromStart && a.windows == 0 {
		return
	}
	var why []string
	if over(a.outbound, r.cfg.MinOutbound, a.ewma.Outbound) {
		why = append(why, fmt.Sprintf("%d outbound deliveries (baseline %.1f)", a.outbound, a.ewma.Outbound))
	}
	if over(len(a.domains), r.cfg.MinDomains, a.ewma.Domains) {
		why = append(why, fmt.Sprintf("%d recipient domains (baseline %.1f)", len(a.domains), a.ewma.Domains))
	}
	// Logins from many networks are suspicious in themselves: the floor
	// rules, raised only for a user who roams (twice its baseline).
	if float64(len(a.networks)) >= math.Max(float64(r.cfg.MinNetworks), 2*a.ewma.Networks) {
		why = append(why, fmt.Sprintf("logins from %d networks (baseline %.1f)", len(a.networks), a.ewma.Networks))
	}
	if len(why) == 0 {
		return
	}
	sev := SeverityWarning
	failed := a.burstCount > 0 && e.Time.Sub(a.burstAt) <= failureMemory
	if failed {
		sev = SeverityCritical
	}
	f := d.finding(RuleCompromisedAccount, "user:"+m.authUser, e, sev)
	if a.outbound > f.Count || f.Count == 0 {
		f.Count = a.outbound
	}
	f.Recipients++
	f.WindowStart, f.WindowEnd = a.windowStart, a.windowStart.Add(r.cfg.Window)
	f.Baseline = math.Round(a.ewma.Outbound*10) / 10
	f.detail = strings.Join(why, ", ")
	f.distinct = 0
	if failed {
		f.distinct = a.burstCount
		f.addEvidence(a.burstLine)
	}
	if f.program == "" {
		f.program = strings.Clone(e.Program)
	}
	if f.subject == "" && m.from != "" {
		f.subject = strings.Clone(m.from) // the sender, for the next step
	}
	f.addMessageEvidence(m)
	f.addEvidence(e.Line)
	d.notify(f)
}

// describeAccount writes a compromised-account finding's summary and next step.
func (d *Detector) describeAccount(f *Finding) {
	user := strings.TrimPrefix(f.Key, "user:")
	f.Summary = fmt.Sprintf("the account %s may be stolen: in %v it shows %s, far above its own baseline", user, f.WindowEnd.Sub(f.WindowStart), f.detail)
	if f.distinct > 0 {
		f.Summary += fmt.Sprintf(", after a burst of %d failed logins for it", f.distinct)
	}
	f.NextStep = "Lock the account " + user + " (change its password, end its sessions), hold or purge its queued mail, and look for where it logged in from."
	if a := d.advice(f.program); a != nil && a.Compromised != "" {
		f.NextStep = a.ForUser(a.Compromised, user, f.subject)
	}
}

// namedUser tells a user name from none: empty, or a placeholder in
// parentheses for a login whose name the log did not give (Exchange's
// "(authenticated)"), which would lump many users together.
func namedUser(name string) bool { return name != "" && name[0] != '(' }
