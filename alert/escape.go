package alert

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// EscapeControl makes text taken from a log safe for a terminal: C0 and C1
// control characters, DEL, the bidirectional overrides (which reorder what
// a terminal shows) and bytes that are not UTF-8 are shown as escapes (\e,
// \x07, \u202e) instead of acting. keep lists control characters left as
// they are ("\n\t" for a multi-line report, "" for a single value).
func EscapeControl(s, keep string) string {
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if hostileRune(r, n) && !(n == 1 && strings.IndexByte(keep, s[i]) >= 0) {
			break
		}
		i += n
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case !hostileRune(r, n) || n == 1 && strings.IndexByte(keep, s[i]) >= 0:
			b.WriteString(s[i : i+n])
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == 0x1b:
			b.WriteString(`\e`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += n
	}
	return b.String()
}

// hostileRune tells whether a rune (of encoded length n) must not reach a
// terminal as it is.
func hostileRune(r rune, n int) bool {
	switch {
	case r == utf8.RuneError && n == 1:
		return true
	case r < 0x20, r >= 0x7f && r < 0xa0:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	}
	return false
}

// codeSpan puts log text in a Slack inline code span that it cannot close:
// control characters escaped, '&', '<' and '>' as entities, and every
// backtick replaced by a look-alike (U+02CB).
func codeSpan(s string) string {
	return "`" + noBackticks(Escape(EscapeControl(s, ""))) + "`"
}

// noBackticks replaces every backtick with U+02CB (ˋ), so that text cannot
// open or close a code span or block.
func noBackticks(s string) string {
	if !strings.Contains(s, "`") {
		return s
	}
	return strings.ReplaceAll(s, "`", "ˋ")
}

// forSlackTemplate makes log text safe in an annotation that other tools
// show (Alertmanager's Slack template puts annotations into mrkdwn): control
// characters escaped, '&', '<' and '>' as entities, no backticks. multiLine
// keeps newlines.
func forSlackTemplate(s string, multiLine bool) string {
	keep := ""
	if multiLine {
		keep = "\n"
	}
	return noBackticks(Escape(EscapeControl(s, keep)))
}
