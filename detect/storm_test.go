package detect

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/postfix"
)

// stormHour sends n messages over the hour at start: from sender ("" for
// a bounce) to a foreign recipient each, delivered with status, among 60
// ordinary messages (a log line a minute keeps event time moving).
func stormHour(d *Detector, seq *int, start time.Time, n int, sender string, status parsers.Status) {
	total := n + 60
	for j := 0; j < total; j++ {
		at := start.Add(time.Duration(j) * time.Hour / time.Duration(total))
		sender, status := sender, status
		if (j+1)*n/total == j*n/total {
			sender, status = "news@example.org", parsers.StatusSent
		}
		*seq++
		qid := fmt.Sprintf("%010X", *seq)
		events := []parsers.Event{
			{Time: at, Host: "mx1", Program: "postfix/pickup", Kind: parsers.KindPickup, QueueID: qid, UID: "0"},
			{Time: at, Host: "mx1", Program: "postfix/qmgr", Kind: parsers.KindQueued, QueueID: qid, From: sender, FromSet: true},
			{Time: at, Host: "mx1", Program: "postfix/smtp", Kind: parsers.KindDelivery, QueueID: qid, To: fmt.Sprintf("r%d@far%d.test", *seq, *seq%50), Status: status, Reply: "host said: 550 5.1.1 no such user", Line: "delivery " + qid},
		}
		for i := range events {
			d.Handle(&events[i])
		}
	}
}

func TestQueueStorm(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(d *Detector, seq *int)
		want string
		sum  string
	}{{
		name: "steady failures and bounces: quiet",
		run: func(d *Detector, seq *int) {
			for h := 0; h < 48; h++ {
				stormHour(d, seq, t0.Add(time.Duration(h)*time.Hour), 30, "app@example.org", parsers.StatusSent)
				stormHour(d, seq, t0.Add(time.Duration(h)*time.Hour), 5+h%4, "app@example.org", parsers.StatusBounced)
				stormHour(d, seq, t0.Add(time.Duration(h)*time.Hour), 4, "", parsers.StatusSent)
			}
		},
	}, {
		name: "bounces jump: warning on failed",
		run: func(d *Detector, seq *int) {
			for h := 0; h < 24; h++ {
				stormHour(d, seq, t0.Add(time.Duration(h)*time.Hour), 5, "app@example.org", parsers.StatusBounced)
			}
			stormHour(d, seq, t0.Add(24*time.Hour), 300, "app@example.org", parsers.StatusDeferred)
		},
		want: "queue-storm/failed/warning/300",
		sum:  "300 deferred, bounced or expired outbound deliveries in 1h0m0s",
	}, {
		name: "null-sender bounces to foreign recipients jump: backscatter",
		run: func(d *Detector, seq *int) {
			for h := 0; h < 24; h++ {
				stormHour(d, seq, t0.Add(time.Duration(h)*time.Hour), 3, "", parsers.StatusSent)
			}
			stormHour(d, seq, t0.Add(24*time.Hour), 80, "", parsers.StatusSent)
		},
		want: "queue-storm/backscatter/warning/80",
		sum:  "backscatter",
	}, {
		name: "a storm already under way when the batch starts is not judged",
		run: func(d *Detector, seq *int) {
			stormHour(d, seq, t0, 500, "app@example.org", parsers.StatusBounced)
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDetector(t, Config{Advice: func(string) *parsers.Advice { return &postfix.Advice }})
			seq := 0
			tc.run(d, &seq)
			fs := ruleFindings(d, RuleQueueStorm)
			if got := keys(fs); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if len(fs) > 0 && (!strings.Contains(fs[0].Summary, tc.sum) || !strings.Contains(fs[0].NextStep, "qshape")) {
				t.Errorf("summary %q / next step %q", fs[0].Summary, fs[0].NextStep)
			}
			for _, f := range d.Findings() {
				if f.Severity > SeverityWarning {
					t.Errorf("above warning: %s/%s", f.Rule, f.Key)
				}
			}
		})
	}
}
