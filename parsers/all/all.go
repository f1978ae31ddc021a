// Package all lists the log formats built into relaywatch. The list is
// explicit, with no init() side effects; tests build their own registries.
package all

import (
	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/exchange"
	"github.com/relaywatch/relaywatch/parsers/exim"
	"github.com/relaywatch/relaywatch/parsers/postfix"
)

// Formats returns the registry of built-in formats.
func Formats() *parsers.Registry {
	return parsers.NewRegistry(
		postfix.Format(),
		exim.Format(),
		exchange.MessageTracking(),
		exchange.SMTPReceive(),
	)
}
