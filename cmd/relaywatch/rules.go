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
	ProbingWindow      time.Duration
	ProbingMaxClients  int
	BlocklistWindow    time.Duration
	BlocklistReceivers int
	BlocklistShare     float64
	BlocklistMin       int
	Account            detect.AccountConfig
	Storm              detect.StormConfig
}

// addFlags registers the rules' flags.
func (o *ruleOptions) addFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&o.ProbingWindow, "probing-window", detect.DefaultProbingWindow, "relay-probing: a client refused relaying is critical if accepted for a foreign recipient within this event time of its last refusal")
	fs.IntVar(&o.ProbingMaxClients, "probing-max-clients", detect.DefaultProbingMaxClients, "relay-probing: probing clients remembered; the least recently seen is forgotten beyond it")
	fs.DurationVar(&o.BlocklistWindow, "blocklist-window", detect.DefaultBlocklistWindow, "blocklisted: event time over which refusing receivers and the refused share are counted")
	fs.IntVar(&o.BlocklistReceivers, "blocklist-receivers", detect.DefaultBlocklistReceivers, "blocklisted: this many receiving domains refusing for a blocklist within --blocklist-window is critical")
	fs.Float64Var(&o.BlocklistShare, "blocklist-share", detect.DefaultBlocklistShare, "blocklisted: this share of outbound deliveries refused for a blocklist within --blocklist-window is critical (a deferred delivery's retries count once), in (0,1]")
	fs.DurationVar(&o.Account.Window, "account-window", detect.DefaultAccountWindow, "compromised-account: counting window per authenticated user")
	fs.Float64Var(&o.Account.Factor, "account-factor", detect.DefaultAccountFactor, "compromised-account: a window's outbound deliveries or recipient domains must reach this multiple of the user's baseline")
	fs.IntVar(&o.Account.MinOutbound, "account-min-outbound", detect.DefaultAccountMinOutbound, "compromised-account: fewer outbound deliveries in a window are never a jump")
	fs.IntVar(&o.Account.MinDomains, "account-min-domains", detect.DefaultAccountMinDomains, "compromised-account: fewer distinct recipient domains in a window are never a jump")
	fs.IntVar(&o.Account.MinNetworks, "account-min-networks", detect.DefaultAccountMinNetworks, "compromised-account: logins from this many networks (/24, /48) in a window are suspect (or twice the user's baseline)")
	fs.IntVar(&o.Account.AuthFailures, "account-auth-failures", detect.DefaultAccountAuthFailures, "compromised-account: this many failed logins for the user within a day before the jump make it critical")
	fs.IntVar(&o.Account.MaxUsers, "account-max-users", detect.DefaultAccountMaxUsers, "compromised-account: users followed; the least recently seen is forgotten beyond it")
	fs.DurationVar(&o.Storm.Window, "storm-window", detect.DefaultStormWindow, "queue-storm: counting window (aligned to the epoch)")
	fs.Float64Var(&o.Storm.Factor, "storm-factor", detect.DefaultStormFactor, "queue-storm: a window must reach this multiple of the learned baseline")
	fs.IntVar(&o.Storm.MinFailed, "storm-min-failed", detect.DefaultStormMinFailed, "queue-storm: fewer deferred (first deferral), bounced or expired outbound deliveries in a window are never a storm")
	fs.IntVar(&o.Storm.MinBackscatter, "storm-min-backscatter", detect.DefaultStormMinBackscatter, "queue-storm: fewer null-sender deliveries to foreign recipients in a window are never backscatter")
	fs.IntVar(&o.BlocklistMin, "blocklist-min-refused", detect.DefaultBlocklistMinRefused, "blocklisted: fewer refusals in the window are never critical by --blocklist-share")
}

// configure puts the rules' settings into a detector configuration.
func (o *ruleOptions) configure(cfg *detect.Config) {
	cfg.Probing = detect.ProbingConfig{Window: o.ProbingWindow, MaxClients: o.ProbingMaxClients}
	cfg.Account = o.Account
	cfg.Storm = o.Storm
	cfg.Blocklist = detect.BlocklistConfig{Window: o.BlocklistWindow, Receivers: o.BlocklistReceivers, Share: o.BlocklistShare, MinRefused: o.BlocklistMin}
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
	want("account-window", o.Account.Window >= time.Minute, "--account-window %v: must be at least 1m", o.Account.Window)
	want("account-factor", o.Account.Factor >= 1, "--account-factor %v: must be at least 1", o.Account.Factor)
	for _, c := range []struct {
		setting string
		v       int
	}{{"account-min-outbound", o.Account.MinOutbound}, {"account-min-domains", o.Account.MinDomains}, {"account-min-networks", o.Account.MinNetworks}, {"account-auth-failures", o.Account.AuthFailures}, {"account-max-users", o.Account.MaxUsers}} {
		want(c.setting, c.v >= 1, "--%s %d: must be at least 1", c.setting, c.v)
	}
	want("storm-window", o.Storm.Window >= time.Minute, "--storm-window %v: must be at least 1m", o.Storm.Window)
	want("storm-factor", o.Storm.Factor >= 1, "--storm-factor %v: must be at least 1", o.Storm.Factor)
	want("storm-min-failed", o.Storm.MinFailed >= 1, "--storm-min-failed %d: must be at least 1", o.Storm.MinFailed)
	want("storm-min-backscatter", o.Storm.MinBackscatter >= 1, "--storm-min-backscatter %d: must be at least 1", o.Storm.MinBackscatter)
	want("blocklist-window", o.BlocklistWindow >= time.Minute, "--blocklist-window %v: must be at least 1m", o.BlocklistWindow)
	want("blocklist-receivers", o.BlocklistReceivers >= 1, "--blocklist-receivers %d: must be at least 1", o.BlocklistReceivers)
	want("blocklist-share", o.BlocklistShare > 0 && o.BlocklistShare <= 1, "--blocklist-share %v: must be in (0, 1]", o.BlocklistShare)
	want("blocklist-min-refused", o.BlocklistMin >= 1, "--blocklist-min-refused %d: must be at least 1", o.BlocklistMin)
	return errs
}
