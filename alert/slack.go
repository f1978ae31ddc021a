package alert

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/slack-go/slack"

	"github.com/relaywatch/relaywatch/detect"
)

// MaxListed is the number of alerts a grouped message lists by name; the
// rest are counted ("and 37 more").
const MaxListed = 10

// maxEvidenceLines is the evidence shown per alert in Slack.
const maxEvidenceLines = 5

// ruleWords says what a rule means, in plain words.
func ruleWords(a *Alert) string {
	host := noBackticks(Escape(EscapeControl(a.Host, ""))) // it may stand next to code spans (groupList)
	if host == "" {
		host = "this mail server"
	}
	switch a.Rule {
	case detect.RuleForeignToForeign:
		return host + " is relaying mail for strangers"
	case detect.RuleUnknownRelayingClient:
		if a.Severity == detect.SeverityCritical {
			return "a client that may not relay is relaying through " + host
		}
		return "a client relays through " + host + " for the first time"
	case detect.RuleOutboundSpike:
		return "outbound mail from " + host + " jumped"
	case detect.RuleQueueStorm:
		return "failed deliveries or backscatter fill the queue of " + host
	case detect.RuleCompromisedAccount:
		return "an account on " + host + " may be stolen"
	case detect.RuleBlocklisted:
		return "receivers refuse mail from " + host + " citing a blocklist"
	case detect.RuleRelayTrick:
		return host + " accepted a relay trick (percent hack, bang path, source route)"
	case detect.RuleRelayProbing:
		if a.Severity == detect.SeverityCritical {
			return "a client refused relaying before is now relaying through " + host
		}
		return "someone is testing whether " + host + " is an open relay"
	}
	return a.Rule + " on " + host
}

func severityIcon(s detect.Severity) string {
	switch s {
	case detect.SeverityCritical:
		return ":rotating_light:"
	case detect.SeverityWarning:
		return ":warning:"
	}
	return ":information_source:"
}

// evidenceBlock shows log lines in Slack as a rich_text preformatted
// block: its text is literal (no mrkdwn, no mentions, no links, nothing
// that a backtick could close), with control characters escaped.
func evidenceBlock(title string, lines []string) slack.Block {
	if len(lines) > maxEvidenceLines {
		lines = lines[:maxEvidenceLines]
	}
	var b strings.Builder
	for i, l := range lines {
		if len(l) > 400 {
			l = l[:400] + "…"
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(EscapeControl(l, ""))
	}
	return slack.NewRichTextBlock("",
		slack.NewRichTextSection(slack.NewRichTextSectionTextElement(title+"\n", &slack.RichTextSectionTextStyle{Bold: true})),
		&slack.RichTextPreformatted{Type: slack.RTEPreformatted, Elements: []slack.RichTextSectionElement{slack.NewRichTextSectionTextElement(b.String(), nil)}},
	)
}

// mrkdwn is a Slack mrkdwn text object taken literally: verbatim, so that
// Slack links no URL, channel or mention in it on its own.
func mrkdwn(text string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, text, false, true)
}

// safe makes a value from a log safe in mrkdwn outside code: control
// characters escaped, '&', '<' and '>' as entities, no backtick to open a
// code span or block.
func safe(s string) string { return forSlackTemplate(s, false) }

// blocks renders a batch as Block Kit blocks and a plain-text fallback.
func blocks(batch []Transition) ([]slack.Block, string) {
	if batch[0].Kind == Summary {
		return summaryBlocks(batch)
	}
	first := &batch[0].Alert
	kind := batch[0].Kind
	title := fmt.Sprintf("%s %s: %s", severityIcon(first.Severity), strings.ToUpper(first.Severity.String()), ruleWords(first))
	switch kind {
	case Resolved:
		title = ":white_check_mark: RESOLVED: " + ruleWords(first)
	case Updated:
		title += " (updated)"
	}
	var out []slack.Block
	out = append(out, slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, truncate(title, 150), true, false)))
	if len(batch) > 1 {
		out = append(out, slack.NewSectionBlock(mrkdwn(truncate(groupList(batch), 2900)), nil, nil))
	}
	a := first
	fields := []*slack.TextBlockObject{
		mrkdwn("*Rule*\n" + codeSpan(a.Rule)),
		mrkdwn("*Severity*\n" + a.Severity.String()),
		mrkdwn("*Host*\n" + safe(orDash(a.Host))),
		mrkdwn("*Key*\n" + codeSpan(a.Key)),
		mrkdwn("*Count*\n" + counts(a, ", ")),
		mrkdwn("*Window*\n" + window(a)),
	}
	out = append(out, slack.NewSectionBlock(mrkdwn(safe(a.Summary)), fields, nil))
	if len(a.Evidence) > 0 {
		out = append(out, evidenceBlock("Evidence", a.Evidence))
	}
	if kind != Resolved && a.NextStep != "" {
		out = append(out, slack.NewContextBlock("", mrkdwn("*Next step:* "+safe(a.NextStep))))
	}
	fallback := title + ": " + safe(a.Key)
	if len(batch) > 1 && oneRule(batch) {
		fallback = fmt.Sprintf("%s: %d keys", title, len(batch))
	} else if len(batch) > 1 {
		fallback = fmt.Sprintf("%s: %s and %d more alerts", title, safe(a.Key), len(batch)-1)
	}
	return out, fallback
}

// counts says an alert's messages and deliveries ("1 message (3
// deliveries)" with sep " ", "1 message, 3 deliveries" with ", ").
func counts(a *Alert, sep string) string {
	d := plural(a.Recipients, "delivery", "deliveries")
	if sep == " " {
		d = "(" + d + ")"
	}
	return plural(a.Count, "message", "messages") + sep + d
}

// plural is n with the singular or plural noun.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// oneRule says whether every alert of a batch is of the same rule.
func oneRule(batch []Transition) bool {
	for _, t := range batch[1:] {
		if t.Alert.Rule != batch[0].Alert.Rule {
			return false
		}
	}
	return true
}

// groupList lists the alerts of a grouped message: the keys of one rule
// (an incident from many addresses), or each alert with its rule (one
// client caught by several rules, and whoever shares one of them).
func groupList(batch []Transition) string {
	var b strings.Builder
	same := oneRule(batch)
	mixed := false // severities differ: each line says its own
	for _, t := range batch[1:] {
		mixed = mixed || t.Alert.Severity != batch[0].Alert.Severity
	}
	if same {
		fmt.Fprintf(&b, "*%d alerts of rule %s:*\n", len(batch), codeSpan(batch[0].Alert.Rule))
	} else {
		fmt.Fprintf(&b, "*%d alerts:*\n", len(batch))
	}
	for i, t := range batch {
		if i == MaxListed {
			fmt.Fprintf(&b, "…and %d more\n", len(batch)-MaxListed)
			break
		}
		if same {
			sev := ""
			if mixed {
				sev = strings.ToUpper(t.Alert.Severity.String()) + " "
			}
			fmt.Fprintf(&b, "• %s%s: %s\n", sev, codeSpan(t.Alert.Key), counts(&t.Alert, " "))
			continue
		}
		fmt.Fprintf(&b, "• %s %s %s: %s, %s\n", strings.ToUpper(t.Alert.Severity.String()), codeSpan(t.Alert.Key),
			codeSpan(t.Alert.Rule), ruleWords(&t.Alert), counts(&t.Alert, " "))
	}
	return b.String()
}

// summaryBlocks renders a batch run's alerts, worst first, as one message.
func summaryBlocks(batch []Transition) ([]slack.Block, string) {
	crit, warn := 0, 0
	for _, t := range batch {
		switch t.Alert.Severity {
		case detect.SeverityCritical:
			crit++
		case detect.SeverityWarning:
			warn++
		}
	}
	worst := &batch[0].Alert
	title := fmt.Sprintf("%s relaywatch: %d findings (%d critical, %d warning)", severityIcon(worst.Severity), len(batch), crit, warn)
	var b strings.Builder
	for i, t := range batch {
		if i == MaxListed {
			fmt.Fprintf(&b, "…and %d more\n", len(batch)-MaxListed)
			break
		}
		fmt.Fprintf(&b, "• *%s* %s %s: %s\n", strings.ToUpper(t.Alert.Severity.String()), codeSpan(t.Alert.Rule), codeSpan(t.Alert.Key), safe(t.Alert.Summary))
	}
	out := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, truncate(title, 150), true, false)),
	}
	if notes := batch[0].Notes; len(notes) > 0 {
		var nb strings.Builder
		for i, n := range notes {
			if i == MaxListed {
				fmt.Fprintf(&nb, "…and %d more\n", len(notes)-MaxListed)
				break
			}
			fmt.Fprintf(&nb, "• %s\n", safe(n))
		}
		out = append(out, slack.NewSectionBlock(mrkdwn(truncate(nb.String(), 2900)), nil, nil))
	}
	out = append(out, slack.NewSectionBlock(mrkdwn(truncate(b.String(), 2900)), nil, nil))
	if len(worst.Evidence) > 0 {
		out = append(out, evidenceBlock("Evidence of the worst", worst.Evidence))
	}
	if worst.NextStep != "" {
		out = append(out, slack.NewContextBlock("", mrkdwn("*Next step:* "+safe(worst.NextStep))))
	}
	return out, title
}

func window(a *Alert) string {
	start, end := a.FirstSeen, a.LastSeen
	if !a.WindowStart.IsZero() {
		start, end = a.WindowStart, a.WindowEnd
	}
	if start.IsZero() {
		return "-"
	}
	return start.UTC().Format("2006-01-02 15:04") + " – " + end.UTC().Format("15:04") + " UTC"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// classify turns a slack-go error into a retry decision.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return &RetryAfterError{After: rl.RetryAfter, Err: err}
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		if sc.Code >= 500 || sc.Code == http.StatusTooManyRequests || sc.Code == http.StatusRequestTimeout {
			return &StatusError{Code: sc.Code, Err: err}
		}
		return &PermanentError{Err: &StatusError{Code: sc.Code, Err: err}}
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "ratelimited", "internal_error", "service_unavailable", "fatal_error", "request_timeout":
			return err
		}
		return &PermanentError{Err: err}
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return err
}

// redact keeps secrets (webhook URLs, tokens) out of error text.
func redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// SlackWebhook posts to a Slack incoming webhook.
type SlackWebhook struct {
	url    string
	client *http.Client
}

// NewSlackWebhook returns a webhook sink. The URL is a secret: it never
// appears in errors or logs.
func NewSlackWebhook(url string, client *http.Client) *SlackWebhook {
	if client == nil {
		client = &http.Client{}
	}
	return &SlackWebhook{url: url, client: client}
}

// Name implements Sink.
func (s *SlackWebhook) Name() string { return "slack-webhook" }

// Send implements Sink.
func (s *SlackWebhook) Send(ctx context.Context, batch []Transition) error {
	b, fallback := blocks(batch)
	msg := &slack.WebhookMessage{Text: fallback, Blocks: &slack.Blocks{BlockSet: b}}
	err := slack.PostWebhookCustomHTTPContext(ctx, s.url, s.client, msg)
	return redact(classify(err), s.url)
}

// SlackBot posts with a bot token to a channel: an alert is posted once,
// then updated in place (chat.update), and its updates and resolution are
// replied in its thread. With a PostJournal (Restore) which message shows
// which alert survives a restart.
type SlackBot struct {
	api     *slack.Client
	token   string
	channel string

	mu      sync.Mutex
	posts   map[string]*botPost // alert ID -> the message that shows it
	order   []botOrder          // alerts in the order their message was posted, to bound posts
	journal PostJournal         // nil: posts live in memory only
}

// botPost is one posted message and the alerts it shows.
type botPost struct {
	channel string // the channel's ID, as Slack answered
	ts      string
	alerts  []Alert // current state of each alert shown, in order
}

// botOrder is an alert in posting order; p tells a stale entry (the alert
// was posted again since, or forgotten) from the current one.
type botOrder struct {
	id string
	p  *botPost
}

// maxTracked bounds the alerts (their keys are attacker-chosen) whose
// message a bot sink remembers for updates, in memory and in the journal.
const maxTracked = 5000

// NewSlackBot returns a bot sink. apiURL overrides Slack's API URL (tests);
// "" means the real one. The token is a secret.
func NewSlackBot(token, channel, apiURL string, client *http.Client) *SlackBot {
	opts := []slack.Option{}
	if apiURL != "" {
		opts = append(opts, slack.OptionAPIURL(apiURL))
	}
	if client != nil {
		opts = append(opts, slack.OptionHTTPClient(client))
	}
	return &SlackBot{api: slack.New(token, opts...), token: token, channel: channel, posts: map[string]*botPost{}}
}

// Name implements Sink.
func (s *SlackBot) Name() string { return "slack-bot" }

// Restore gives the bot the messages it posted before a restart (from
// Store.Posts) and the journal that keeps them from now on; call it before
// the bot sends. Messages posted to another channel than the configured
// one are forgotten, and only the newest maxTracked alerts are kept.
func (s *SlackBot) Restore(posts []Post, j PostJournal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.journal = j
	for _, p := range posts {
		ref := PostRef{To: p.To, Channel: p.Channel, TS: p.TS}
		if p.To != s.channel || !ref.valid() || len(p.Alerts) == 0 {
			var ids []string
			for i := range p.Alerts {
				ids = append(ids, p.Alerts[i].ID())
			}
			s.clear(ids)
			continue
		}
		bp := &botPost{channel: p.Channel, ts: p.TS}
		for _, a := range p.Alerts {
			a.Evidence = append([]string(nil), a.Evidence...)
			bp.alerts = append(bp.alerts, a)
		}
		s.track(bp)
	}
}

// clear forgets the journal's messages of the alerts ids; s.mu is held.
func (s *SlackBot) clear(ids []string) {
	if s.journal != nil && len(ids) > 0 {
		s.journal.ClearPost(s.Name(), ids...)
	}
}

// Send implements Sink.
func (s *SlackBot) Send(ctx context.Context, batch []Transition) error {
	err := s.send(ctx, batch)
	return redact(classify(err), s.token)
}

func (s *SlackBot) send(ctx context.Context, batch []Transition) error {
	first := batch[0]
	if first.Kind == Summary {
		b, fallback := blocks(batch)
		_, _, err := s.api.PostMessageContext(ctx, s.channel, slack.MsgOptionBlocks(b...), slack.MsgOptionText(fallback, false))
		return err
	}
	s.mu.Lock()
	post, known := s.posts[first.Alert.ID()]
	s.mu.Unlock()
	if first.Kind == Fired || !known {
		return s.post(ctx, batch)
	}
	// An update or resolution: refresh the original message in place and
	// say what changed in its thread.
	s.mu.Lock()
	for i := range post.alerts {
		if post.alerts[i].ID() == first.Alert.ID() {
			post.alerts[i] = first.Alert
		}
	}
	view := make([]Transition, len(post.alerts))
	allResolved := true
	for i, a := range post.alerts {
		view[i] = Transition{Kind: Fired, Alert: a}
		if a.ResolvedAt.IsZero() {
			allResolved = false
		}
	}
	channel, ts := post.channel, post.ts
	s.mu.Unlock()
	if allResolved {
		view[0].Kind = Resolved
	}
	b, fallback := blocks(view)
	if _, _, _, err := s.api.UpdateMessageContext(ctx, channel, ts, slack.MsgOptionBlocks(b...), slack.MsgOptionText(fallback, false)); err != nil {
		if !messageGone(err) {
			return err
		}
		// The message was deleted, or is not one this bot may edit (a
		// journal from another workspace): say it in a new one.
		s.forget(post)
		return s.post(ctx, batch)
	}
	reply := fmt.Sprintf("%s %s: now %s (last seen %s UTC)", first.Kind, codeSpan(first.Alert.Key), counts(&first.Alert, ", "), first.Alert.LastSeen.UTC().Format("2006-01-02 15:04:05"))
	if first.Kind == Resolved {
		reply = fmt.Sprintf("resolved %s: no new evidence since %s UTC", codeSpan(first.Alert.Key), first.Alert.LastSeen.UTC().Format("2006-01-02 15:04:05"))
	}
	_, _, err := s.api.PostMessageContext(ctx, channel, slack.MsgOptionTS(ts), slack.MsgOptionText(reply, false))
	return err
}

// post posts batch as a new message and remembers it (in the journal too).
func (s *SlackBot) post(ctx context.Context, batch []Transition) error {
	b, fallback := blocks(batch)
	channel, ts, err := s.api.PostMessageContext(ctx, s.channel, slack.MsgOptionBlocks(b...), slack.MsgOptionText(fallback, false))
	if err != nil {
		return err
	}
	ref := PostRef{To: s.channel, Channel: channel, TS: ts}
	if !ref.valid() {
		// Slack answers a channel ID; anything else, the configured
		// channel is what chat.update gets.
		ref.Channel = s.channel
	}
	p := &botPost{channel: ref.Channel, ts: ts}
	for _, t := range batch {
		p.alerts = append(p.alerts, t.Alert)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.track(p)
	if s.journal != nil {
		s.journal.SetPost(s.Name(), ref, p.alerts)
	}
	return nil
}

// messageGone says whether chat.update failed because the message cannot
// be edited: deleted, too old, not the bot's, or its channel gone.
func messageGone(err error) bool {
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) {
		return false
	}
	switch se.Err {
	case "message_not_found", "cant_update_message", "edit_window_closed", "channel_not_found":
		return true
	}
	return false
}

// forget drops a message: its alerts are posted anew when they change.
func (s *SlackBot) forget(p *botPost) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var gone []string
	for i := range p.alerts {
		if id := p.alerts[i].ID(); s.posts[id] == p {
			delete(s.posts, id)
			gone = append(gone, id)
		}
	}
	s.clear(gone)
}

// track remembers which alerts p shows, forgetting the oldest beyond
// maxTracked (in the journal too); s.mu is held.
func (s *SlackBot) track(p *botPost) {
	for _, a := range p.alerts {
		id := a.ID()
		s.posts[id] = p
		s.order = append(s.order, botOrder{id, p})
	}
	var evicted []string
	for len(s.posts) > maxTracked || len(s.order) > 2*maxTracked {
		o := s.order[0]
		s.order = s.order[1:]
		if s.posts[o.id] == o.p {
			delete(s.posts, o.id)
			evicted = append(evicted, o.id)
		}
	}
	s.clear(evicted)
}
