package exim

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/samples/loggen"
)

// BenchmarkParse measures parsing alone, on one core, over a generated Exim
// main log with realistic message flows. Report: lines/s.
func BenchmarkParse(b *testing.B) {
	var buf bytes.Buffer
	if err := loggen.WriteExim(&buf, loggen.DefaultConfig(200000)); err != nil {
		b.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	p := New(parsers.Options{Year: 2026, Location: time.UTC})
	dst := make([]parsers.Event, 0, 4)
	b.SetBytes(int64(buf.Len() / len(lines)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst, _ = p.Parse(lines[i%len(lines)], dst[:0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
