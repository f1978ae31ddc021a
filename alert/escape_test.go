package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscapeControl(t *testing.T) {
	for _, tt := range []struct{ in, keep, want string }{
		{"plain text, ünïcode ✓", "", "plain text, ünïcode ✓"},
		{"\x1b[2J\x1b[H\x1b]0;owned\a\x1b[32mALL CLEAR", "", `\e[2J\e[H\e]0;owned\x07\e[32mALL CLEAR`},
		{"a\nb\tc\rd", "", `a\nb\tc\rd`},
		{"a\nb\tc\rd", "\n\t", "a\nb\tc\\rd"},
		{"csi \u009b31m del \x7f", "", `csi \u009b31m del \x7f`},
		{"\u202egnp.exe", "", `\u202egnp.exe`},
		{"bad \xff\xfe utf8", "", `bad \xff\xfe utf8`},
	} {
		if got := EscapeControl(tt.in, tt.keep); got != tt.want {
			t.Errorf("EscapeControl(%q, %q) = %q, want %q", tt.in, tt.keep, got, tt.want)
		}
	}
}

func TestCodeSpanCannotBeClosed(t *testing.T) {
	got := codeSpan("a`b```c````d <!here>")
	if strings.Count(got, "`") != 2 || !strings.HasPrefix(got, "`") || !strings.HasSuffix(got, "`") || strings.Contains(got, "<!") {
		t.Errorf("codeSpan: %q", got)
	}
}

func TestAlertmanagerAnnotationsAreSafeForSlackTemplates(t *testing.T) {
	am := NewAlertmanager("http://127.0.0.1:9", "mx1", 0, nil, &fakeClock{now: t0})
	a := hostileAlert()
	am.rules[a.Alert.Rule] = &amRule{open: map[string]Alert{a.Alert.Key: a.Alert}, startsAt: t0}
	out := am.render(a.Alert.Rule, t0)
	for name, v := range out.Annotations {
		for _, raw := range []string{"<!", "<@", "<http", "`"} {
			if strings.Contains(v, raw) {
				t.Errorf("annotation %s contains %q: %q", name, raw, v)
			}
		}
		checkNoControl(t, v)
	}
	if !strings.Contains(out.Annotations["evidence"], "&lt;!channel&gt;") {
		t.Errorf("evidence annotation: %q", out.Annotations["evidence"])
	}
}

func TestAlertsLogHasNoTerminalControls(t *testing.T) {
	var buf bytes.Buffer
	l := NewJSONLog(&buf)
	tr := hostileAlert()
	l.Enqueue(tr)
	l.Send(context.Background(), []Transition{tr})
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		checkNoControl(t, line)
		var back Transition
		if err := json.Unmarshal([]byte(line), &back); err != nil {
			t.Fatal(err)
		}
		if back.Alert.Key != tr.Alert.Key || back.Alert.Evidence[1] != tr.Alert.Evidence[1] {
			t.Errorf("the log does not read back as written: %q", back.Alert.Key)
		}
	}
}

// FuzzEscapeControl: whatever a log holds, the escaped text holds no
// character a terminal acts on, and plain text passes unchanged.
func FuzzEscapeControl(f *testing.F) {
	f.Add(hostile)
	f.Add("plain")
	f.Add("\xff\xfe\u009b\x1b]0;x\a")
	f.Fuzz(func(t *testing.T, s string) {
		got := EscapeControl(s, "")
		checkNoControl(t, got)
		if strings.ContainsRune(got, '\n') {
			t.Errorf("newline kept: %q", got)
		}
		clean := true
		for i, r := range s {
			if hostileRune(r, len(string(r))) || r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD") {
				clean = false
			}
		}
		if clean && got != s {
			t.Errorf("clean text changed: %q -> %q", s, got)
		}
	})
}
