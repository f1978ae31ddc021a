package all

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSniffTellsFormatsApart sniffs the first lines of every sample and of
// the in-repository corpus files, and of a mixed-up file.
func TestSniffTellsFormatsApart(t *testing.T) {
	reg := Formats()
	cases := map[string]string{}
	for _, format := range []string{"postfix", "exim"} {
		paths, _ := filepath.Glob(filepath.Join("..", "..", "samples", format, "*.log"))
		more, _ := filepath.Glob(filepath.Join("..", format, "testdata", "corpus", "*.log"))
		for _, p := range append(paths, more...) {
			if strings.Contains(p, ".messages.") || strings.Contains(p, "paniclog") {
				continue // message-only lines, or Exim's panic log: no header to sniff
			}
			cases[p] = format
		}
	}
	if len(cases) < 8 {
		t.Fatalf("only %d files to sniff", len(cases))
	}
	for path, want := range cases {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		if len(lines) > 50 {
			lines = lines[:50]
		}
		f, err := reg.Sniff(lines)
		if err != nil || f.Name != want {
			t.Errorf("%s: sniffed %q (%v), want %s", path, f.Name, err, want)
		}
	}
	if _, err := reg.Sniff([]string{"hello", "world"}); err == nil {
		t.Error("text that is no log was sniffed as a format")
	}
}

// TestAdviceNamesTheMTA checks that each format's events get the advice of
// their own MTA, naming its own tools.
func TestAdviceNamesTheMTA(t *testing.T) {
	reg := Formats()
	for program, want := range map[string]string{
		"postfix/smtp": "postsuper", "postfix-out/smtp": "postsuper", "amavis": "postsuper",
		"exim": "exim -Mrm", "exchange/msgtrk": "Remove-Message", "exchange/smtp-receive": "ms-Exch-SMTP-Accept-Any-Recipient",
	} {
		a := reg.AdviceFor(program)
		if a == nil {
			t.Errorf("%s: no advice", program)
			continue
		}
		if all := a.CloseRelay + a.FindOut + a.Spike; !strings.Contains(all, want) {
			t.Errorf("%s: advice of %s does not name %q", program, a.MTA, want)
		}
	}
	if reg.AdviceFor("dovecot") != nil {
		t.Error("advice for another program")
	}
}
