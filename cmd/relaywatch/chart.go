package main

import (
	"time"

	"github.com/relaywatch/relaywatch/detect"
)

// outboundSlot is one bar of an outbound chart.
type outboundSlot struct {
	t time.Time
	n uint64
}

// maxChartSlots bounds the bars of an outbound chart.
const maxChartSlots = 400

// outboundSlots groups outbound deliveries per hour into the bars of the
// text and HTML reports' charts: per hour, or per day beyond two days, with
// the empty buckets between busy ones, so that gaps are visible.
func outboundSlots(hourly []detect.HourCount) ([]outboundSlot, time.Duration) {
	if len(hourly) == 0 {
		return nil, time.Hour
	}
	bucket := time.Hour
	if hourly[len(hourly)-1].Hour.Sub(hourly[0].Hour) > 48*time.Hour {
		bucket = 24 * time.Hour
	}
	var slots []outboundSlot
	for _, h := range hourly {
		t := h.Hour.Truncate(bucket)
		if len(slots) > 0 && slots[len(slots)-1].t.Equal(t) {
			slots[len(slots)-1].n += h.Count
			continue
		}
		for len(slots) > 0 && slots[len(slots)-1].t.Add(bucket).Before(t) && len(slots) < maxChartSlots {
			slots = append(slots, outboundSlot{t: slots[len(slots)-1].t.Add(bucket)})
		}
		slots = append(slots, outboundSlot{t: t, n: h.Count})
	}
	return slots, bucket
}
