package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// artifactsDir is where CI keeps what tests leave for people to look at:
// $RELAYWATCH_ARTIFACTS, else .ci/artifacts (ignored by git).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("RELAYWATCH_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", ".ci", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser starts headless Chromium (Debian's chromium package, or
// $RELAYWATCH_CHROMIUM) with a fresh profile and no network chatter. Without
// Chromium the test is skipped, except under CI=true where CI installs it.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv("RELAYWATCH_CHROMIUM")
	if path == "" {
		path, _ = exec.LookPath("chromium")
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (CI installs Debian's chromium package)")
		}
		t.Skip("chromium is not installed: apt-get install --no-install-recommends chromium, or set RELAYWATCH_CHROMIUM")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.Env("TMPDIR="+t.TempDir()), // its scratch files go with the test, not to /tmp
		chromedp.WindowSize(1100, 900))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// pageFacts is what the browser sees in a loaded report.
type pageFacts struct {
	Findings   int    `json:"findings"`
	Bars       int    `json:"bars"`
	Incidents  int    `json:"incidents"`
	Clients    int    `json:"clients"`
	Scripts    int    `json:"scripts"`
	Images     int    `json:"images"`
	Pwned      bool   `json:"pwned"`
	CSPBlocks  bool   `json:"cspBlocks"`
	VerdictBG  string `json:"verdictBG"`
	Title      string `json:"title"`
	EvidenceOK bool   `json:"evidenceOK"`
}

const pageFactsJS = `(() => {
  const injected = document.createElement('script');
  injected.textContent = 'window.cspBroken = true';
  document.body.appendChild(injected);
  const f = {
    findings: document.querySelectorAll('article.finding').length,
    bars: document.querySelectorAll('#outbound-chart rect.bar').length,
    incidents: document.querySelectorAll('#outbound-chart g.incident').length,
    clients: document.querySelectorAll('#client-timeline rect.seg').length,
    scripts: document.scripts.length - 1,
    images: document.images.length + document.querySelectorAll('iframe,object,embed').length,
    pwned: window.pwned !== undefined,
    cspBlocks: window.cspBroken === undefined,
    verdictBG: getComputedStyle(document.getElementById('verdict')).backgroundColor,
    title: document.title,
    evidenceOK: [...document.querySelectorAll('pre')].some(p => p.textContent.includes('from=<<script>window.pwned=1</script>@"><img/src=x/onerror=window.pwned=2>')),
  };
  injected.remove();
  return f;
})()`

// TestHTMLReportInBrowser loads the report of a log written by an attacker
// in headless Chromium: the incidents, the chart and the client timeline
// are there, the hostile strings show as text, no script ran, the page's
// CSP blocks inline scripts while its own style applies. Screenshots of it
// and of the lab incident's report go to the artifacts directory.
func TestHTMLReportInBrowser(t *testing.T) {
	ctx := browser(t)
	dir := t.TempDir()
	hostile, _ := writeHostileReport(t, dir)
	incident := filepath.Join(dir, "incident.html")
	if code, _, errOut := runCmd(t, "", append(append([]string{"analyze", "--html", incident}, sampleArgs...), filepath.Join("..", "..", "samples", "postfix", "incident.log"))...); code != exitFindings {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	out := artifactsDir(t)
	for _, tc := range []struct {
		name, path string
		hostile    bool
	}{{"html-report-incident", incident, false}, {"html-report-hostile", hostile, true}} {
		abs, err := filepath.Abs(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx, chromedp.Navigate("file://"+abs)); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		f, err := chromedp.Run(ctx, chromedp.Evaluate[pageFacts](pageFactsJS))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		t.Logf("%s: %+v", tc.name, f)
		if f.Findings == 0 || f.Bars == 0 || f.Incidents == 0 || f.Clients == 0 {
			t.Errorf("%s: findings %d, chart bars %d, incidents marked %d, client bars %d; want all > 0", tc.name, f.Findings, f.Bars, f.Incidents, f.Clients)
		}
		if f.Scripts != 0 || f.Images != 0 || f.Pwned {
			t.Errorf("%s: %d script(s), %d image(s) or frame(s), pwned %v: log content became markup", tc.name, f.Scripts, f.Images, f.Pwned)
		}
		if !f.CSPBlocks {
			t.Errorf("%s: an inline script ran: the Content-Security-Policy is not in force", tc.name)
		}
		if f.VerdictBG != "rgb(255, 235, 233)" {
			t.Errorf("%s: verdict background %q: the inline style sheet was blocked or changed", tc.name, f.VerdictBG)
		}
		if tc.hostile && !f.EvidenceOK {
			t.Errorf("%s: the hostile evidence line is not shown as text", tc.name)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("%s: screenshot: %v", tc.name, err)
		}
		shot := filepath.Join(out, tc.name+".png")
		if err := os.WriteFile(shot, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", shot, len(png))
	}
}
