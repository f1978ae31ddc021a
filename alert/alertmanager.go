package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Alertmanager posts alerts to Alertmanager's v2 API (/api/v2/alerts).
//
// Labels never carry values from the logs (an attacker could mint a new
// alert per sender): one Alertmanager alert stands for a rule on an
// instance, labelled alertname, rule, severity and instance, and fires
// while any key of the rule is open; the keys and the evidence go into the
// annotations. While firing it is re-sent every refresh interval with
// endsAt ahead, as Alertmanager expects from its clients; when its last key
// resolves it is sent once more with endsAt now.
//
// Annotations are read by people through other tools: Alertmanager's own
// Slack template puts them into mrkdwn. So every value from the logs in
// them has its control characters escaped, '&', '<' and '>' as entities
// ("<!channel>" arrives as "&lt;!channel&gt;", shown as text by Slack) and
// backticks replaced by U+02CB, so that it can neither mention, link nor
// close a template's code block.
type Alertmanager struct {
	// Log, if set, hears when refreshing starts failing (once, with the
	// reason) and when it works again.
	Log func(msg string)

	url      string
	instance string
	refresh  time.Duration
	client   *http.Client
	clock    Clock

	mu    sync.Mutex
	rules map[string]*amRule
	kick  chan struct{} // a refresh now (after Restore)
}

type amRule struct {
	open     map[string]Alert // key -> alert
	startsAt time.Time
	severity string
}

// maxKeysPerRule bounds the keys an Alertmanager alert remembers.
const maxKeysPerRule = 1000

// NewAlertmanager returns a sink for the Alertmanager at baseURL
// (http://host:9093). instance names this relaywatch (the mail host).
func NewAlertmanager(baseURL, instance string, refresh time.Duration, client *http.Client, clock Clock) *Alertmanager {
	if refresh <= 0 {
		refresh = time.Minute
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	if clock == nil {
		clock = RealClock
	}
	return &Alertmanager{url: strings.TrimRight(baseURL, "/") + "/api/v2/alerts", instance: instance, refresh: refresh, client: client, clock: clock, rules: map[string]*amRule{}, kick: make(chan struct{}, 1)}
}

// Name implements Sink.
func (a *Alertmanager) Name() string { return "alertmanager" }

// amAlert is Alertmanager's postable alert.
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Send implements Sink.
func (a *Alertmanager) Send(ctx context.Context, batch []Transition) error {
	now := a.clock.Now()
	a.mu.Lock()
	rules := map[string]bool{}
	for _, t := range batch {
		r := a.rules[t.Alert.Rule]
		if r == nil {
			if t.Kind == Resolved {
				continue
			}
			r = &amRule{open: map[string]Alert{}, startsAt: now}
			a.rules[t.Alert.Rule] = r
		}
		if t.Kind == Resolved {
			delete(r.open, t.Alert.Key)
		} else if _, ok := r.open[t.Alert.Key]; ok || len(r.open) < maxKeysPerRule {
			r.open[t.Alert.Key] = t.Alert
		}
		rules[t.Alert.Rule] = true
	}
	var out []amAlert
	for rule := range rules {
		out = append(out, a.render(rule, now))
		if len(a.rules[rule].open) == 0 {
			delete(a.rules, rule)
		}
	}
	a.mu.Unlock()
	return a.post(ctx, out)
}

// render builds the Alertmanager alert of a rule; the caller holds mu.
func (a *Alertmanager) render(rule string, now time.Time) amAlert {
	r := a.rules[rule]
	keys := make([]string, 0, len(r.open))
	var worst Alert
	for k, al := range r.open {
		keys = append(keys, k)
		if worst.Rule == "" || al.Severity > worst.Severity || al.Severity == worst.Severity && al.Count > worst.Count {
			worst = al
		}
	}
	sort.Strings(keys)
	endsAt := now.Add(4 * a.refresh)
	sev := worst.Severity.String()
	if len(keys) == 0 {
		// Resolved: keep the labels it fired with, so it is the same alert.
		endsAt = now
		sev = r.severity
	}
	r.severity = sev
	listed := keys
	if len(listed) > MaxListed {
		listed = append(append([]string(nil), keys[:MaxListed]...), "and "+strconv.Itoa(len(keys)-MaxListed)+" more")
	}
	for i, k := range listed {
		listed[i] = forSlackTemplate(k, false)
	}
	desc := fmt.Sprintf("%d open: %s", len(keys), strings.Join(listed, ", "))
	if len(keys) == 0 {
		desc = "resolved: no new evidence"
	}
	ann := map[string]string{"summary": forSlackTemplate(worst.Summary, false), "description": desc, "next_step": forSlackTemplate(worst.NextStep, false)}
	if len(worst.Evidence) > 0 {
		lines := make([]string, len(worst.Evidence))
		for i, l := range worst.Evidence {
			lines[i] = forSlackTemplate(l, false)
		}
		ann["evidence"] = strings.Join(lines, "\n")
	}
	if worst.Summary == "" {
		ann["summary"] = rule + " resolved on " + forSlackTemplate(a.instance, false)
	}
	return amAlert{
		Labels:      map[string]string{"alertname": "RelaywatchFinding", "rule": rule, "severity": sev, "instance": a.instance},
		Annotations: ann,
		StartsAt:    r.startsAt,
		EndsAt:      endsAt,
	}
}

func (a *Alertmanager) post(ctx context.Context, alerts []amAlert) error {
	if len(alerts) == 0 {
		return nil
	}
	body, err := json.Marshal(alerts)
	if err != nil {
		return &PermanentError{Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, bytes.NewReader(body))
	if err != nil {
		return &PermanentError{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("alertmanager: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	serr := &StatusError{Code: resp.StatusCode, Err: fmt.Errorf("alertmanager: %s: %q", resp.Status, bytes.TrimSpace(msg))}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		if after, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && after > 0 {
			return &RetryAfterError{After: time.Duration(after) * time.Second, Err: serr}
		}
		return serr
	case resp.StatusCode >= 500:
		return serr
	default:
		return &PermanentError{Err: serr}
	}
}

// Restore takes the alerts that were open when an earlier process
// stopped (Alertmanager may have them firing) and sends them at once, then
// with every refresh, so that Alertmanager keeps them firing across the
// restart instead of resolving them at their endsAt.
func (a *Alertmanager) Restore(alerts []Alert) {
	now := a.clock.Now()
	a.mu.Lock()
	for _, al := range alerts {
		r := a.rules[al.Rule]
		if r == nil {
			r = &amRule{open: map[string]Alert{}, startsAt: al.FirstSeen}
			if r.startsAt.IsZero() || r.startsAt.After(now) {
				r.startsAt = now
			}
			a.rules[al.Rule] = r
		}
		if len(r.open) < maxKeysPerRule {
			r.open[al.Key] = al
		}
	}
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Refresh re-sends every firing alert every refresh interval (and at once
// after Restore) until ctx is done, so that Alertmanager keeps them active.
func (a *Alertmanager) Refresh(ctx context.Context) {
	failing := false
	for {
		// Sleep until the next refresh, or until Restore kicks.
		sctx, cancel := context.WithCancel(ctx)
		stop := make(chan struct{})
		go func() {
			select {
			case <-a.kick:
				cancel()
			case <-stop:
			}
		}()
		a.clock.Sleep(sctx, a.refresh)
		close(stop)
		cancel()
		if ctx.Err() != nil {
			return
		}
		now := a.clock.Now()
		a.mu.Lock()
		var out []amAlert
		for rule := range a.rules {
			out = append(out, a.render(rule, now))
		}
		a.mu.Unlock()
		// A failure is retried at the next refresh; it is logged once.
		err := a.post(ctx, out)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			a.logf("alertmanager: refresh failing: %s: %v", Reason(err), err)
			failing = true
		case err == nil && failing:
			a.logf("alertmanager: refreshing again")
			failing = false
		}
	}
}

func (a *Alertmanager) logf(format string, args ...any) {
	if a.Log != nil {
		a.Log(fmt.Sprintf(format, args...))
	}
}
