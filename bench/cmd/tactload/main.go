// Command tactload measures Tact against the machine's ceiling, in one run:
// it starts a bare grpc-go unary echo, a bare net/http JSON echo and tactd,
// each in a child process of its own, drives each with the same client
// (closed loop: N concurrent callers; open loop: a fixed arrival rate,
// latency counted from the intended send time), and prints Tact's figures
// beside the echoes' and as ratios of them.
//
//	go run ./bench/cmd/tactload [--duration 10s] [--warmup 2s] [--concurrency 16]
//	    [--open-fraction 0.5] [--open-duration 60s] [--population 1000]
//	    [--id-format C%05d] [--hot-share 1] [--hot 1000] [--zipf 1.1]
//	    [--tactd-args "--data-dir D --demo=false ..."] [--json out.json]
//
// The client mix: a --hot-share of the calls go to the first --hot client
// ids, Zipf-distributed (a few clients called often, as in a real centre:
// these stay in tactd's feature cache); the rest go to ids drawn uniformly
// from the whole --population (with a large imported population, mostly
// cache misses: a bbolt or Redis read). Channels and interaction contexts
// are mixed as in a contact centre's day.
//
// For each server it reports QPS, latency percentiles (p50, p90, p99,
// p99.9), errors by code, the server process's CPU seconds per 1,000 calls
// and its peak RSS (from /proc: Linux only).
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
	"github.com/tact-nba/tact/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil && !errors.Is(err, pflag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "tactload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) > 0 {
		// The children: tactload starts itself as each server.
		if prefix := os.Getenv(cpuProfileEnv); prefix != "" && strings.HasPrefix(args[0], "serve-") {
			stopProfile, err := startCPUProfile(fmt.Sprintf("%s-%s-%d.pprof", prefix, strings.TrimPrefix(args[0], "serve-"), os.Getpid()))
			if err != nil {
				return err
			}
			defer stopProfile()
		}
		switch args[0] {
		case "serve-grpc-echo":
			return serveGRPCEcho(ctx, args[1])
		case "serve-http-echo":
			return serveHTTPEcho(ctx, args[1])
		case "serve-tactd":
			return serveTactd(ctx, args[1:])
		}
	}
	var o options
	fs := pflag.NewFlagSet("tactload", pflag.ContinueOnError)
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "closed-loop measurement per server")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "calls before each measurement, not counted")
	fs.IntVar(&o.concurrency, "concurrency", 16, "closed-loop callers")
	fs.IntVar(&o.rounds, "rounds", 3, "closed-loop rounds: each target in turn, once a round; ratios are the median round's")
	fs.Float64Var(&o.rate, "rate", 0, "open-loop arrival rate for Tact (calls/s); 0: --open-fraction of Tact's closed-loop QPS")
	fs.Float64Var(&o.openFraction, "open-fraction", 0.5, "open-loop rate as a share of the measured maximum (with --rate 0); 0 skips the open loop")
	fs.DurationVar(&o.openDuration, "open-duration", 60*time.Second, "open-loop measurement")
	fs.IntVar(&o.population, "population", 1000, "client ids 1..population")
	fs.StringVar(&o.idFormat, "id-format", "C%05d", "client id format (fmt verb for the number)")
	fs.Float64Var(&o.hotShare, "hot-share", 1, "share of calls to the hot clients (the rest: uniform over the population)")
	fs.IntVar(&o.hot, "hot", 1000, "hot clients: ids 1..hot, Zipf-distributed")
	fs.Float64Var(&o.zipf, "zipf", 1.1, "Zipf exponent s (> 1) of the hot clients")
	fs.StringVar(&o.tactdArgs, "tactd-args", "", "extra tactd flags, e.g. \"--data-dir D --demo=false\"")
	fs.StringVar(&o.serverCPUs, "server-cpus", "", "run the servers on these CPUs only (taskset list, e.g. \"0\"), with GOMAXPROCS set to their number; run tactload itself with taskset on the others")
	fs.BoolVar(&o.serverStderr, "server-stderr", false, "pass the servers' standard error through (e.g. with GODEBUG=gctrace=1)")
	fs.StringVar(&o.cpuProfile, "server-cpuprofile", "", "write each server's CPU profile to PREFIX-<server>-<pid>.pprof (read with go tool pprof)")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.Float64Var(&o.overload, "overload", 0, "after the open loop, drive tact-grpc at this multiple of its closed-loop QPS for --open-duration, then at half for 10 s (recovery); 0 skips")
	fs.StringSliceVar(&o.only, "only", nil, "run only these targets: grpc-echo, tact-grpc, http-echo, tact-rest")
	fs.SetOutput(out)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.rounds < 1 {
		return errors.New("bad flags: --rounds must be at least 1")
	}
	if o.concurrency < 1 || o.population < 1 || o.hot < 1 || o.zipf <= 1 || o.hotShare < 0 || o.hotShare > 1 || o.duration <= 0 {
		return errors.New("bad flags: --concurrency, --population and --hot at least 1, --zipf above 1, --hot-share in 0..1, --duration positive")
	}
	o.hot = min(o.hot, o.population)
	return measure(ctx, &o, out)
}

type options struct {
	duration, warmup, openDuration time.Duration
	concurrency, population, hot   int
	rounds                         int
	rate, openFraction, zipf       float64
	overload                       float64
	hotShare                       float64
	idFormat, tactdArgs, jsonOut   string
	serverStderr                   bool
	serverCPUs                     string
	cpuProfile                     string
	only                           []string
}

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

func measure(ctx context.Context, o *options, out io.Writer) error {
	var rep Report
	rep.Machine.CPUs, rep.Machine.Model, rep.Machine.Go, rep.Machine.Kernel = machine()
	rep.Options = map[string]string{
		"duration": o.duration.String(), "warmup": o.warmup.String(), "concurrency": strconv.Itoa(o.concurrency),
		"population": strconv.Itoa(o.population), "hot": strconv.Itoa(o.hot), "hot_share": fmt.Sprint(o.hotShare),
		"zipf": fmt.Sprint(o.zipf), "tactd_args": o.tactdArgs, "rounds": strconv.Itoa(o.rounds),
	}
	want := func(t string) bool { return len(o.only) == 0 || slices.Contains(o.only, t) }
	type target struct {
		name, serve, pair string // pair: the target whose closed-loop QPS sets the open-loop rate
		http              bool
		srv               *child
		call              caller
		closeCall         func()
	}
	var targets []*target
	for _, t := range []*target{
		{name: "grpc-echo", serve: "serve-grpc-echo", pair: "tact-grpc"},
		{name: "tact-grpc", serve: "serve-tactd", pair: "tact-grpc"},
		{name: "http-echo", serve: "serve-http-echo", pair: "tact-rest", http: true},
		{name: "tact-rest", serve: "serve-tactd", pair: "tact-rest", http: true},
	} {
		if want(t.name) {
			targets = append(targets, t)
		}
	}
	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	defer func() {
		for _, t := range targets {
			if t.closeCall != nil {
				t.closeCall()
			}
			if t.srv != nil {
				t.srv.stop()
			}
		}
	}()
	// Every server runs for the whole run (idle ones cost nothing), so
	// that the open loops can run at a rate set by the closed loops.
	for _, t := range targets {
		fmt.Fprintf(os.Stderr, "tactload: %s: starting\n", t.name)
		srv, err := startChild(ctx, t.serve, o)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		t.srv = srv
		if t.call, t.closeCall, err = newCaller(srv, t.http); err != nil {
			return err
		}
		if t.serve == "serve-tactd" {
			// The contact centre's feed: the phone queue is calm. Without
			// it tactd would hold protected tiers back (no fresh report).
			if err := reportLoad(lctx, srv.grpcAddr); err != nil {
				return fmt.Errorf("%s: report load: %w", t.name, err)
			}
		}
	}
	// The closed loops run in rounds, each target once per round in
	// turn, so that a slow spell of the machine (a neighbour on the same
	// host) falls on both sides of a ratio rather than on one.
	rounds := map[string][]Result{}
	for round := 1; round <= o.rounds; round++ {
		for _, t := range targets {
			fmt.Fprintf(os.Stderr, "tactload: %s: closed loop, %d callers, %v (round %d of %d)\n", t.name, o.concurrency, o.duration, round, o.rounds)
			r := closedLoop(ctx, o, t.call, newMix(o), t.srv)
			r.Target, r.Round = t.name, round
			rep.Results = append(rep.Results, r)
			rounds[t.name] = append(rounds[t.name], r)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	// A target's closed-loop figure is its median round by QPS.
	byTarget := map[string]Result{}
	for name, rs := range rounds {
		sorted := slices.Clone(rs)
		slices.SortFunc(sorted, func(a, b Result) int { return cmp.Compare(a.QPS, b.QPS) })
		byTarget[name] = sorted[len(sorted)/2]
	}
	if o.rate > 0 || o.openFraction > 0 {
		for _, t := range targets {
			rate := o.rate
			if rate == 0 {
				pair, ok := byTarget[t.pair]
				if !ok {
					continue
				}
				rate = o.openFraction * pair.QPS
			}
			fmt.Fprintf(os.Stderr, "tactload: %s: open loop, %.0f calls/s, %v\n", t.name, rate, o.openDuration)
			r := openLoop(ctx, o, t.call, newMix(o), t.srv, rate)
			r.Target = t.name
			rep.Results = append(rep.Results, r)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	if t, ok := byTarget["tact-grpc"]; ok && o.overload > 0 {
		var tg *target
		for _, x := range targets {
			if x.name == "tact-grpc" {
				tg = x
			}
		}
		rate := o.overload * t.QPS
		fmt.Fprintf(os.Stderr, "tactload: tact-grpc: overload, %.0f calls/s (%.1fx), %v\n", rate, o.overload, o.openDuration)
		r := openLoop(ctx, o, tg.call, newMix(o), tg.srv, rate)
		r.Target, r.Mode = "tact-grpc", fmt.Sprintf("overload %.1fx", o.overload)
		rep.Results = append(rep.Results, r)
		rec := *o
		rec.openDuration = 10 * time.Second
		fmt.Fprintf(os.Stderr, "tactload: tact-grpc: recovery, %.0f calls/s, %v\n", t.QPS/2, rec.openDuration)
		r = openLoop(ctx, &rec, tg.call, newMix(o), tg.srv, t.QPS/2)
		r.Target, r.Mode = "tact-grpc", "recovery"
		rep.Results = append(rep.Results, r)
	}
	// A ratio is the median of the rounds' ratios (each round's pair
	// measured minutes apart at most).
	rep.Ratios = map[string]float64{}
	rep.RoundRatios = map[string][]float64{}
	ratio := func(key, a, b string, f func(Result) float64) {
		ra, rb := rounds[a], rounds[b]
		var rs []float64
		for i := range min(len(ra), len(rb)) {
			if f(rb[i]) > 0 {
				rs = append(rs, f(ra[i])/f(rb[i]))
			}
		}
		if len(rs) > 0 {
			rep.RoundRatios[key] = rs
			rep.Ratios[key] = median(rs)
		}
	}
	ratio("grpc_qps_vs_echo", "tact-grpc", "grpc-echo", func(r Result) float64 { return r.QPS })
	ratio("grpc_p99_vs_echo", "tact-grpc", "grpc-echo", func(r Result) float64 { return r.P99 })
	ratio("rest_qps_vs_echo", "tact-rest", "http-echo", func(r Result) float64 { return r.QPS })
	ratio("rest_p99_vs_echo", "tact-rest", "http-echo", func(r Result) float64 { return r.P99 })
	printReport(out, &rep)
	if o.jsonOut != "" {
		b, err := json.MarshalIndent(&rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
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
			fmt.Fprintf(out, "%s %s: in tactd's engine (its own histogram) p50 %.3f ms, p99 %.3f ms\n", r.Target, r.Mode, r.EngineP50, r.EngineP99)
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

// mix draws the calls: client ids, channels and contexts. Each caller
// has its own (a drawer), so that drawing does not contend.
type mix struct {
	o    *options
	seed atomic.Uint64
}

func newMix(o *options) *mix { return &mix{o: o} }

// drawer draws calls for one caller.
type drawer struct {
	o    *options
	rng  *rand.Rand
	zipf *rand.Zipf
}

func (m *mix) drawer() *drawer {
	rng := rand.New(rand.NewPCG(m.seed.Add(1), 2))
	return &drawer{o: m.o, rng: rng, zipf: rand.NewZipf(rng, m.o.zipf, 1, uint64(m.o.hot-1))}
}

// draw returns a call: a hot client (Zipf) or, past the hot share, one
// drawn uniformly from the population; phone calls carry the queue whose
// load tactload reports.
func (d *drawer) draw() *tactv1.DecideRequest {
	n := 1 + int(d.zipf.Uint64())
	if d.rng.Float64() >= d.o.hotShare {
		n = 1 + d.rng.IntN(d.o.population)
	}
	req := &tactv1.DecideRequest{ClientId: fmt.Sprintf(d.o.idFormat, n)}
	req.Channel = pick(d.rng, channels, func(c struct {
		ch tactv1.Channel
		w  float64
	}) float64 {
		return c.w
	}).ch
	if req.Channel == tactv1.Channel_CHANNEL_PHONE_INBOUND {
		req.Queue = loadQueue
	}
	req.Context = pick(d.rng, contexts, func(c struct {
		c *tactv1.InteractionContext
		w float64
	}) float64 {
		return c.w
	}).c
	return req
}

// loadQueue is the queue of the phone calls; tactload reports it calm.
const loadQueue = "retail"

var (
	channels = []struct {
		ch tactv1.Channel
		w  float64
	}{
		{tactv1.Channel_CHANNEL_PHONE_INBOUND, 0.5}, {tactv1.Channel_CHANNEL_WEB, 0.2}, {tactv1.Channel_CHANNEL_MOBILE_APP, 0.15},
		{tactv1.Channel_CHANNEL_BRANCH, 0.1}, {tactv1.Channel_CHANNEL_CHAT, 0.05},
	}
	contexts = []struct {
		c *tactv1.InteractionContext
		w float64
	}{
		{&tactv1.InteractionContext{Reason: tactv1.InteractionReason_INTERACTION_REASON_SALES_ENQUIRY, Stage: tactv1.InteractionStage_INTERACTION_STAGE_IN_PROGRESS}, 0.3},
		{&tactv1.InteractionContext{Reason: tactv1.InteractionReason_INTERACTION_REASON_SERVICE, Stage: tactv1.InteractionStage_INTERACTION_STAGE_RESOLVED}, 0.25},
		{&tactv1.InteractionContext{Reason: tactv1.InteractionReason_INTERACTION_REASON_SERVICE, Stage: tactv1.InteractionStage_INTERACTION_STAGE_IN_PROGRESS}, 0.15},
		{&tactv1.InteractionContext{Reason: tactv1.InteractionReason_INTERACTION_REASON_OTHER}, 0.25},
		{&tactv1.InteractionContext{Reason: tactv1.InteractionReason_INTERACTION_REASON_COMPLAINT}, 0.05},
	}
)

func pick[T any](rng *rand.Rand, items []T, weight func(T) float64) T {
	x := rng.Float64()
	for _, it := range items {
		if x -= weight(it); x < 0 {
			return it
		}
	}
	return items[len(items)-1]
}

// reportLoad reports the phone queue calm now and every 20 s until ctx
// ends (a report is stale after 2 minutes).
func reportLoad(ctx context.Context, grpcAddr string) error {
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	lc := tactv1.NewLoadServiceClient(conn)
	report := func() error {
		_, err := lc.ReportLoad(ctx, &tactv1.ReportLoadRequest{Queue: loadQueue, CallsWaiting: proto.Uint32(3), LongestWaitSeconds: proto.Float64(20), ServiceLevel: proto.Float64(0.92), AgentsAvailable: proto.Uint32(5)})
		return err
	}
	if err := report(); err != nil {
		conn.Close()
		return err
	}
	go func() {
		defer conn.Close()
		t := time.NewTicker(20 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = report() // the next tick tries again; a stale report only protects more
			}
		}
	}()
	return nil
}

// caller makes one call and returns the error code ("" when it
// succeeded) and the action answered.
type caller func(ctx context.Context, req *tactv1.DecideRequest) (code, action string)

func newCaller(srv *child, useHTTP bool) (caller, func(), error) {
	if useHTTP {
		tr := &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 0, IdleConnTimeout: time.Minute}
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		url := "http://" + srv.httpAddr + "/v1/decisions"
		enc := protojson.MarshalOptions{UseProtoNames: true}
		return func(ctx context.Context, req *tactv1.DecideRequest) (string, string) {
			body, err := enc.Marshal(req)
			if err != nil {
				return "marshal", ""
			}
			hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				return "request", ""
			}
			hr.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(hr)
			if err != nil {
				return "transport", ""
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return "read", ""
			}
			if resp.StatusCode != http.StatusOK {
				return "http " + strconv.Itoa(resp.StatusCode), ""
			}
			var d struct {
				Action  string `json:"action"`
				Reasons []struct {
					Code string `json:"code"`
				} `json:"reasons"`
			}
			if err := json.Unmarshal(b, &d); err != nil {
				return "decode", ""
			}
			if d.Action == "ACTION_NO_OFFER" && len(d.Reasons) > 0 {
				return "", d.Action + "/" + strings.TrimPrefix(d.Reasons[0].Code, "REASON_CODE_")
			}
			return "", d.Action
		}, tr.CloseIdleConnections, nil
	}
	conn, err := grpc.NewClient(srv.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, err
	}
	dc := tactv1.NewDecisionServiceClient(conn)
	return func(ctx context.Context, req *tactv1.DecideRequest) (string, string) {
		resp, err := dc.Decide(ctx, req)
		if err != nil {
			return status.Code(err).String(), ""
		}
		if resp.GetAction() == tactv1.Action_ACTION_NO_OFFER && len(resp.GetReasons()) > 0 {
			// The reason shows which path a no-offer took (a cap, a
			// budget run out, ...).
			return "", resp.GetAction().String() + "/" + strings.TrimPrefix(resp.GetReasons()[0].GetCode().String(), "REASON_CODE_")
		}
		return "", resp.GetAction().String()
	}, func() { conn.Close() }, nil
}

// recorder collects latencies and outcomes.
type recorder struct {
	mu      sync.Mutex
	lat     []time.Duration
	okLat   []time.Duration // answered
	shedLat []time.Duration // refused for overload (RESOURCE_EXHAUSTED / 429)
	lags    []time.Duration // open loop: from the intended send time to the send
	errors  map[string]int
	actions map[string]int
}

func newRecorder() *recorder {
	return &recorder{errors: map[string]int{}, actions: map[string]int{}}
}

func (r *recorder) add(d time.Duration, code, action string) {
	r.mu.Lock()
	r.lat = append(r.lat, d)
	switch code {
	case "":
		r.okLat = append(r.okLat, d)
	case "ResourceExhausted", "http 429":
		r.shedLat = append(r.shedLat, d)
	}
	if code != "" {
		r.errors[code]++
	} else if action != "" {
		r.actions[strings.TrimPrefix(action, "ACTION_")]++
	}
	r.mu.Unlock()
}

func (r *recorder) addLag(d time.Duration) {
	r.mu.Lock()
	r.lags = append(r.lags, d)
	r.mu.Unlock()
}

func (r *recorder) result(elapsed time.Duration, cpu float64, rss float64) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	slices.Sort(r.lat)
	q := func(p float64) float64 {
		if len(r.lat) == 0 {
			return 0
		}
		i := min(int(math.Ceil(p*float64(len(r.lat))))-1, len(r.lat)-1)
		return float64(r.lat[max(i, 0)]) / 1e6
	}
	res := Result{
		Calls: len(r.lat), QPS: float64(len(r.lat)) / elapsed.Seconds(),
		P50: q(0.50), P90: q(0.90), P99: q(0.99), P999: q(0.999),
		Errors: r.errors, PeakRSSMiB: rss,
	}
	if len(r.actions) > 0 {
		res.Actions = r.actions
	}
	if len(r.shedLat) > 0 {
		res.Shed = len(r.shedLat)
		res.ShedP99 = p99(r.shedLat)
		res.AnsweredP99 = p99(r.okLat)
		res.Goodput = float64(len(r.okLat)) / elapsed.Seconds()
	}
	if len(r.lags) > 0 {
		slices.Sort(r.lags)
		res.SendLagP99 = float64(r.lags[min(int(0.99*float64(len(r.lags))), len(r.lags)-1)]) / 1e6
	}
	if res.Calls > 0 {
		res.CPUPer1000 = cpu / float64(res.Calls) * 1000
	}
	return res
}

// p99 of unsorted durations, in ms.
func p99(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[min(int(math.Ceil(0.99*float64(len(s))))-1, len(s)-1)]) / 1e6
}

func closedLoop(ctx context.Context, o *options, call caller, m *mix, srv *child) Result {
	run := func(d time.Duration, rec *recorder) time.Duration {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		var wg sync.WaitGroup
		start := time.Now()
		for range o.concurrency {
			d := m.drawer()
			wg.Go(func() {
				for ctx.Err() == nil {
					t := time.Now()
					code, action := call(context.WithoutCancel(ctx), d.draw())
					if rec != nil && ctx.Err() == nil {
						rec.add(time.Since(t), code, action)
					}
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	run(o.warmup, nil)
	rec := newRecorder()
	hist0 := srv.engineHistogram()
	cpu0 := srv.cpuSeconds()
	elapsed := run(o.duration, rec)
	res := rec.result(elapsed, srv.cpuSeconds()-cpu0, srv.peakRSSMiB())
	res.Mode, res.Concurrency = "closed", o.concurrency
	res.engineQuantiles(hist0, srv.engineHistogram())
	res.RSSAnonMiB, res.RSSFileMiB = srv.status("RssAnon"), srv.status("RssFile")
	return res
}

// openLoop sends calls at a fixed rate whatever the answers' speed; each
// call's latency counts from its intended send time, so queueing shows.
func openLoop(ctx context.Context, o *options, call caller, m *mix, srv *child, rate float64) Result {
	rec := newRecorder()
	ctx, cancel := context.WithTimeout(ctx, o.openDuration)
	defer cancel()
	interval := time.Duration(float64(time.Second) / rate)
	hist0 := srv.engineHistogram()
	cpu0 := srv.cpuSeconds()
	start := time.Now()
	var wg sync.WaitGroup
	inflight := make(chan struct{}, 100_000) // a bound, not a pacing device
	d := m.drawer()
	for i := 0; ; i++ {
		intended := start.Add(time.Duration(i) * interval)
		if d := time.Until(intended); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case inflight <- struct{}{}:
		default:
			rec.add(time.Since(intended), "client overloaded", "")
			continue
		}
		req := d.draw()
		wg.Go(func() {
			defer func() { <-inflight }()
			lag := time.Since(intended)
			code, action := call(context.WithoutCancel(ctx), req)
			rec.add(time.Since(intended), code, action)
			rec.addLag(lag)
		})
	}
	wg.Wait()
	res := rec.result(time.Since(start), srv.cpuSeconds()-cpu0, srv.peakRSSMiB())
	res.Mode, res.Rate = "open", rate
	res.engineQuantiles(hist0, srv.engineHistogram())
	res.RSSAnonMiB, res.RSSFileMiB = srv.status("RssAnon"), srv.status("RssFile")
	return res
}

// child is a server process started by tactload.
type child struct {
	cmd                *exec.Cmd
	grpcAddr, httpAddr string
	stderr             *bytes.Buffer
	dir                string // tactd's data directory, removed at stop
	tactd              bool
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func startChild(ctx context.Context, serve string, o *options) (*child, error) {
	g, err := freeAddr()
	if err != nil {
		return nil, err
	}
	h, err := freeAddr()
	if err != nil {
		return nil, err
	}
	c := &child{grpcAddr: g, httpAddr: h, stderr: &bytes.Buffer{}, tactd: serve == "serve-tactd"}
	args := []string{serve}
	switch serve {
	case "serve-grpc-echo":
		args = append(args, g)
	case "serve-http-echo":
		args = append(args, h)
	default:
		dir, err := os.MkdirTemp("", "tactload-")
		if err != nil {
			return nil, err
		}
		c.dir = dir
		// A --data-dir in --tactd-args comes later and wins.
		args = append(args, "--grpc-addr", g, "--http-addr", h, "--data-dir", dir, "--demo=true", "--drain-delay=0s", "--log-level", "warn")
		args = append(args, strings.Fields(o.tactdArgs)...)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	c.cmd = exec.CommandContext(ctx, exe, args...)
	if o.serverCPUs != "" {
		n, err := countCPUs(o.serverCPUs)
		if err != nil {
			return nil, fmt.Errorf("--server-cpus: %w", err)
		}
		c.cmd = exec.CommandContext(ctx, "taskset", append([]string{"-c", o.serverCPUs, exe}, args...)...)
		c.cmd.Env = append(os.Environ(), fmt.Sprintf("GOMAXPROCS=%d", n))
	}
	if o.cpuProfile != "" {
		if c.cmd.Env == nil {
			c.cmd.Env = os.Environ()
		}
		c.cmd.Env = append(c.cmd.Env, cpuProfileEnv+"="+o.cpuProfile)
	}
	c.cmd.Stderr = c.stderr
	if o.serverStderr {
		c.cmd.Stderr = io.MultiWriter(c.stderr, os.Stderr)
	}
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(2 * time.Minute) // tactd may open a large store
	for {
		addr := g
		if serve == "serve-http-echo" {
			addr = h
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			if serve != "serve-tactd" || ready(h) {
				return c, nil
			}
		}
		if time.Now().After(deadline) || c.cmd.ProcessState != nil {
			c.stop()
			return nil, fmt.Errorf("server not ready: %s", c.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ready(httpAddr string) bool {
	resp, err := http.Get("http://" + httpAddr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
	if c.dir != "" {
		_ = os.RemoveAll(c.dir) // a temporary directory; nothing to report
	}
}

// cpuSeconds is the process's user + system CPU time so far.
func (c *child) cpuSeconds() float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces: fields start after its ")".
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // clock ticks (USER_HZ, 100 on Linux)
}

// peakRSSMiB is the process's peak resident set (VmHWM).
func (c *child) peakRSSMiB() float64 { return c.status("VmHWM") }

// status reads a kB field of /proc/<pid>/status, in MiB.
func (c *child) status(field string) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func machine() (cpus int, model, goVersion, kernel string) {
	cpus = runtimeNumCPU()
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(raw))
	}
	return cpus, model, goVersionString(), kernel
}

// serveTactd runs tactd as cmd/tactd does.
// cpuProfileEnv tells a child server where to write its CPU profile.
const cpuProfileEnv = "TACTLOAD_CPUPROFILE"

func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--server-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--server-cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func serveTactd(ctx context.Context, args []string) error {
	cfg, err := server.LoadConfig(args, os.Environ())
	if err != nil {
		return err
	}
	logger := cfg.Logger(os.Stderr)
	server.ApplyMemoryLimit(cfg, logger)
	srv, err := server.New(ctx, cfg, logger, server.Deps{})
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

// countCPUs counts the CPUs of a taskset list such as "0", "0,2" or "1-3".
func countCPUs(list string) (int, error) {
	n := 0
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return 0, fmt.Errorf("%q is not a CPU list like 0 or 0,2 or 1-3", list)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0, fmt.Errorf("%q is not a CPU list like 0 or 0,2 or 1-3", list)
			}
		}
		n += b - a + 1
	}
	return n, nil
}
