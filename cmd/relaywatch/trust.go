package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/exchange"
	"github.com/relaywatch/relaywatch/parsers/exim"
	"github.com/relaywatch/relaywatch/parsers/postfix"
)

// readTrust reads the MTA configurations named by --postfix-config,
// --exim-config and --exchange-config. Their local and relay domains and
// networks add to the flags'.
func (o *policyOptions) readTrust() ([]parsers.Trust, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []parsers.Trust
	if o.PostfixConfig != "" {
		t, err := postfix.ReadTrust(ctx, o.PostfixConfig)
		if err != nil {
			return nil, fmt.Errorf("--postfix-config: %w", err)
		}
		out = append(out, t)
	}
	if o.EximConfig != "" {
		t, err := exim.ReadTrust(ctx, o.EximConfig)
		if err != nil {
			return nil, fmt.Errorf("--exim-config: %w", err)
		}
		out = append(out, t)
	}
	if o.ExchangeConfig != "" {
		t, err := exchange.ReadTrust(o.ExchangeConfig)
		if err != nil {
			return nil, fmt.Errorf("--exchange-config: %w", err)
		}
		out = append(out, t)
	}
	return out, nil
}

// localMTA points the policy at the local MTA's configuration when no MTA
// configuration was given and the MTA's tool is installed: watch runs on
// the mail host, where that configuration is the truth about who may relay.
func (o *policyOptions) localMTA(log *slog.Logger) {
	if o.PostfixConfig != "" || o.EximConfig != "" || o.ExchangeConfig != "" {
		return
	}
	if _, err := exec.LookPath("postconf"); err == nil {
		if _, err := os.Stat("/etc/postfix/main.cf"); err == nil {
			o.PostfixConfig = "/etc/postfix"
		}
	}
	for _, tool := range []string{"exim4", "exim"} {
		if _, err := exec.LookPath(tool); err == nil {
			o.EximConfig = "auto"
			break
		}
	}
	if log != nil && (o.PostfixConfig != "" || o.EximConfig != "") {
		log.Info("taking local domains, relay domains and trusted networks from the local MTA's configuration too (--mta-config none to use only the flags)",
			"postfix", o.PostfixConfig, "exim", o.EximConfig)
	}
}

// logTrust logs what was taken from the MTA's configuration.
func logTrust(log *slog.Logger, trust []parsers.Trust) {
	for _, t := range trust {
		log.Info("trust model from the MTA", "source", t.Source, "local_domains", listOrNone(t.LocalDomains),
			"relay_domains", listOrNone(t.RelayDomains), "networks", listOrNone(t.Networks))
		for _, n := range t.Notes {
			log.Warn("MTA configuration", "source", t.Source, "note", n)
		}
	}
}

// writeTrust says what was taken from the MTA's configuration.
func writeTrust(w io.Writer, trust []parsers.Trust) {
	for _, t := range trust {
		fmt.Fprintf(w, "relaywatch: from %s: local domains %s; relay domains %s; networks that may relay %s\n",
			t.Source, listOrNone(t.LocalDomains), listOrNone(t.RelayDomains), listOrNone(t.Networks))
		for _, n := range t.Notes {
			fmt.Fprintf(w, "relaywatch: %s: %s\n", t.Source, n)
		}
	}
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(truncateList(l, 10), ", ")
}
