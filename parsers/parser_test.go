package parsers_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/relaywatch/relaywatch/parsers"
)

type nopParser struct{}

func (nopParser) Parse(line string, dst []parsers.Event) ([]parsers.Event, parsers.Result) {
	return dst, parsers.Irrelevant
}

func format(name, marker string) parsers.Format {
	return parsers.Format{
		Name: name,
		New:  func(parsers.Options) parsers.Parser { return nopParser{} },
		Sniff: func(lines []string) int {
			n := 0
			for _, l := range lines {
				if strings.Contains(l, marker) {
					n++
				}
			}
			return n
		},
	}
}

func TestRegistry(t *testing.T) {
	r := parsers.NewRegistry(format("b-fmt", "bbb"), format("a-fmt", "aaa"))
	if got := strings.Join(r.Names(), ","); got != "a-fmt,b-fmt" {
		t.Errorf("names %s", got)
	}
	f, err := r.Sniff([]string{"x aaa", "bbb", "aaa"})
	if err != nil || f.Name != "a-fmt" {
		t.Errorf("sniffed %q, %v", f.Name, err)
	}
	_, err = r.Sniff([]string{"nothing"})
	if !errors.Is(err, parsers.ErrUnknownFormat) || !strings.Contains(err.Error(), "a-fmt, b-fmt") || !strings.Contains(err.Error(), "--format") {
		t.Errorf("sniff error %v", err)
	}
	_, err = r.Lookup("exim")
	if !errors.Is(err, parsers.ErrUnknownFormat) || !strings.Contains(err.Error(), "a-fmt, b-fmt") {
		t.Errorf("lookup error %v", err)
	}
}

func TestRegistryRejectsDuplicates(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for a duplicate format")
		}
	}()
	parsers.NewRegistry(format("x", "x"), format("x", "y"))
}

func TestLineCounts(t *testing.T) {
	var c parsers.LineCounts
	for _, r := range []parsers.Result{parsers.Parsed, parsers.Parsed, parsers.Irrelevant, parsers.Malformed, parsers.Unrecognized, parsers.TooLong} {
		c.Add(r)
	}
	if c.Total() != 6 || c.Skipped() != 3 {
		t.Errorf("total %d skipped %d", c.Total(), c.Skipped())
	}
	for _, r := range parsers.Results() {
		if r.String() == "unknown" {
			t.Errorf("result %d has no name", r)
		}
	}
}
