package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaywatch/relaywatch/detect"
)

// alertmanagerBinary finds Alertmanager (Debian package
// prometheus-alertmanager, which CI installs).
func alertmanagerBinary(t *testing.T) string {
	if p := os.Getenv("RELAYWATCH_ALERTMANAGER"); p != "" {
		return p
	}
	for _, name := range []string{"prometheus-alertmanager", "alertmanager"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Alertmanager is not installed under CI=true (apt-get install prometheus-alertmanager)")
	}
	t.Skip("Alertmanager not installed")
	return ""
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startAlertmanager runs a real Alertmanager on loopback for the test and
// stops it at the end.
func startAlertmanager(t *testing.T) string {
	bin := alertmanagerBinary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	os.WriteFile(cfg, []byte("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n"), 0o644)
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.path="+dir, fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--cluster.listen-address=")
	out, _ := os.Create(filepath.Join(dir, "alertmanager.log"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Alertmanager: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "alertmanager.log"))
			t.Logf("alertmanager log:\n%s", log)
		}
	})
	waitFor(t, 20*time.Second, "Alertmanager ready", func() bool {
		resp, err := http.Get(url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return url
}

// waitFor polls cond (a server's state, not the passing of time) until it
// holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type gettableAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

func activeAlerts(t *testing.T, url string) []gettableAlert {
	resp, err := http.Get(url + "/api/v2/alerts?active=true&silenced=false&inhibited=false")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var as []gettableAlert
	json.NewDecoder(resp.Body).Decode(&as)
	var out []gettableAlert
	for _, a := range as {
		if a.EndsAt.After(time.Now()) {
			out = append(out, a)
		}
	}
	return out
}

// TestRealAlertmanager fires and resolves an alert through a real
// Alertmanager and checks both through its API.
func TestRealAlertmanager(t *testing.T) {
	url := startAlertmanager(t)
	sink := NewAlertmanager(url, "mx1.example.org", time.Minute, nil, nil)
	d := NewDispatcher(sink, DispatchConfig{MinInterval: -1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)
	m := NewManager(d.Enqueue)

	f := detect.Finding{Rule: detect.RuleForeignToForeign, Key: "203.0.113.66", Severity: detect.SeverityCritical, Host: "mx1.example.org",
		Summary: "mx1.example.org is relaying mail for strangers", Count: 80, Recipients: 314, FirstSeen: t0, LastSeen: t0, Episode: 1,
		Evidence: []string{"Nov 24 10:00:00 mx1 postfix/smtpd[1]: ABC: client=unknown[203.0.113.66]"}, NextStep: "close the relay"}
	m.Observe(f)
	var got []gettableAlert
	waitFor(t, 20*time.Second, "the alert in Alertmanager", func() bool {
		got = activeAlerts(t, url)
		return len(got) == 1
	})
	a := got[0]
	if a.Labels["alertname"] != "RelaywatchFinding" || a.Labels["rule"] != detect.RuleForeignToForeign || a.Labels["severity"] != "critical" || a.Labels["instance"] != "mx1.example.org" {
		t.Errorf("labels %v", a.Labels)
	}
	if _, ok := a.Labels["key"]; ok {
		t.Error("a label carries a value from the logs")
	}
	if a.Annotations["evidence"] == "" || a.Annotations["summary"] == "" {
		t.Errorf("annotations %v", a.Annotations)
	}

	// The episode ends (event time passed the quiet period): the alert resolves.
	f.EndedAt = t0.Add(30 * time.Minute)
	m.Observe(f)
	waitFor(t, 20*time.Second, "the alert to resolve", func() bool { return len(activeAlerts(t, url)) == 0 })
	// The dispatcher counts a send once Alertmanager's answer is back,
	// which may be just after Alertmanager shows the change.
	waitFor(t, 10*time.Second, "both sends counted", func() bool { return d.Stats().Sent == 2 })
	if st := d.Stats(); st.Failed != 0 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestRealAlertmanagerKeepsFiringAcrossARestart fires an alert, stops
// relaywatch's sink (a restart: its memory is gone), and starts a new one
// from the saved store: the alert must still be firing in Alertmanager
// after the endsAt the first process gave it.
func TestRealAlertmanagerKeepsFiringAcrossARestart(t *testing.T) {
	url := startAlertmanager(t)
	storePath := filepath.Join(t.TempDir(), "alerts.journal")
	refresh := time.Second // endsAt is four refreshes ahead

	// The first process.
	st, err := OpenStore(storePath, []string{"alertmanager"})
	if err != nil {
		t.Fatal(err)
	}
	sink := NewAlertmanager(url, "mx1.example.org", refresh, nil, nil)
	d := NewDispatcher(sink, DispatchConfig{MinInterval: -1, OnDelivered: st.Delivered})
	ctx, cancel := context.WithCancel(context.Background())
	go d.Run(ctx)
	go sink.Refresh(ctx)
	m := NewManager(func(tr Transition) { st.Record(tr); d.Enqueue(tr) })
	m.Observe(detect.Finding{Rule: detect.RuleForeignToForeign, Key: "203.0.113.66", Severity: detect.SeverityCritical, Host: "mx1.example.org",
		Summary: "mx1.example.org is relaying mail for strangers", Count: 80, FirstSeen: t0, LastSeen: t0, NextStep: "close the relay"})
	var first []gettableAlert
	waitFor(t, 20*time.Second, "the alert in Alertmanager", func() bool {
		first = activeAlerts(t, url)
		return len(first) == 1
	})
	waitFor(t, 10*time.Second, "the delivery to be noted", func() bool { return d.Stats().Sent == 1 })
	if err := st.Save(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	cancel() // the process stops: no more refreshes from it
	stoppedAt := time.Now()

	// The second process, from the store.
	st2, err := OpenStore(storePath, []string{"alertmanager"})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	sink2 := NewAlertmanager(url, "mx1.example.org", refresh, nil, nil)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	sink2.Restore(st2.Open())
	go sink2.Refresh(ctx2)

	// Past the endsAt the first process set (4 refreshes), it still fires.
	waitFor(t, 20*time.Second, "the first process's endsAt to pass", func() bool {
		return time.Since(stoppedAt) > 6*refresh
	})
	got := activeAlerts(t, url)
	if len(got) != 1 || got[0].Labels["rule"] != detect.RuleForeignToForeign {
		t.Fatalf("after the restart Alertmanager has %d active alerts, want the one still firing", len(got))
	}
	if !got[0].EndsAt.After(time.Now()) {
		t.Errorf("endsAt %v is not ahead", got[0].EndsAt)
	}
}
