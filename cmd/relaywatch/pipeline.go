package main

import (
	"github.com/relaywatch/relaywatch/detect"
	"github.com/relaywatch/relaywatch/parsers"
)

// pipeline is what analyze and watch share after the per-stream stage
// (stream.Stage): events go to detection in input order (episodes, and so
// alerts, move on the event time they carry). analyze adds its totals and
// report as observers; watch has none.
type pipeline struct {
	det     *detect.Detector
	observe func(*parsers.Event) // may be nil
}

// handle hands a batch of events of one input to detection.
func (p *pipeline) handle(evs []parsers.Event) {
	for i := range evs {
		ev := &evs[i]
		if p.observe != nil {
			p.observe(ev)
		}
		p.det.Handle(ev)
	}
}
