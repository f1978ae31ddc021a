// Command relaywatch finds mail servers that relay mail for strangers, from
// their logs. See README.md for the commands and flags.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
)

// Exit statuses.
const (
	exitOK       = 0
	exitFindings = 1 // analyze found something at or above --fail-on
	exitUsage    = 2 // bad flags, bad config, unreadable input
)

var (
	// errUsage marks errors in how relaywatch was called.
	errUsage = errors.New("usage error")
	// errInput marks inputs that could not be read (the rest were analyzed).
	errInput = errors.New("input error")
	// errFindings means findings at or above --fail-on were reported.
	errFindings = errors.New("findings at or above the --fail-on severity")
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	usage   string
	// long, when set, is more help shown after the summary.
	long string
	// flags returns the command's flag set bound to a fresh options value
	// and the function that runs it with the remaining arguments.
	flags func() (*pflag.FlagSet, func(ctx context.Context, env *env, args []string) error)
}

// env is what a command may touch, so tests can run commands without a process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// stderrIsTerminal enables progress output.
	stderrIsTerminal bool
	// args are the command's own arguments as given (flags included), so
	// that a config reload can apply them again over the new file.
	args []string
}

func commands() []command {
	return []command{analyzeCommand(), watchCommand(), checkConfigCommand(), parseCommand(), probeCommand(), versionCommand()}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, stderrIsTerminal: isTerminal(os.Stderr)}
	os.Exit(run(ctx, e, os.Args[1:]))
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// run runs relaywatch with args and returns the exit status.
func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		printUsage(e.stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "--help":
		if len(args) > 1 {
			for _, c := range commands() {
				if c.name == args[1] {
					fs, _ := c.flags()
					printCommandHelp(e.stdout, c, fs)
					return exitOK
				}
			}
			fmt.Fprintf(e.stderr, "relaywatch: no help for %q: unknown command\n", args[1])
			return exitUsage
		}
		printUsage(e.stdout)
		return exitOK
	case "--version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		fs, runFn := c.flags()
		fs.SetOutput(io.Discard)
		if err := fs.Parse(args[1:]); err != nil {
			if errors.Is(err, pflag.ErrHelp) {
				printCommandHelp(e.stdout, c, fs)
				return exitOK
			}
			fmt.Fprintf(e.stderr, "relaywatch %s: %v\nRun 'relaywatch %s --help' for usage.\n", c.name, err, c.name)
			return exitUsage
		}
		e.args = args[1:]
		if f := fs.Lookup("config"); f != nil && f.Value.String() != "" {
			errs, err := applyConfig(f.Value.String(), fs, c.name)
			if err == nil && len(errs) > 0 {
				err = errors.Join(func() []error {
					var out []error
					for _, ce := range errs {
						out = append(out, fmt.Errorf("%s:%w", f.Value.String(), ce))
					}
					return out
				}()...)
			}
			if err != nil {
				fmt.Fprintf(e.stderr, "relaywatch %s: %v\n", c.name, err)
				return exitUsage
			}
		}
		err := runFn(ctx, e, fs.Args())
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, errFindings):
			return exitFindings
		case errors.Is(err, errUsage):
			fmt.Fprintf(e.stderr, "relaywatch %s: %v\nRun 'relaywatch %s --help' for usage.\n", c.name, err, c.name)
			return exitUsage
		default:
			fmt.Fprintf(e.stderr, "relaywatch %s: %v\n", c.name, err)
			return exitUsage
		}
	}
	fmt.Fprintf(e.stderr, "relaywatch: unknown command %q\n", name)
	printUsage(e.stderr)
	return exitUsage
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "relaywatch finds mail servers that relay mail for strangers, from their logs.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: relaywatch COMMAND [flags] [FILE...]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-9s %s\n", "help", "show help for a command")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'relaywatch COMMAND --help' for a command's flags.")
}

func printCommandHelp(w io.Writer, c command, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "Usage: relaywatch %s\n\n%s\n\n", c.usage, c.summary)
	if c.long != "" {
		fmt.Fprintf(w, "%s\n\n", c.long)
	}
	fmt.Fprintf(w, "Flags:\n%s", fs.FlagUsages())
}
