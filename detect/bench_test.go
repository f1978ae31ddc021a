package detect

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/postfix"
	"github.com/relaywatch/relaywatch/samples/loggen"
)

// BenchmarkDetector measures correlation, classification and the rules over
// the events of a generated 200,000-line Postfix log (parsed once, before
// the timer starts). Report: events/s.
func BenchmarkDetector(b *testing.B) {
	var buf bytes.Buffer
	if err := loggen.Write(&buf, loggen.DefaultConfig(200000)); err != nil {
		b.Fatal(err)
	}
	p := postfix.New(parsers.Options{Year: 2026, Location: time.UTC})
	var evs []parsers.Event
	for _, l := range strings.Split(buf.String(), "\n") {
		evs, _ = p.Parse(l, evs)
	}
	policy := func() *Policy {
		pol, err := NewPolicy(strings.Split(loggen.LocalDomains, ","), DefaultTrustedNetworks, nil)
		if err != nil {
			b.Fatal(err)
		}
		return pol
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := New(Config{Policy: policy()})
		if err != nil {
			b.Fatal(err)
		}
		t := NewTotalsCounter()
		for j := range evs {
			d.Handle(&evs[j])
			t.Handle(&evs[j])
		}
		if len(d.Findings()) == 0 {
			b.Fatal("no findings from the generated incident")
		}
	}
	b.ReportMetric(float64(len(evs))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
