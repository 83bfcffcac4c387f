// The results of a run: one Result per target and mode, the report and
// its table.

package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// Result is one measurement.
type Result struct {
	Target      string         `json:"target"`
	Mode        string         `json:"mode"` // closed or open
	Concurrency int            `json:"concurrency,omitempty"`
	Round       int            `json:"round,omitempty"` // closed loops: which round
	Rate        float64        `json:"rate,omitempty"`
	Calls       int            `json:"calls"`
	QPS         float64        `json:"qps"`
	P50         float64        `json:"p50_ms"`
	P90         float64        `json:"p90_ms"`
	P99         float64        `json:"p99_ms"`
	P999        float64        `json:"p999_ms"`
	Errors      map[string]int `json:"errors"`
	CPUPer1000  float64        `json:"server_cpu_s_per_1000"`
	PeakRSSMiB  float64        `json:"server_peak_rss_mib"`
	Actions     map[string]int `json:"actions,omitempty"`
	// RSSAnonMiB and RSSFileMiB split the resident set at the end of the
	// measurement: the heap and stacks, and mapped file pages (bbolt's
	// map of its file, which the kernel reclaims under pressure).
	RSSAnonMiB float64 `json:"server_rss_anon_mib"`
	RSSFileMiB float64 `json:"server_rss_file_mib"`
	// SendLagP99 (open loop): how late the generator itself sent, p99. A
	// large lag means the figures are the generator's, not the server's.
	SendLagP99 float64 `json:"send_lag_p99_ms,omitempty"`
	// Overload: the calls refused as overloaded, their p99, the answered
	// calls' p99 and the answered calls per second.
	Shed        int     `json:"shed,omitempty"`
	ShedP99     float64 `json:"shed_p99_ms,omitempty"`
	AnsweredP99 float64 `json:"answered_p99_ms,omitempty"`
	Goodput     float64 `json:"goodput,omitempty"`
	// EngineP50 and EngineP99 (tactd only): the decisions' time in the
	// engine, from tactd's own histogram (tact_decide_duration_seconds)
	// over the same measurement, without the transport and the
	// generator.
	EngineP50 float64 `json:"server_engine_p50_ms,omitempty"`
	EngineP99 float64 `json:"server_engine_p99_ms,omitempty"`
}

// Report is the whole run.
type Report struct {
	Machine struct {
		CPUs   int    `json:"cpus"`
		Model  string `json:"cpu_model"`
		Go     string `json:"go"`
		Kernel string `json:"kernel"`
	} `json:"machine"`
	Options map[string]string `json:"options"`
	Results []Result          `json:"results"`
	// Ratios are the medians of RoundRatios, each round's ratio in turn.
	Ratios      map[string]float64   `json:"ratios"`
	RoundRatios map[string][]float64 `json:"round_ratios"`
}

// median returns the middle value of xs (the mean of the two middle ones
// when there is an even number).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func printReport(out io.Writer, rep *Report) {
	fmt.Fprintf(out, "machine: %d CPUs, %s, %s, Linux %s\n\n", rep.Machine.CPUs, rep.Machine.Model, rep.Machine.Go, rep.Machine.Kernel)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tmode\tcalls\tQPS\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\terrors\tCPU s/1000\tpeak RSS MiB\tanon+file MiB\t")
	for _, r := range rep.Results {
		mode := fmt.Sprintf("closed x%d", r.Concurrency)
		if r.Round > 0 {
			mode += fmt.Sprintf(" #%d", r.Round)
		}
		switch {
		case r.Mode == "open":
			mode = fmt.Sprintf("open %.0f/s", r.Rate)
		case r.Mode != "closed":
			mode = fmt.Sprintf("%s %.0f/s", r.Mode, r.Rate)
		}
		errs := 0
		for _, n := range r.Errors {
			errs += n
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.3f\t%.3f\t%.3f\t%.3f\t%d\t%.3f\t%.0f\t%.0f+%.0f\t\n",
			r.Target, mode, r.Calls, r.QPS, r.P50, r.P90, r.P99, r.P999, errs, r.CPUPer1000, r.PeakRSSMiB, r.RSSAnonMiB, r.RSSFileMiB)
	}
	tw.Flush()
	for _, r := range rep.Results {
		if len(r.Errors) > 0 {
			fmt.Fprintf(out, "%s %s errors: %v\n", r.Target, r.Mode, r.Errors)
		}
		if r.Mode != "closed" {
			fmt.Fprintf(out, "%s %s: the generator sent late by %.3f ms at p99\n", r.Target, r.Mode, r.SendLagP99)
		}
		if r.EngineP99 > 0 {
			where := "in tactd's engine (its own histogram)"
			switch r.Target {
			case "journal-echo":
				where = "in its Decide (the journal's commit, its own histogram)"
			case "redis-store-echo":
				where = "in its Decide (its Redis calls, its own histogram)"
			}
			fmt.Fprintf(out, "%s %s: %s p50 %.3f ms, p99 %.3f ms\n", r.Target, r.Mode, where, r.EngineP50, r.EngineP99)
		}
		if r.Shed > 0 {
			fmt.Fprintf(out, "%s %s: %d shed (p99 %.3f ms), answered p99 %.3f ms, %.0f answered/s\n", r.Target, r.Mode, r.Shed, r.ShedP99, r.AnsweredP99, r.Goodput)
		}
		if len(r.Actions) > 0 && r.Mode == "closed" {
			fmt.Fprintf(out, "%s answers: %v\n", r.Target, r.Actions)
		}
	}
	if len(rep.Ratios) > 0 {
		fmt.Fprintln(out)
		keys := make([]string, 0, len(rep.Ratios))
		for k := range rep.Ratios {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			var each []string
			for _, r := range rep.RoundRatios[k] {
				each = append(each, fmt.Sprintf("%.2f", r))
			}
			fmt.Fprintf(out, "%-18s %.2f   (rounds: %s)\n", k, rep.Ratios[k], strings.Join(each, " "))
		}
	}
}
