package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/relaywatch/relaywatch/detect/probe"
)

// probeWarning is shown in `relaywatch probe --help`.
const probeWarning = `WARNING: probe connects to a mail server and tries to relay through it. Test
only servers you run or are allowed to test: to others this is an attack, and
their operators may report or block you. It never sends DATA, so no mail is
relayed even through an open server, but the attempts are logged there.`

// probeOptions are the flags of `relaywatch probe`.
type probeOptions struct {
	Port           int
	TLS            bool
	NoStartTLS     bool
	Timeout        time.Duration
	Delay          time.Duration
	MaxConnections int
	Helo           string
	Foreign        string
	ServerName     string
	IP             string
	Source         string
	LocalDomains   []string
	Output         string
}

// AddFlags registers probe's flags.
func (o *probeOptions) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.Port, "port", 0, "SMTP port (default 25, or 465 with --tls; 587 for submission); overrides a port in HOST:PORT")
	fs.BoolVar(&o.TLS, "tls", false, "implicit TLS from the first byte (SMTPS, port 465)")
	fs.BoolVar(&o.NoStartTLS, "no-starttls", false, "stay in clear text even when the server offers STARTTLS")
	fs.DurationVar(&o.Timeout, "timeout", probe.DefaultTimeout, "longest wait for each step: connect, TLS handshake, each reply")
	fs.DurationVar(&o.Delay, "delay", 0, "pause between two relay attempts")
	fs.IntVar(&o.MaxConnections, "max-connections", probe.DefaultMaxConnections, "most connections opened (after a 421 or a disconnect the probe reconnects and retries the attempt once)")
	fs.StringVar(&o.Helo, "helo", probe.DefaultHelo, "name sent with EHLO")
	fs.StringVar(&o.Foreign, "foreign-domain", probe.DefaultForeign, "a domain that is not the server's: the relay target")
	fs.StringVar(&o.ServerName, "server-name", "", "the server's host name in the variants that need it (default: from its EHLO reply)")
	fs.StringVar(&o.IP, "ip", "", "the address written in IP literals, [ip] (default: the address connected to)")
	fs.StringVar(&o.Source, "source", "", "local IP address to connect from (default: chosen by the system)")
	fs.StringSliceVar(&o.LocalDomains, "local-domains", nil, "the server's own mail domains; the first is the forged local sender's (default: the server name's parent domain)")
	fs.StringVarP(&o.Output, "output", "o", "text", "output format: text or json")
}

func probeCommand() command {
	return command{
		name:    "probe",
		summary: "actively test whether a mail server relays for strangers (only servers you may test)",
		usage:   "probe [flags] HOST[:PORT]",
		long:    probeWarning + "\n\nExit status: 0 closed, 1 open relay (a variant was accepted), 2 could not test.",
		flags: func() (*pflag.FlagSet, func(context.Context, *env, []string) error) {
			o := &probeOptions{}
			fs := pflag.NewFlagSet("probe", pflag.ContinueOnError)
			o.AddFlags(fs)
			return fs, func(ctx context.Context, e *env, args []string) error { return runProbe(ctx, e, o, args) }
		},
	}
}

// config checks the options and turns them into the probe's configuration.
func (o *probeOptions) config(args []string) (probe.Config, error) {
	var cfg probe.Config
	if len(args) != 1 {
		return cfg, fmt.Errorf("%w: probe takes one HOST[:PORT], got %d arguments", errUsage, len(args))
	}
	hostport := args[0]
	if o.Port != 0 {
		if o.Port < 1 || o.Port > 65535 {
			return cfg, fmt.Errorf("%w: --port %d: not from 1 to 65535", errUsage, o.Port)
		}
		if h, _, err := net.SplitHostPort(hostport); err == nil {
			hostport = h
		}
		hostport = net.JoinHostPort(strings.Trim(hostport, "[]"), strconv.Itoa(o.Port))
	}
	addr, err := probe.Addr(hostport, o.TLS)
	if err != nil {
		return cfg, fmt.Errorf("%w: %q: %v", errUsage, args[0], err)
	}
	switch {
	case o.Output != "text" && o.Output != "json":
		return cfg, fmt.Errorf("%w: --output %q: want text or json", errUsage, o.Output)
	case o.Timeout <= 0:
		return cfg, fmt.Errorf("%w: --timeout must be positive", errUsage)
	case o.Delay < 0:
		return cfg, fmt.Errorf("%w: --delay must not be negative", errUsage)
	case o.MaxConnections < 1:
		return cfg, fmt.Errorf("%w: --max-connections must be at least 1", errUsage)
	case o.TLS && o.NoStartTLS:
		return cfg, fmt.Errorf("%w: --tls and --no-starttls together make no sense", errUsage)
	case o.IP != "" && net.ParseIP(o.IP) == nil:
		return cfg, fmt.Errorf("%w: --ip %q: not an IP address", errUsage, o.IP)
	case o.Source != "" && net.ParseIP(o.Source) == nil:
		return cfg, fmt.Errorf("%w: --source %q: not an IP address", errUsage, o.Source)
	}
	for _, n := range append([]string{o.Helo, o.Foreign, o.ServerName}, o.LocalDomains...) {
		if n != "" && !probe.ValidHostName(strings.TrimPrefix(n, ".")) {
			return cfg, fmt.Errorf("%w: %q: not a host or domain name", errUsage, n)
		}
	}
	return probe.Config{
		Addr: addr, ImplicitTLS: o.TLS, NoStartTLS: o.NoStartTLS, Helo: o.Helo, Foreign: o.Foreign,
		ServerName: o.ServerName, ServerIP: o.IP, Source: o.Source, LocalDomains: o.LocalDomains,
		Timeout: o.Timeout, Delay: o.Delay, MaxConnections: o.MaxConnections,
	}, nil
}

// runProbe is `relaywatch probe`.
func runProbe(ctx context.Context, e *env, o *probeOptions, args []string) error {
	cfg, err := o.config(args)
	if err != nil {
		return err
	}
	res, err := probe.Run(ctx, cfg)
	if res != nil && (err == nil || len(res.Attempts) > 0 || o.Output == "json") {
		if werr := writeProbe(e, o.Output, res); werr != nil {
			return werr
		}
	}
	switch {
	case err != nil:
		return fmt.Errorf("could not test %s: %w", cfg.Addr, err)
	case res.Verdict == probe.Open:
		return errFindings
	case res.Verdict == probe.Untested:
		return fmt.Errorf("could not test %s: %s", cfg.Addr, strings.TrimPrefix(res.Summary(), "could not test: "))
	}
	return nil
}

// writeProbe prints the result as a table or as JSON. Server text in it is
// already escaped by the probe.
func writeProbe(e *env, output string, res *probe.Result) error {
	if output == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // "RCPT TO:<...>" stays readable; control characters are still escaped
		return enc.Encode(res)
	}
	fmt.Fprintf(e.stdout, "relay probe of %s (%s), server name %s, TLS: %s\n", res.Target, res.Address, orDash(res.ServerName), res.TLS)
	if res.Banner != "" {
		fmt.Fprintf(e.stdout, "banner: %s\n", res.Banner)
	}
	if res.Auth != "" {
		fmt.Fprintf(e.stdout, "AUTH offered: %s\n", res.Auth)
	}
	fmt.Fprintln(e.stdout)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIANT\tCOMMANDS\tREPLY\tVERDICT")
	for _, a := range res.Attempts {
		cmds := strings.Join(a.Commands, " ")
		if cmds == "" {
			cmds = "MAIL FROM:<" + a.Variant.From + "> RCPT TO:<" + a.Variant.To + ">"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Variant.Name, strings.TrimSuffix(cmds, " RSET"), cut(a.Reply(), 90), a.Verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range res.Notes {
		fmt.Fprintf(e.stdout, "note: %s\n", n)
	}
	fmt.Fprintf(e.stdout, "\n%s (%d connections)\n", res.Summary(), res.Connections)
	if acc := res.AcceptedVariants(); len(acc) > 0 {
		fmt.Fprintf(e.stdout, "accepted: %s\n", strings.Join(acc, ", "))
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cut shortens s to n runes.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
