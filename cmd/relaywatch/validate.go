package main

import (
	"fmt"
	"net/url"
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
	if o.AMRefresh <= 0 {
		errs = append(errs, settingError{"alertmanager-refresh", fmt.Errorf("--alertmanager-refresh %v: must be positive", o.AMRefresh)})
	}
	checkURL := func(setting, raw string) {
		if raw == "" {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, settingError{setting, fmt.Errorf("--%s: want an http:// or https:// URL", setting)})
		}
	}
	checkURL("slack-webhook", o.SlackWebhook)
	checkURL("slack-api-url", o.SlackAPIURL)
	for _, u := range o.Alertmanagers {
		checkURL("alertmanager", u)
	}
	return errs
}
