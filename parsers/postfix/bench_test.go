package postfix

import (
	"bytes"
	"testing"
	"time"

	"github.com/relaywatch/relaywatch/parsers"
	"github.com/relaywatch/relaywatch/parsers/parsertest"
	"github.com/relaywatch/relaywatch/samples/loggen"
)

// BenchmarkParse measures parsing alone, on one core, over a generated log
// with realistic message flows. Report: lines/s.
func BenchmarkParse(b *testing.B) {
	var buf bytes.Buffer
	if err := loggen.Write(&buf, loggen.DefaultConfig(200000)); err != nil {
		b.Fatal(err)
	}
	parsertest.BenchmarkLines(b, New(parsers.Options{Year: 2026, Location: time.UTC}), buf.String())
}
