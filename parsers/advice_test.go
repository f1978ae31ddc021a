package parsers

import (
	"strings"
	"testing"
)

func TestAdviceForKeepsHostileValuesOut(t *testing.T) {
	a := &Advice{}
	text := "block CLIENT; exiqgrep -i -f SENDER | xargs exim -Mrm"
	tests := []struct{ client, sender, want string }{
		{"192.0.2.1", "spam@bulk.example", "block 192.0.2.1; exiqgrep -i -f spam@bulk.example | xargs exim -Mrm"},
		{"2001:db8::1", "", "block 2001:db8::1; exiqgrep -i -f SENDER | xargs exim -Mrm"},
		{"192.0.2.1", "a;rm -rf ~@evil.example", "block 192.0.2.1; exiqgrep -i -f SENDER | xargs exim -Mrm"},
		{"192.0.2.1", "$(reboot)@evil.example", "block 192.0.2.1; exiqgrep -i -f SENDER | xargs exim -Mrm"},
		{"192.0.2.1", "-Mrm@evil.example", "block 192.0.2.1; exiqgrep -i -f SENDER | xargs exim -Mrm"},
	}
	for _, tt := range tests {
		if got := a.For(text, tt.client, tt.sender); got != tt.want {
			t.Errorf("For(%q, %q):\n got  %s\n want %s", tt.client, tt.sender, got, tt.want)
		}
	}
}

func TestAdviceForByProgram(t *testing.T) {
	pf := &Advice{MTA: "Postfix"}
	r := NewRegistry(Format{Name: "x", New: func(Options) Parser { return nil }, Sniff: func([]string) int { return 0 },
		OwnsProgram: func(p string) bool { return strings.HasPrefix(p, "postfix") }, Advice: pf})
	if r.AdviceFor("postfix/smtp") != pf || r.AdviceFor("exim") != nil {
		t.Error("advice not found by program")
	}
}
