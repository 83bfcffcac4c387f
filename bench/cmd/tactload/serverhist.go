package main

import (
	"fmt"
	"math"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// engineMetric is tactd's histogram of the time a decision takes in the
// engine (feature read, scoring, policy, history and reservation), from
// its /metrics page. Read before and after a measurement, it gives the
// server's own share of a call's latency apart from the transport and the
// generator, which share these two cores.
const engineMetric = "tact_decide_duration_seconds"

// histogram is a cumulative count of observations by upper bound (+Inf
// included), summed over every label set.
type histogram map[float64]uint64

// scrapeHistogram reads one histogram from a Prometheus text page.
func scrapeHistogram(httpAddr, name string) (histogram, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET /metrics: %w", err)
	}
	h := histogram{}
	if f, ok := families[name]; ok {
		for _, m := range f.GetMetric() {
			hm := m.GetHistogram()
			for _, b := range hm.GetBucket() {
				if !math.IsInf(b.GetUpperBound(), 1) { // the parser lists +Inf too
					h[b.GetUpperBound()] += b.GetCumulativeCount()
				}
			}
			h[math.Inf(1)] += hm.GetSampleCount()
		}
	}
	return h, nil
}

// quantile returns the q-quantile, in ms, of the observations made between
// before and h, interpolated linearly within its bucket; ok is false when
// there were none. A quantile in the +Inf bucket is reported as the
// largest finite bound.
func (h histogram) quantile(before histogram, q float64) (ms float64, ok bool) {
	bounds := make([]float64, 0, len(h))
	for b := range h {
		bounds = append(bounds, b)
	}
	slices.Sort(bounds)
	if len(bounds) == 0 {
		return 0, false
	}
	total := float64(h[bounds[len(bounds)-1]] - before[bounds[len(bounds)-1]])
	if total <= 0 {
		return 0, false
	}
	want := q * total
	lower, below := 0.0, 0.0
	for _, b := range bounds {
		cum := float64(h[b] - before[b])
		if cum >= want {
			if math.IsInf(b, 1) {
				return lower * 1000, true
			}
			frac := 1.0
			if cum > below {
				frac = (want - below) / (cum - below)
			}
			return (lower + frac*(b-lower)) * 1000, true
		}
		lower, below = b, cum
	}
	return lower * 1000, true
}

// engineHistogram reads tactd's engine histogram; nil for the echo
// servers, or when /metrics cannot be read (the figures are then left
// out, with a warning).
func (c *child) engineHistogram() histogram {
	if !c.metrics {
		return nil
	}
	h, err := scrapeHistogram(c.httpAddr, engineMetric)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tactload: tactd's engine histogram:", err)
		return nil
	}
	return h
}

// engineQuantiles sets the engine's p50 and p99 over a measurement.
func (r *Result) engineQuantiles(before, after histogram) {
	if before == nil || after == nil {
		return
	}
	r.EngineP50, _ = after.quantile(before, 0.50)
	r.EngineP99, _ = after.quantile(before, 0.99)
}
