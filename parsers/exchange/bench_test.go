package exchange

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaywatch/relaywatch/parsers"
)

// benchLines returns the data lines of a sample, repeated to n lines.
func benchLines(b *testing.B, name string, n int) (header []string, lines []string) {
	data, err := os.ReadFile(filepath.Join("..", "..", "samples", "exchange", name))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimRight(string(data), "\r\n"), "\n") {
		l = strings.TrimSuffix(l, "\r")
		if strings.HasPrefix(stripBOM(l), "#") {
			header = append(header, l)
			continue
		}
		lines = append(lines, l)
	}
	return header, lines
}

func benchParse(b *testing.B, p parsers.Parser, header, lines []string) {
	for _, h := range header {
		p.Parse(h, nil)
	}
	dst := make([]parsers.Event, 0, 8)
	size := 0
	for _, l := range lines {
		size += len(l) + 2
	}
	b.SetBytes(int64(size / len(lines)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst, _ = p.Parse(lines[i%len(lines)], dst[:0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkMessageTracking parses the message tracking sample (30 columns,
// quoted fields, multi-valued recipients) on one core.
func BenchmarkMessageTracking(b *testing.B) {
	h, l := benchLines(b, "MSGTRK2026112407-incident.LOG", 0)
	benchParse(b, NewMessageTracking(parsers.Options{}), h, l)
}

// BenchmarkSMTPReceive parses the protocol log sample, sessions included.
func BenchmarkSMTPReceive(b *testing.B) {
	h, l := benchLines(b, "RECV2026112407-incident.LOG", 0)
	benchParse(b, NewSMTPProtocol(parsers.Options{}), h, l)
}
