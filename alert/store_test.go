package alert

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaywatch/relaywatch/detect"
)

func TestStorePendingAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.journal")
	sinks := []string{"slack-webhook", "alertmanager"}
	st, err := OpenStore(path, sinks)
	if err != nil {
		t.Fatal(err)
	}
	a := Transition{Kind: Fired, Alert: Alert{Finding: finding(detect.RuleForeignToForeign, "A", 1, t0)}}
	b := Transition{Kind: Fired, Alert: Alert{Finding: finding(detect.RuleForeignToForeign, "B", 1, t0)}}
	c := Transition{Kind: Fired, Alert: Alert{Finding: finding(detect.RuleForeignToForeign, "C", 1, t0)}}
	for _, tr := range []Transition{a, b, c} {
		st.Record(tr)
	}
	// Alertmanager took everything; Slack only A, then was down.
	st.Delivered("alertmanager", []Transition{a, b, c})
	st.Delivered("slack-webhook", []Transition{a})
	// A grew, C resolved (Alertmanager took that too).
	a.Kind, a.Alert.Count = Updated, 8
	st.Record(a)
	st.Delivered("alertmanager", []Transition{a})
	c.Kind = Resolved
	st.Record(c)
	st.Delivered("alertmanager", []Transition{c})
	if err := st.Save(); err != nil {
		t.Fatal(err)
	}
	st.Close()

	st, err = OpenStore(path, sinks)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var open []string
	for _, al := range st.Open() {
		open = append(open, fmt.Sprintf("%s %d", al.Key, al.Count))
	}
	if got := strings.Join(open, ", "); got != "A 8, B 1" {
		t.Errorf("open after restart: %s", got)
	}
	if got := kinds(st.Pending("slack-webhook")); got != "updated A 8; fired B 1" {
		t.Errorf("Slack missed: %s", got)
	}
	if got := kinds(st.Pending("alertmanager")); got != "" {
		t.Errorf("Alertmanager missed: %s", got)
	}
	// C was resolved and every sink that knew it was told: forgotten.
	if st.Len() != 2 {
		t.Errorf("store holds %d alerts, want 2", st.Len())
	}
}

func TestStoreSaveWritesOnlyWhatChanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.journal")
	st, err := OpenStore(path, []string{"slack-webhook"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := 0; i < 10000; i++ {
		st.Record(Transition{Kind: Fired, Alert: Alert{Finding: finding(detect.RuleForeignToForeign, fmt.Sprintf("198.18.%d.%d", i/250, i%250), 1, t0)}})
	}
	if err := st.Save(); err != nil {
		t.Fatal(err)
	}
	size := func() int64 { fi, _ := os.Stat(path); return fi.Size() }
	full := size()
	// Saves with nothing changed write nothing; one changed alert, one line.
	for i := 0; i < 3; i++ {
		st.Save()
	}
	if size() != full {
		t.Errorf("unchanged alerts rewritten: %d -> %d bytes", full, size())
	}
	st.Record(Transition{Kind: Updated, Alert: Alert{Finding: finding(detect.RuleForeignToForeign, "198.18.0.1", 2, t0.Add(time.Minute))}})
	st.Save()
	if grown := size() - full; grown <= 0 || grown > 2000 {
		t.Errorf("one changed alert appended %d bytes", grown)
	}
	t.Logf("10,000 open alerts: %d bytes written once; a save with one change appends %d bytes", full, size()-full)
}

func TestStoreSurvivesATornLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.journal")
	st, _ := OpenStore(path, nil)
	st.Record(Transition{Kind: Fired, Alert: Alert{Finding: finding(detect.RuleForeignToForeign, "A", 1, t0)}})
	st.Save()
	st.Close()
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"id":"foreign-to-foreign B","entry":{"alert":{"ru`)
	f.Close()
	st, err := OpenStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if len(st.Open()) != 1 {
		t.Errorf("open %v", st.Open())
	}
}

func TestStoreCompactsWhenItHasGrown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.journal")
	st, err := OpenStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// One open alert (with 2 KB of evidence) updated 1,500 times: the
	// journal is compacted instead of growing for ever.
	long := strings.Repeat("x", 2000)
	for i := 1; i <= 1500; i++ {
		f := finding(detect.RuleForeignToForeign, "A", i, t0)
		f.Evidence = []string{long}
		st.Record(Transition{Kind: Updated, Alert: Alert{Finding: f}})
		if err := st.Save(); err != nil {
			t.Fatal(err)
		}
	}
	fi, _ := os.Stat(path)
	if fi.Size() > 2<<20 {
		t.Errorf("journal of one alert is %d bytes", fi.Size())
	}
	st2, err := OpenStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if open := st2.Open(); len(open) != 1 || open[0].Count != 1500 {
		t.Errorf("after compactions: %+v", open)
	}
}
