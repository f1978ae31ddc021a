package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/pflag"
)

// version and commit are stamped by release builds (deploy/release.sh):
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=0123456789ab" ./cmd/relaywatch
//
// Without them the module version and the VCS revision from the build
// info are used.
var (
	version = ""
	commit  = ""
)

func buildVersion() string {
	v, rev, modified := version, commit, false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.modified":
				modified = commit == "" && s.Value == "true"
			}
		}
	}
	if v == "" || v == "(devel)" {
		v = "(devel)"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	// A pseudo-version (v0.0.0-20261125...-0123456789ab) already names the
	// revision: say it once.
	if rev != "" && !strings.Contains(v, rev) {
		if modified {
			rev += ", modified"
		}
		v += " (" + rev + ")"
	}
	return v
}

func versionCommand() command {
	return command{
		name:    "version",
		summary: "print relaywatch's version",
		usage:   "version",
		flags: func() (*pflag.FlagSet, func(context.Context, *env, []string) error) {
			fs := pflag.NewFlagSet("version", pflag.ContinueOnError)
			return fs, func(_ context.Context, e *env, args []string) error {
				if len(args) > 0 {
					return fmt.Errorf("%w: version takes no arguments", errUsage)
				}
				fmt.Fprintf(e.stdout, "relaywatch %s %s %s/%s\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return nil
			}
		},
	}
}
