package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// hostileSender and hostileHost are what an attacker can make a mail
// server log: a sender that is a script, an attribute break-out with an
// event handler, and Slack markup as the host name.
const (
	hostileSender = `<script>window.pwned=1</script>@"><img/src=x/onerror=window.pwned=2>.example`
	hostileHost   = `<!channel>`
)

// hostileLog writes a Postfix log in which an anonymous client relays 60
// messages from hostileSender, logged by hostileHost.
func hostileLog(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < 60; i++ {
		id := fmt.Sprintf("%010X", 0xA0000+i)
		ts := fmt.Sprintf("Nov 24 10:%02d:%02d %s", 10+i/30, (i*2)%60, hostileHost)
		fmt.Fprintf(&b, "%s postfix/smtpd[100]: %s: client=unknown[192.0.2.66]\n", ts, id)
		fmt.Fprintf(&b, "%s postfix/qmgr[101]: %s: from=<%s>, size=1000, nrcpt=1 (queue active)\n", ts, id, hostileSender)
		fmt.Fprintf(&b, "%s postfix/smtp[102]: %s: to=<victim%d@gmail.test>, relay=gmail.test[192.0.2.1]:25, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 ok)\n", ts, id, i)
		fmt.Fprintf(&b, "%s postfix/qmgr[101]: %s: removed\n", ts, id)
	}
	p := filepath.Join(t.TempDir(), "hostile.log")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeHostileReport analyzes hostileLog with --html and returns the HTML
// file's path and its findings as JSON.
func writeHostileReport(t *testing.T, dir string) (string, string) {
	t.Helper()
	html := filepath.Join(dir, "report.html")
	code, out, errOut := runCmd(t, "", append(append([]string{"analyze", "--output", "json", "--local-domains", "example.org", "--spike-min", "10", "--html", html}, sampleArgs...), hostileLog(t))...)
	if code != exitFindings {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	return html, out
}

var tagRE = regexp.MustCompile(`(?i)<\s*(script|img|iframe|object|embed|link|base|form|meta\s+http-equiv="refresh")\b`)

func TestHTMLReportEscapesLogStrings(t *testing.T) {
	path, report := writeHostileReport(t, t.TempDir())
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	if !strings.Contains(report, `<script>window.pwned=1</script>@\"><img/src=x/onerror=window.pwned=2>`) || !strings.Contains(report, hostileHost) {
		t.Fatalf("the findings do not carry the hostile strings, so this test tests nothing:\n%.600s", report)
	}
	for _, m := range tagRE.FindAllString(html, -1) {
		t.Errorf("the report contains a live %q", m)
	}
	for _, want := range []string{
		"&lt;script&gt;window.pwned=1&lt;/script&gt;",
		"&#34;&gt;&lt;img/src=x/onerror=window.pwned=2&gt;",
		"&lt;!channel&gt;",
		`id="outbound-chart"`, `class="incident"`, `id="client-timeline"`, `id="finding-1"`,
		"foreign-to-foreign", "Next step:",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	if strings.Contains(html, "<!channel>") {
		t.Error("Slack markup left unescaped")
	}
	// Self-contained: nothing is loaded from anywhere.
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*"(https?:|//|data:|file:)`).FindString(html); m != "" {
		t.Errorf("the report loads %s", m)
	}
	if !strings.Contains(html, `content="default-src &#39;none&#39;; style-src &#39;sha256-`) {
		t.Error("no strict Content-Security-Policy")
	}
}

func TestHTMLReportWithoutEvents(t *testing.T) {
	dir := t.TempDir()
	empty, html := filepath.Join(dir, "empty.log"), filepath.Join(dir, "r.html")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCmd(t, "", append(append([]string{"analyze", "--html", html}, sampleArgs...), empty)...); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	b, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"No findings.", "No outbound deliveries.", "no events"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("lacks %q", want)
		}
	}
	if code, _, errOut := runCmd(t, "", append(append([]string{"analyze", "--html", filepath.Join(dir, "no", "such", "dir.html")}, sampleArgs...), empty)...); code != exitUsage || !strings.Contains(errOut, "--html") {
		t.Errorf("unwritable --html: exit %d, %s", code, errOut)
	}
}
