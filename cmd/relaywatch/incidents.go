package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/relaywatch/relaywatch/detect"
)

// writeIncidents prints one block per relaying client: every rule it
// matched, and the counts that the findings below show per rule.
func writeIncidents(w io.Writer, incidents []detect.Incident) {
	if len(incidents) == 0 {
		return
	}
	fmt.Fprintf(w, "\nIncidents (%d), one per relaying client, worst first\n", len(incidents))
	for _, in := range incidents {
		name := in.Client
		if in.Name != "" {
			name = in.Name
		}
		fmt.Fprintf(w, "\n[%s] %s", strings.ToUpper(in.Severity.String()), termSafe(name))
		if in.Host != "" {
			fmt.Fprintf(w, "  on %s", termSafe(in.Host))
		}
		if in.MTA != "" {
			fmt.Fprintf(w, "  (%s)", in.MTA)
		}
		var rules []string
		for _, f := range in.Findings {
			rules = append(rules, f.Rule+" "+termSafe(f.Key)+" ("+f.Severity.String()+")")
		}
		fmt.Fprintf(w, "\n  rules: %s\n", strings.Join(rules, ", "))
		approx := ""
		if in.RecipientsCapped {
			approx = " (at least)"
		}
		fmt.Fprintf(w, "  messages %d, distinct recipients %d%s, delivery attempts %d: sent %d, deferred %d, bounced %d",
			in.Messages, in.Recipients, approx, in.Attempts.Total(), in.Attempts.Sent, in.Attempts.Deferred, in.Attempts.Bounced)
		if in.Attempts.Other > 0 {
			fmt.Fprintf(w, ", other %d", in.Attempts.Other)
		}
		fmt.Fprintf(w, "\n  seen %s .. %s\n", in.FirstSeen.Format(time.RFC3339), in.LastSeen.Format(time.RFC3339))
		fmt.Fprintf(w, "  next step: %s\n", termSafe(in.NextStep))
	}
}

// termSafe replaces control characters (escape sequences a log line could
// carry to the terminal) with their \x escapes.
func termSafe(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			fmt.Fprintf(&b, "\\x%02x", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// undeclaredNote says which few domains took most of the relayed mail, and
// how to declare them if this server is their gateway or backup MX.
func undeclaredNote(u *detect.Undeclared) string {
	doms := strings.Join(u.Domains, ",")
	return fmt.Sprintf("%.0f%% of the %d deliveries relayed for strangers went to %s, which no flag or configuration declared. "+
		"If this server is a gateway or backup MX for them, declare them (--local-domains %s, or --postfix-config / --exim-config / --exchange-config) and run again; otherwise this is relaying.",
		100*u.Share, u.Relayed, strings.Join(u.Domains, ", "), doms)
}

// summaryNotes are the lines a batch run's Slack summary shows above its
// findings: one per incident (the counts the report gives), the note about
// undeclared domains, and the probe's verdict.
func (r *report) summaryNotes() []string {
	var out []string
	if r.undeclared != nil {
		out = append(out, "NOTE: "+undeclaredNote(r.undeclared))
	}
	if r.probe != nil {
		out = append(out, fmt.Sprintf("Confirmed with relaywatch probe %s: %s (%s)", r.probe.Target, r.probe.Verdict, r.probe.Summary))
	}
	for _, in := range r.incidents {
		if in.Severity < detect.SeverityWarning {
			continue
		}
		out = append(out, fmt.Sprintf("Incident %s %s (%s): %d messages to %d recipients; attempts %d sent, %d deferred, %d bounced; rules %s",
			strings.ToUpper(in.Severity.String()), in.Client, in.Name, in.Messages, in.Recipients,
			in.Attempts.Sent, in.Attempts.Deferred, in.Attempts.Bounced, strings.Join(in.Rules, ", ")))
	}
	return out
}
