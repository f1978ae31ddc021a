package main

import (
	"fmt"
	"time"

	"github.com/relaywatch/relaywatch/detect"
)

// settingError is a problem with one setting, named as its flag (and its
// config file key): check-config takes the line from the name, never from
// the error text.
type settingError struct {
	Setting string
	Err     error
}

func (e settingError) Error() string { return e.Err.Error() }

// check validates the input settings.
func (o *inputOptions) check() []settingError {
	var errs []settingError
	if o.Format != "" {
		if _, err := (&inputOptions{Format: o.Format, Timezone: "UTC"}).resolve(); err != nil {
			errs = append(errs, settingError{"format", err})
		}
	}
	if o.Year != 0 && (o.Year < 1970 || o.Year > 9999) {
		errs = append(errs, settingError{"year", fmt.Errorf("--year %d: want a year such as 2026", o.Year)})
	}
	if _, err := time.LoadLocation(o.Timezone); err != nil {
		errs = append(errs, settingError{"timezone", fmt.Errorf("--timezone %q: %w", o.Timezone, err)})
	}
	if o.Workers < 0 {
		errs = append(errs, settingError{"workers", fmt.Errorf("--workers %d: must not be negative", o.Workers)})
	}
	return errs
}

// check validates the detection settings, one setting at a time.
func (o *policyOptions) check() []settingError {
	var errs []settingError
	add := func(setting string, err error) {
		if err != nil {
			errs = append(errs, settingError{setting, err})
		}
	}
	_, err := detect.NewPolicy(o.LocalDomains, nil, nil)
	add("local-domains", err)
	_, err = detect.NewPolicy(nil, o.TrustedNetworks, nil)
	add("trusted-networks", err)
	_, err = detect.NewPolicy(nil, nil, o.KnownClients)
	add("known-clients", err)
	if o.Baseline != "" {
		_, err = detect.LoadBaseline(o.Baseline)
		add("baseline", err)
	}
	positive := func(setting string, ok bool, format string, a ...any) {
		if !ok {
			errs = append(errs, settingError{setting, fmt.Errorf(format, a...)})
		}
	}
	positive("min-relayed", o.MinRelayed >= 1, "--min-relayed %d: must be at least 1", o.MinRelayed)
	positive("max-messages", o.MaxMessages >= 100, "--max-messages %d: must be at least 100", o.MaxMessages)
	positive("message-ttl", o.MessageTTL > 0, "--message-ttl %v: must be positive", o.MessageTTL)
	positive("learn-period", o.LearnPeriod >= 0, "--learn-period %v: must not be negative", o.LearnPeriod)
	positive("spike-window", o.SpikeWindow >= time.Second, "--spike-window %v: must be at least 1s", o.SpikeWindow)
	positive("spike-factor", o.SpikeFactor >= 1, "--spike-factor %v: must be at least 1", o.SpikeFactor)
	positive("spike-min", o.SpikeMin >= 1, "--spike-min %d: must be at least 1", o.SpikeMin)
	positive("spike-alpha", o.SpikeAlpha > 0 && o.SpikeAlpha <= 1, "--spike-alpha %v: must be in (0, 1]", o.SpikeAlpha)
	positive("max-findings", o.MaxFindings >= 10, "--max-findings %d: must be at least 10", o.MaxFindings)
	positive("clock-window", o.ClockWindow >= time.Second, "--clock-window %v: must be at least 1s", o.ClockWindow)
	positive("clock-confirm", o.ClockConfirm >= 1, "--clock-confirm %d: must be at least 1", o.ClockConfirm)
	errs = append(errs, o.rules.check()...)
	// The MTA configurations, each read as at start.
	for _, c := range []struct {
		setting string
		only    policyOptions
	}{
		{"postfix-config", policyOptions{PostfixConfig: o.PostfixConfig}},
		{"exim-config", policyOptions{EximConfig: o.EximConfig}},
		{"exchange-config", policyOptions{ExchangeConfig: o.ExchangeConfig}},
	} {
		if _, err := c.only.readTrust(); err != nil {
			errs = append(errs, settingError{c.setting, err})
		}
	}
	return errs
}

// check validates the alert settings (the secrets from the environment are
// checked when the sinks start).
func (o *alertOptions) check() []settingError {
	var errs []settingError
	if o.ResolveAfter <= 0 {
		errs = append(errs, settingError{"resolve-after", fmt.Errorf("--resolve-after %v: must be positive", o.ResolveAfter)})
	}
	if o.SlackToken != "" && o.SlackChannel == "" {
		errs = append(errs, settingError{"slack-token", fmt.Errorf("a Slack bot token needs --slack-channel")})
	}
	if _, err := detect.ParseSeverity(o.SlackMinSeverity); err != nil {
		errs = append(errs, settingError{"slack-min-severity", fmt.Errorf("--slack-min-severity: %w", err)})
	}
	if o.SlackUpdateInterval < 0 {
		errs = append(errs, settingError{"slack-update-interval", fmt.Errorf("--slack-update-interval %v: must not be negative", o.SlackUpdateInterval)})
	}
	if o.AMRefresh <= 0 {
		errs = append(errs, settingError{"alertmanager-refresh", fmt.Errorf("--alertmanager-refresh %v: must be positive", o.AMRefresh)})
	}
	// The same check as at start (alerting.start), with the same words.
	check := func(setting, what, raw string, secret bool) {
		if raw == "" {
			return
		}
		if err := checkURL(raw, secret); err != nil {
			errs = append(errs, settingError{setting, fmt.Errorf("%s: %w", what, err)})
		}
	}
	check("slack-webhook", "the Slack webhook URL", o.SlackWebhook, true)
	check("slack-api-url", "--slack-api-url", o.SlackAPIURL, false)
	for _, u := range o.Alertmanagers {
		check("alertmanager", "--alertmanager", u, false)
	}
	return errs
}
