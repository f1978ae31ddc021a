package stream

import (
	"context"
	"strings"
	"testing"

	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/exim"
	"github.com/relaywatch/relaywatch/parsers/postfix"
)

const (
	postfixLine = "Nov 25 10:00:00 mx1 postfix/qmgr[1]: 4ABC123: removed"
	eximLine    = "2026-11-25 10:00:00 1rKxyz-000abc-AB Completed"
	// strayLine is another program's line in a Postfix log that looks like
	// Exim's own format (its timestamp, then "rejected ").
	strayLine = "2026-11-25 03:00:01 rejected 3 addresses from the nightly list"
)

func TestSniffHead(t *testing.T) {
	reg := parsers.NewRegistry(postfix.Format(), exim.Format())
	tests := []struct {
		name    string
		input   string
		max     int
		want    string // "" when no line looks like a format
		matches map[string]int
	}{
		{"postfix", postfixLine + "\n" + postfixLine + "\n", 10, "postfix", map[string]int{"postfix": 2}},
		{"a stray line first", strayLine + "\n" + postfixLine + "\n" + postfixLine + "\n", 10, "exim", map[string]int{"exim": 1, "postfix": 2}},
		{"no line of a format", "dovecot: imap-login: Login\ncron: done\n", 10, "", map[string]int{}},
		{"only the first lines", postfixLine + "\n" + strings.Repeat(eximLine+"\n", 5), 3, "postfix", map[string]int{"postfix": 1, "exim": 2}},
		{"no line end at the end", eximLine, 10, "exim", map[string]int{"exim": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := SniffHead(context.Background(), strings.NewReader(tc.input), reg, tc.max)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if h.Known {
				got = h.Format.Name
			}
			if got != tc.want {
				t.Errorf("format %q, want %q", got, tc.want)
			}
			if len(h.Matches) != len(tc.matches) {
				t.Errorf("matches %v, want %v", h.Matches, tc.matches)
			}
			for k, v := range tc.matches {
				if h.Matches[k] != v {
					t.Errorf("matches %v, want %v", h.Matches, tc.matches)
				}
			}
		})
	}
}

func TestSetFormats(t *testing.T) {
	pf, ex := postfix.Format(), exim.Format()
	head := func(f parsers.Format, matches map[string]int) Head {
		return Head{Format: f, Known: true, Matches: matches}
	}
	pfHead := head(pf, map[string]int{"postfix": 900})
	stray := head(ex, map[string]int{"exim": 1, "postfix": 700}) // a stray line came first
	oldExim := head(ex, map[string]int{"exim": 800})             // the MTA changed
	tests := []struct {
		name  string
		heads []Head
		want  []string // the forced format per member, "" for none
	}{
		{"all agree", []Head{pfHead, pfHead, pfHead}, []string{"", "", ""}},
		{"a stray first line is outvoted", []Head{stray, pfHead, pfHead}, []string{"postfix", "", ""}},
		{"a member of another MTA keeps its own", []Head{oldExim, pfHead, pfHead}, []string{"", "", ""}},
		{"one other is not enough", []Head{stray, pfHead}, []string{"", ""}},
		{"others that disagree decide nothing", []Head{stray, pfHead, oldExim, pfHead}, []string{"", "", "", ""}},
		{"an unknown member neither decides nor is forced", []Head{{}, stray, pfHead, pfHead}, []string{"", "postfix", "", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := SetFormats(tc.heads)
			for i, f := range got {
				name := ""
				if f != nil {
					name = f.Name
				}
				if name != tc.want[i] {
					t.Errorf("member %d: forced %q, want %q", i, name, tc.want[i])
				}
			}
		})
	}
}
