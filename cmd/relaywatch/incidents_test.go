package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/relaywatch/relaywatch/detect"
)

// TestIncidentSampleTwoIncidentsCountsAgree: the Postfix incident sample
// (two abusers) gives exactly two critical incidents, and the text report
// shows the counts the JSON has.
func TestIncidentSampleTwoIncidentsCountsAgree(t *testing.T) {
	path := "../../samples/postfix/incident.log"
	code, out, errOut := runCmd(t, "", append(append([]string{"analyze", "-o", "json"}, sampleArgs...), path)...)
	if code != exitFindings {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Incidents []detect.Incident `json:"incidents"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	var clients []string
	for _, in := range rep.Incidents {
		if in.Severity == detect.SeverityCritical {
			clients = append(clients, in.Client)
		}
	}
	if strings.Join(clients, ",") != "127.0.0.66,127.0.0.77" && strings.Join(clients, ",") != "127.0.0.77,127.0.0.66" {
		t.Fatalf("critical incidents %v, want one per abuser (127.0.0.66, 127.0.0.77)", clients)
	}
	_, text, _ := runCmd(t, "", append(append([]string{"analyze"}, sampleArgs...), path)...)
	for _, in := range rep.Incidents {
		if in.Messages == 0 || in.Recipients == 0 || in.Attempts.Total() < in.Recipients {
			t.Errorf("%s: counts %+v do not add up", in.Client, in)
		}
		want := fmt.Sprintf("messages %d, distinct recipients %d, delivery attempts %d: sent %d, deferred %d, bounced %d",
			in.Messages, in.Recipients, in.Attempts.Total(), in.Attempts.Sent, in.Attempts.Deferred, in.Attempts.Bounced)
		if !strings.Contains(text, want) {
			t.Errorf("text report lacks %q for %s", want, in.Client)
		}
	}
}
