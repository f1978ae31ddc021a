package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/pflag"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version from the build info is used.
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		if v != "" {
			return v
		}
	}
	return "(devel)"
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
