package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaywatch/relaywatch/detect"
	"github.com/relaywatch/relaywatch/parsers/exchange"
)

// gatewayLog writes a Postfix log of a gateway that accepts mail for
// customer.example from strangers on the Internet and hands it to the
// customer's own server: nothing is delivered into a mailbox here.
func gatewayLog(t *testing.T, withRelayTableReject bool) string {
	var b strings.Builder
	if withRelayTableReject {
		b.WriteString("Nov 24 09:59:00 gw postfix/smtpd[10]: NOQUEUE: reject: RCPT from unknown[203.0.113.8]: 550 5.1.1 <nobody@customer.example>: Recipient address rejected: User unknown in relay recipient table; from=<x@sender.test> to=<nobody@customer.example> proto=ESMTP helo=<x>\n")
	}
	for i := 0; i < 20; i++ {
		qid := fmt.Sprintf("6A7B8C%04X", i)
		ts := fmt.Sprintf("Nov 24 10:%02d:%02d", i/60, i%60)
		fmt.Fprintf(&b, "%s gw postfix/smtpd[10]: %s: client=mail%d.sender.test[198.51.100.%d]\n", ts, qid, i, i+1)
		fmt.Fprintf(&b, "%s gw postfix/qmgr[12]: %s: from=<news%d@sender.test>, size=1000, nrcpt=1 (queue active)\n", ts, qid, i)
		fmt.Fprintf(&b, "%s gw postfix/smtp[14]: %s: to=<user%d@customer.example>, relay=mx.customer.example[10.0.0.5]:25, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 ok)\n", ts, qid, i%5)
		fmt.Fprintf(&b, "%s gw postfix/qmgr[12]: %s: removed\n", ts, qid)
	}
	path := filepath.Join(t.TempDir(), "mail.log")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func analyzeJSON(t *testing.T, args ...string) (int, jsonReport, string) {
	t.Helper()
	code, out, errOut := runCmd(t, "", append([]string{"analyze", "--output", "json", "--year", "2026", "--timezone", "UTC", "--progress", "never"}, args...)...)
	var rep jsonReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s %s", err, out, errOut)
	}
	return code, rep, errOut
}

func worst(rep jsonReport) detect.Severity {
	s := detect.SeverityInfo
	for _, f := range rep.Findings {
		if f.Severity > s {
			s = f.Severity
		}
	}
	return s
}

func TestGatewayWithoutAndWithItsConfiguration(t *testing.T) {
	log := gatewayLog(t, false)

	// Without the configuration: relaying, and a note naming the domain.
	code, rep, _ := analyzeJSON(t, log)
	if code != exitFindings || rep.UndeclaredDomains == nil || strings.Join(rep.UndeclaredDomains.Domains, ",") != "customer.example" {
		t.Fatalf("exit %d, undeclared %+v: want findings and a note naming customer.example", code, rep.UndeclaredDomains)
	}
	if !strings.Contains(rep.UndeclaredDomains.Note, "--local-domains customer.example") {
		t.Errorf("note %q does not name the flag", rep.UndeclaredDomains.Note)
	}
	_, text, _ := runCmd(t, "", "analyze", "--year", "2026", "--progress", "never", log)
	if !strings.Contains(text, "NOTE: 100% of the 20 deliveries relayed for strangers went to customer.example") {
		t.Errorf("text report lacks the note:\n%s", text)
	}

	// With Postfix's configuration: nothing above info.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.cf"), []byte("myhostname = gw.example.net\nrelay_domains = customer.example\nmynetworks = 127.0.0.0/8\n"), 0o644)
	code, rep, errOut := analyzeJSON(t, "--postfix-config", dir, log)
	if code != exitOK || worst(rep) > detect.SeverityInfo || rep.UndeclaredDomains != nil {
		t.Errorf("with --postfix-config: exit %d, worst %s, note %+v; want 0, info, none", code, worst(rep), rep.UndeclaredDomains)
	}
	if len(rep.MTAConfig) != 1 || !strings.Contains(errOut, "relay domains customer.example") {
		t.Errorf("the configuration used is not reported: %+v, stderr %q", rep.MTAConfig, errOut)
	}

	// With Exim's and Exchange's: the same.
	exim := filepath.Join(dir, "exim4.conf")
	os.WriteFile(exim, []byte("domainlist local_domains = gw.example.net\ndomainlist relay_to_domains = customer.example\nhostlist relay_from_hosts = localhost\n"), 0o644)
	if code, rep, _ := analyzeJSON(t, "--exim-config", exim, log); code != exitOK || worst(rep) > detect.SeverityInfo {
		t.Errorf("with --exim-config: exit %d, worst %s", code, worst(rep))
	}
	exch := filepath.Join(dir, "exchange-trust.json")
	os.WriteFile(exch, []byte(`{"AcceptedDomains": [{"DomainName": "customer.example", "DomainType": "InternalRelay"}], "RelayRanges": []}`), 0o644)
	if code, rep, _ := analyzeJSON(t, "--exchange-config", exch, log); code != exitOK || worst(rep) > detect.SeverityInfo {
		t.Errorf("with --exchange-config: exit %d, worst %s", code, worst(rep))
	}

	// A bad configuration is a usage error that says what is wrong.
	if code, _, errOut := runCmd(t, "", "analyze", "--postfix-config", filepath.Join(dir, "nope"), log); code != exitUsage || !strings.Contains(errOut, "--postfix-config") {
		t.Errorf("bad --postfix-config: exit %d, %q", code, errOut)
	}
}

// TestRelayRecipientTableLearnsTheDomain: Postfix refusing an unknown user
// "in relay recipient table" proves the domain is one it relays for.
func TestRelayRecipientTableLearnsTheDomain(t *testing.T) {
	code, rep, _ := analyzeJSON(t, gatewayLog(t, true))
	if code != exitOK || worst(rep) > detect.SeverityInfo {
		t.Errorf("exit %d, worst %s; want 0, info", code, worst(rep))
	}
	found := false
	for _, d := range rep.Learned {
		found = found || d == "customer.example"
	}
	if !found {
		t.Errorf("learned %v, want customer.example", rep.Learned)
	}
}

// TestWatchRereadsTheMTAConfigurationOnSIGHUP: watch says what it took from
// the MTA's configuration at start, and SIGHUP reads it again.
func TestWatchRereadsTheMTAConfigurationOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "postfix")
	os.Mkdir(conf, 0o755)
	mainCF := filepath.Join(conf, "main.cf")
	os.WriteFile(mainCF, []byte("mydestination = first.example\nmynetworks = 127.0.0.1/32\n"), 0o644)
	cfg := filepath.Join(dir, "relaywatch.yml")
	os.WriteFile(cfg, []byte("postfix-config: "+conf+"\n"), 0o644)
	log := filepath.Join(dir, "mail.log")
	os.WriteFile(log, nil, 0o644)
	stderr := newSyncBuffer()
	e := &env{stdout: io.Discard, stderr: stderr, getenv: func(string) string { return "" }}
	args := []string{"--config", cfg, "--state-dir", filepath.Join(dir, "state"), "--listen", "", log}
	e.args = args
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, e, append([]string{"watch"}, args...)) }()
	defer func() {
		cancel()
		<-done
	}()
	waitUntil(t, 10*time.Second, "the trust model at start", func() bool { return strings.Contains(stderr.String(), "first.example") })
	os.WriteFile(mainCF, []byte("mydestination = first.example, second.example\nmynetworks = 127.0.0.1/32\n"), 0o644)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitUntil(t, 10*time.Second, "the trust model after SIGHUP", func() bool {
		return strings.Contains(stderr.String(), "second.example") && strings.Contains(stderr.String(), "reloaded")
	})
}

// TestREADMEHasTheExchangeExport keeps the README's PowerShell one-liner the
// one the Exchange reader documents.
func TestREADMEHasTheExchangeExport(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), exchange.TrustExport) {
		t.Error("README.md does not hold exchange.TrustExport verbatim")
	}
}
