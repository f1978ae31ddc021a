package main

import (
	"context"
	"fmt"
	"io"
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
