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
//
// More baselines run when asked for by --only: redis-echo (the echo with
// one Redis GET a call, with --redis-addrs); journal-echo (the echo making
// two answers in three durable through a real decision log's journal
// before giving them, as tactd makes an offer durable by default: what
// any server keeping that promise pays on this disk); and redis-store-echo
// (with --redis-addrs: the echo making, through tactd's own Redis store,
// the calls tactd makes for a first decision, reserving two calls in
// three: what Tact's use of Redis costs without its engine).
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

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
		case "serve-redis-store-echo":
			return serveRedisStoreEcho(ctx, args[1], args[2], args[3], args[4])
		case "serve-journal-echo":
			return serveJournalEcho(ctx, args[1], args[2], args[3])
		case "serve-redis-echo":
			return serveRedisEcho(ctx, args[1], args[2], args[3])
		case "serve-tactd":
			return server.Main(ctx, args[1:]) // tactd, as cmd/tactd runs it
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
	fs.StringVar(&o.cpuProfile, "server-cpuprofile", "", "write each server's CPU profile to PREFIX-<server>-<pid>.pprof and its allocations to PREFIX-<server>-<pid>.allocs.pprof (read with go tool pprof)")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.Float64Var(&o.overload, "overload", 0, "after the open loop, drive tact-grpc at this multiple of its closed-loop QPS for --open-duration, then at half for 10 s (recovery); 0 skips")
	fs.StringSliceVar(&o.only, "only", nil, "run only these targets: grpc-echo, tact-grpc, http-echo, tact-rest, redis-echo (with --redis-addrs); only when named: journal-echo, redis-store-echo (with --redis-addrs)")
	fs.StringVar(&o.redisMode, "redis-mode", "single", "redis-echo's Redis: single or cluster")
	fs.StringVar(&o.redisAddrs, "redis-addrs", "", "redis-echo's Redis (comma-separated; the cluster's seed nodes); the target runs only when set")
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
	redisMode, redisAddrs          string
	serverStderr                   bool
	serverCPUs                     string
	cpuProfile                     string
	only                           []string
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
		{name: "redis-echo", serve: "serve-redis-echo", pair: "tact-grpc"},
		{name: "journal-echo", serve: "serve-journal-echo", pair: "tact-grpc"},
		{name: "redis-store-echo", serve: "serve-redis-store-echo", pair: "tact-grpc"},
		{name: "tact-grpc", serve: "serve-tactd", pair: "tact-grpc"},
		{name: "http-echo", serve: "serve-http-echo", pair: "tact-rest", http: true},
		{name: "tact-rest", serve: "serve-tactd", pair: "tact-rest", http: true},
	} {
		byName := t.name == "journal-echo" || t.name == "redis-store-echo" // run only when named
		needsRedis := t.name == "redis-echo" || t.name == "redis-store-echo"
		if want(t.name) && (!needsRedis || o.redisAddrs != "") && (!byName || slices.Contains(o.only, t.name)) {
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
	ratio("grpc_qps_vs_redis_echo", "tact-grpc", "redis-echo", func(r Result) float64 { return r.QPS })
	ratio("redis_echo_qps_vs_echo", "redis-echo", "grpc-echo", func(r Result) float64 { return r.QPS })
	ratio("grpc_qps_vs_journal_echo", "tact-grpc", "journal-echo", func(r Result) float64 { return r.QPS })
	ratio("journal_echo_qps_vs_echo", "journal-echo", "grpc-echo", func(r Result) float64 { return r.QPS })
	ratio("journal_echo_p99_vs_echo", "journal-echo", "grpc-echo", func(r Result) float64 { return r.P99 })
	ratio("grpc_qps_vs_redis_store_echo", "tact-grpc", "redis-store-echo", func(r Result) float64 { return r.QPS })
	ratio("redis_store_echo_qps_vs_echo", "redis-store-echo", "grpc-echo", func(r Result) float64 { return r.QPS })
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
