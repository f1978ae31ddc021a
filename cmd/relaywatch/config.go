package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// configError is one problem in a config file, with its line.
type configError struct {
	Line int
	Msg  string
}

func (e configError) Error() string {
	if e.Line == 0 {
		return " " + e.Msg // a default value: no line
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

// applyConfig sets the flags of fs, the flags of command, from a YAML config
// file whose keys are flag names (without the dashes); flags given on the
// command line win. Every flag can be set this way, and one file serves
// analyze and watch: a setting of the other command is accepted and left
// alone. It returns all problems, each with its line.
func applyConfig(path string, fs *pflag.FlagSet, command string) ([]configError, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		return []configError{{Line: yamlErrLine(err), Msg: err.Error()}}, nil
	}
	if len(doc.Content) == 0 {
		return nil, nil // empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return []configError{{Line: root.Line, Msg: "the config must be a mapping of settings (flag names) to values"}}, nil
	}
	var errs []configError
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		name := k.Value
		if prev, ok := seen[name]; ok {
			errs = append(errs, configError{k.Line, fmt.Sprintf("%q is set twice (first on line %d)", name, prev)})
			continue
		}
		seen[name] = k.Line
		f := fs.Lookup(name)
		if f == nil && name != "config" && otherCommandSetting(command, name) {
			continue // a setting of the other command
		}
		if f == nil || name == "config" {
			errs = append(errs, configError{k.Line, fmt.Sprintf("unknown setting %q; settings are the command's flags without the dashes: %s", name, flagNames(fs))})
			continue
		}
		if f.Changed {
			continue // the command line wins
		}
		var values []string
		switch v.Kind {
		case yaml.ScalarNode:
			values = []string{v.Value}
		case yaml.SequenceNode:
			for _, item := range v.Content {
				if item.Kind != yaml.ScalarNode {
					errs = append(errs, configError{item.Line, fmt.Sprintf("%s: list items must be plain values", name)})
					continue
				}
				values = append(values, item.Value)
			}
			if t := f.Value.Type(); t != "stringSlice" && t != "stringArray" {
				errs = append(errs, configError{v.Line, fmt.Sprintf("%s takes one value, not a list", name)})
				continue
			}
		default:
			errs = append(errs, configError{v.Line, fmt.Sprintf("%s: expected a value or a list", name)})
			continue
		}
		if f.Value.Type() == "stringSlice" {
			values = []string{strings.Join(values, ",")}
		}
		for _, val := range values {
			if err := fs.Set(name, val); err != nil {
				errs = append(errs, configError{v.Line, fmt.Sprintf("%s: %v", name, err)})
				break
			}
		}
	}
	return errs, nil
}

func yamlErrLine(err error) int {
	var line int
	if _, scanErr := fmt.Sscanf(err.Error(), "yaml: line %d:", &line); scanErr == nil {
		return line
	}
	return 1
}

func flagNames(fs *pflag.FlagSet) string {
	var names []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name != "config" {
			names = append(names, f.Name)
		}
	})
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// otherCommandSetting reports whether name is a flag of the other command
// that reads config files (analyze for watch, watch for analyze).
func otherCommandSetting(command, name string) bool {
	var fs *pflag.FlagSet
	switch command {
	case "watch":
		fs = pflag.NewFlagSet("analyze", pflag.ContinueOnError)
		(&analyzeOptions{}).AddFlags(fs)
	case "analyze":
		fs = pflag.NewFlagSet("watch", pflag.ContinueOnError)
		(&watchOptions{}).AddFlags(fs)
	default:
		return false
	}
	return fs.Lookup(name) != nil
}

func checkConfigCommand() command {
	return command{
		name:    "check-config",
		summary: "validate a config file for watch (or --for analyze): every problem with its line; exit 2 if there is one",
		usage:   "check-config [--for watch|analyze] FILE",
		flags: func() (*pflag.FlagSet, func(context.Context, *env, []string) error) {
			fs := pflag.NewFlagSet("check-config", pflag.ContinueOnError)
			forCmd := fs.String("for", "watch", "the command the file is for: watch or analyze (the same file may serve both)")
			return fs, func(_ context.Context, e *env, args []string) error {
				if len(args) != 1 {
					return fmt.Errorf("%w: check-config takes one FILE", errUsage)
				}
				if *forCmd != "watch" && *forCmd != "analyze" {
					return fmt.Errorf("%w: --for %q: use watch or analyze", errUsage, *forCmd)
				}
				errs, err := checkConfig(args[0], *forCmd)
				if err != nil {
					return fmt.Errorf("%w: %w", errUsage, err)
				}
				for _, ce := range errs {
					fmt.Fprintf(e.stderr, "%s:%s\n", args[0], ce.Error())
				}
				if len(errs) > 0 {
					return fmt.Errorf("%w: %s: %d problem(s)", errUsage, args[0], len(errs))
				}
				fmt.Fprintf(e.stdout, "%s: ok for %s\n", args[0], *forCmd)
				return nil
			}
		},
	}
}

// checkConfig applies a config to the command's flags and runs the checks
// that the command runs at start (the same functions), attributing each
// problem to the line of the setting it names; problems come in line
// order.
func checkConfig(path, command string) ([]configError, error) {
	fs := pflag.NewFlagSet(command, pflag.ContinueOnError)
	var check func() []settingError
	switch command {
	case "analyze":
		o := &analyzeOptions{}
		o.AddFlags(fs)
		check = func() []settingError { return o.check() }
	default:
		o := &watchOptions{}
		o.AddFlags(fs)
		check = func() []settingError { return o.check(nil) }
	}
	errs, err := applyConfig(path, fs, command)
	if err != nil {
		return errs, err
	}
	lines := map[string]int{}
	data, _ := os.ReadFile(path)
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) == nil && len(doc.Content) > 0 {
		for i := 0; i+1 < len(doc.Content[0].Content); i += 2 {
			lines[doc.Content[0].Content[i].Value] = doc.Content[0].Content[i].Line
		}
	}
	for _, se := range check() {
		line, ok := lines[se.Setting]
		if !ok && (se.Setting == "state-dir" || se.Setting == "files") {
			continue // required, but may come from the command line (the systemd unit's)
		}
		if !ok {
			line = 0 // a default value: no line to name
		}
		errs = append(errs, configError{Line: line, Msg: se.Setting + ": " + se.Err.Error()})
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	return errs, nil
}
