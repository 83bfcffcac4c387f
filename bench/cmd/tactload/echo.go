package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/tact-nba/tact/features"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// The baselines: the least a gRPC or an HTTP JSON server can do per call
// with the same messages, on the same machine, driven by the same client.

// echoDecision is a typical answer of Tact's, so that the baseline moves
// as many bytes as Tact does.
var echoDecision = &tactv1.DecideResponse{
	DecisionId: "01a207b4-e5e7-7a7d-90ff-4bf25cd86043",
	Action:     tactv1.Action_ACTION_OFFER_NOW,
	Offers: []*tactv1.Offer{{
		ProductId: "home_insurance", Name: "Home insurance", Propensity: 0.648221, Score: 55.3399, Rank: 1,
		TalkingPoints: []string{"Cover for buildings and contents in one policy."},
	}},
	Reasons: []*tactv1.Reason{{
		Code:      tactv1.ReasonCode_REASON_CODE_HIGH_PROPENSITY,
		Message:   "Home insurance: propensity 0.65 clears the standard bar of 0.15; rank 1 of 5 eligible.",
		ProductId: "home_insurance",
	}},
	Tier: "standard", ModelVersion: "demo-2", DecidedAt: timestamppb.New(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)),
}

type grpcEcho struct {
	tactv1.UnimplementedDecisionServiceServer
}

func (grpcEcho) Decide(context.Context, *tactv1.DecideRequest) (*tactv1.DecideResponse, error) {
	return echoDecision, nil
}

// serveGRPCEcho is a bare grpc-go server: no interceptors, no work.
func serveGRPCEcho(ctx context.Context, addr string) error {
	return serveGRPC(ctx, addr, grpcEcho{})
}

// serveHTTPEcho is a bare net/http JSON server: it decodes the request
// body and encodes it back.
func serveHTTPEcho(ctx context.Context, addr string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/decisions", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v) // a failed write is the client's loss
	})
	s := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); _ = s.Close() }()
	if err := s.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func runtimeNumCPU() int      { return runtime.NumCPU() }
func goVersionString() string { return runtime.Version() }

// redisEcho is grpcEcho with one Redis round trip a call: a GET of the
// client's features key, the read a decision makes on a cache miss. It
// is the baseline of tactd on Redis.
type redisEcho struct {
	tactv1.UnimplementedDecisionServiceServer
	client redis.UniversalClient
	key    func(clientID string) string
}

func (e *redisEcho) Decide(ctx context.Context, req *tactv1.DecideRequest) (*tactv1.DecideResponse, error) {
	if err := e.client.Get(ctx, e.key(req.GetClientId())).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return echoDecision, nil
}

// serveRedisEcho serves redisEcho on addr, reading from Redis in mode
// (single or cluster) at redisAddrs (comma-separated), with tactd's key
// layout under prefix tact:.
func serveRedisEcho(ctx context.Context, addr, mode, redisAddrs string) error {
	cfg := features.RedisConfig{Mode: mode, Addrs: redisAddrs}
	keys, err := features.OpenRedis(ctx, cfg, nil) // for the key layout only
	if err != nil {
		return err
	}
	defer keys.Close()
	var client redis.UniversalClient
	if mode == "cluster" {
		client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: cfg.AddrList()})
	} else {
		client = redis.NewClient(&redis.Options{Addr: cfg.AddrList()[0]})
	}
	defer client.Close()
	return serveGRPC(ctx, addr, &redisEcho{client: client, key: keys.Key})
}

// journalEcho is grpcEcho that makes two answers in three durable before
// giving them, the way tactd makes an offer durable by default: a
// decision record committed through a real decision log to its journal
// (appended and fdatasynced, one sync for every record waiting at that
// moment: journal_sync: always), the log's sink discarding the batches.
// It is the least a gRPC server keeping Tact's promise (an acknowledged
// offer outlives kill -9 and a power cut) does a call, so its throughput
// bounds tactd's on the same disk. Two in three is about the share of
// offers in the realistic mix's first round.
type journalEcho struct {
	tactv1.UnimplementedDecisionServiceServer
	log *features.DecisionLog
	n   atomic.Uint64
	// took is the time each Decide takes, kept as engineMetric, tactd's
	// histogram of its engine's time, with its buckets.
	took prometheus.Histogram
}

func (e *journalEcho) Decide(ctx context.Context, req *tactv1.DecideRequest) (*tactv1.DecideResponse, error) {
	start := time.Now()
	defer func() { e.took.Observe(time.Since(start).Seconds()) }()
	if n := e.n.Add(1); n%3 != 0 {
		rec := features.DecisionRecord{
			ID: fmt.Sprintf("journal-echo-%d", n), ClientID: req.GetClientId(), Channel: req.GetChannel().String(),
			Action: "OFFER_NOW", Products: []string{"home_insurance"}, Tier: "standard", ModelVersion: "demo-2",
			Reason: "high_propensity", At: time.Now(),
		}
		if err := e.log.Commit(ctx, rec); err != nil {
			return nil, status.Error(codes.Unavailable, err.Error())
		}
	}
	return echoDecision, nil
}

// discardSink takes the decision log's batches and keeps nothing.
type discardSink struct{}

func (discardSink) SaveDecisions(context.Context, []features.DecisionRecord) error { return nil }
func (discardSink) RestoreDecisions(context.Context, []features.DecisionRecord) (int, error) {
	return 0, nil
}

// serveJournalEcho serves journalEcho on addr, with its journal in dir
// and its histogram on httpAddr's /metrics.
func serveJournalEcho(ctx context.Context, addr, httpAddr, dir string) error {
	j, err := features.OpenJournal(dir)
	if err != nil {
		return err
	}
	log, _, err := features.NewJournaledDecisionLog(ctx, discardSink{}, j, 16384, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer func() { _ = log.Close(context.Background()) }()
	took, stopMetrics := serveHistogram(httpAddr, "Time a Decide takes in journal-echo.")
	defer stopMetrics()
	return serveGRPC(ctx, addr, &journalEcho{log: log, took: took})
}

// serveHistogram serves, on httpAddr's /metrics, a histogram named as
// tactd's engine histogram (engineMetric) and with its buckets, so that
// tactload reads a baseline's own time as it reads tactd's.
func serveHistogram(httpAddr, help string) (prometheus.Histogram, func()) {
	reg := prometheus.NewRegistry()
	took := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: engineMetric, Help: help,
		// tactd's buckets (server/telemetry.go).
		Buckets: []float64{0.000025, 0.00005, 0.000075, 0.0001, 0.00015, 0.0002, 0.0003, 0.0004, 0.0005,
			0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1},
	})
	reg.MustRegister(took)
	hs := &http.Server{Addr: httpAddr, Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.ListenAndServe() }() // a metrics page that fails only loses the quantiles
	return took, func() { _ = hs.Close() }
}

// serveGRPC serves a bare grpc-go server of one DecisionService on addr
// until ctx ends.
func serveGRPC(ctx context.Context, addr string, srv tactv1.DecisionServiceServer) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s := grpc.NewServer()
	tactv1.RegisterDecisionServiceServer(s, srv)
	go func() { <-ctx.Done(); s.Stop() }()
	if err := s.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// journalEchoBase is the directory journal-echo's journal is made in:
// tactd's --data-dir from its arguments, so that both write to one disk,
// or "" (the system's temporary directory).
func journalEchoBase(tactdArgs string) string {
	fields := strings.Fields(tactdArgs)
	for i, f := range fields {
		if v, ok := strings.CutPrefix(f, "--data-dir="); ok {
			return filepath.Dir(v)
		}
		if f == "--data-dir" && i+1 < len(fields) {
			return filepath.Dir(fields[i+1])
		}
	}
	return ""
}

// redisStoreEcho is grpcEcho making, for each call, the calls to Redis
// that tactd makes for a first decision, through tactd's own store and
// nothing else (no model, policy or interceptors): the client's features
// with its contact history in one pipeline (a cache miss), the history
// read, and for two calls in three a reservation carrying its decision
// record; every decision is queued for the shared log (batched). It
// bounds tactd on the same Redis, as journal-echo does on bbolt.
type redisStoreEcho struct {
	tactv1.UnimplementedDecisionServiceServer
	store *features.Redis
	log   *features.DecisionLog
	run   int64 // this server's start, to keep decision ids apart between runs
	n     atomic.Uint64
	took  prometheus.Histogram
}

func (e *redisStoreEcho) Decide(ctx context.Context, req *tactv1.DecideRequest) (*tactv1.DecideResponse, error) {
	start := time.Now()
	defer func() { e.took.Observe(time.Since(start).Seconds()) }()
	id, n := req.GetClientId(), e.n.Add(1)
	unavailable := func(err error) (*tactv1.DecideResponse, error) {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	if _, err := e.store.Get(ctx, id); err != nil && !errors.Is(err, features.ErrNotFound) {
		return unavailable(err)
	}
	if _, err := e.store.Contacts(ctx, id, start.AddDate(0, 0, -90)); err != nil {
		return unavailable(err)
	}
	// Its offers are on a channel and of a product of their own, so that
	// they use none of tactd's caps when both run on one Redis.
	rec := features.DecisionRecord{
		ID: fmt.Sprintf("redis-store-echo-%d-%d", e.run, n), ClientID: id, Channel: "bench",
		Action: "NO_OFFER", Tier: "standard", ModelVersion: "demo-2", Reason: "below_tier_bar", At: start,
	}
	if n%3 != 0 {
		rec.Action, rec.Reason, rec.Products = "OFFER_NOW", "high_propensity", []string{"bench_offer"}
		offer := rec
		if _, err := e.store.Reserve(ctx, features.Reservation{
			ClientID: id, Channel: rec.Channel, DecisionID: rec.ID, Products: rec.Products, At: start,
			Caps: []features.Cap{{Window: 24 * time.Hour, Max: 1000}}, Decision: &offer,
		}); err != nil {
			return unavailable(err)
		}
	}
	e.log.Append(rec)
	return echoDecision, nil
}

// serveRedisStoreEcho serves redisStoreEcho on addr, with tactd's store on
// Redis in mode at redisAddrs, and its histogram on httpAddr's /metrics.
func serveRedisStoreEcho(ctx context.Context, addr, httpAddr, mode, redisAddrs string) error {
	store, err := features.OpenRedis(ctx, features.RedisConfig{Mode: mode, Addrs: redisAddrs}, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	store.PrefetchContacts(true) // as tactd with feature_store redis
	log := features.NewDecisionLog(store, 16384, slog.New(slog.DiscardHandler))
	defer func() { _ = log.Close(context.Background()) }()
	took, stopMetrics := serveHistogram(httpAddr, "Time a Decide takes in redis-store-echo.")
	defer stopMetrics()
	return serveGRPC(ctx, addr, &redisStoreEcho{store: store, log: log, run: time.Now().UnixNano(), took: took})
}
