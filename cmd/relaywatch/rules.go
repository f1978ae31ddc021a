package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/relaywatch/relaywatch/detect"
)

// ruleOptions are the thresholds of relay-probing, relay-trick-accepted,
// blocklisted, compromised-account and queue-storm.
type ruleOptions struct {
	ProbingWindow     time.Duration
	ProbingMaxClients int
}

// addFlags registers the rules' flags.
func (o *ruleOptions) addFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&o.ProbingWindow, "probing-window", detect.DefaultProbingWindow, "relay-probing: a client refused relaying is critical if accepted for a foreign recipient within this event time of its last refusal")
	fs.IntVar(&o.ProbingMaxClients, "probing-max-clients", detect.DefaultProbingMaxClients, "relay-probing: probing clients remembered; the least recently seen is forgotten beyond it")
}

// configure puts the rules' settings into a detector configuration.
func (o *ruleOptions) configure(cfg *detect.Config) {
	cfg.Probing = detect.ProbingConfig{Window: o.ProbingWindow, MaxClients: o.ProbingMaxClients}
}

// check validates the rules' settings, one setting at a time (watch,
// analyze and check-config run it).
func (o *ruleOptions) check() []settingError {
	var errs []settingError
	want := func(setting string, ok bool, format string, a ...any) {
		if !ok {
			errs = append(errs, settingError{setting, fmt.Errorf(format, a...)})
		}
	}
	want("probing-window", o.ProbingWindow >= time.Minute, "--probing-window %v: must be at least 1m", o.ProbingWindow)
	want("probing-max-clients", o.ProbingMaxClients >= 1, "--probing-max-clients %d: must be at least 1", o.ProbingMaxClients)
	return errs
}
