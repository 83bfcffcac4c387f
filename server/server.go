// Package server is Tact's transport edge: the gRPC services, the REST
// gateway registered in-process on the HTTP port, health, reflection,
// configuration and the wiring of the stores and engine behind them.
//
// It is the only package that imports gRPC. New builds a Server from a
// Config; Run serves until its context ends, then drains.
package server

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model"
	"github.com/tact-nba/tact/model/adaptive"
	"github.com/tact-nba/tact/model/decision"
	"github.com/tact-nba/tact/model/demo"
	"github.com/tact-nba/tact/model/load"
)

// Deps lets tests replace parts of the wiring. Nil fields get the defaults.
type Deps struct {
	// WrapFeatures, when set, wraps the store the feature cache reads
	// from (tests count, hold or fail reads with it).
	WrapFeatures func(features.Source) features.Source
	// Now returns the current time.
	Now func() time.Time
	// Rand, when set, draws the policy's explorations (a number in [0,
	// 1), safe for concurrent use; tests seed it); nil: math/rand/v2.
	Rand func() float64
	// GRPCListener, when set, is where gRPC is served instead of
	// grpc_addr (benchmarks serve over an in-memory bufconn).
	GRPCListener net.Listener
	// SpanExporter, when set, takes the spans instead of the exporter
	// OTEL_TRACES_EXPORTER names (tests read them from memory).
	SpanExporter sdktrace.SpanExporter
}

// Server is a running tactd: listeners, servers, engine and stores.
type Server struct {
	cfg    Config
	logger *slog.Logger

	store   *features.Bolt
	redis   *features.Redis
	history features.ContactHistory
	log     logReader // the decision log and outcomes exports read
	files   *policyFiles
	polSum  [32]byte
	polVer  atomic.Pointer[string] // digest of the catalog, policy and experiments in use
	tls     *tls.Config            // nil: plain text
	admit   *admission
	tel     *telemetry
	cache   *features.Cache
	dlog    *features.DecisionLog
	engine  *decision.Engine
	board   *load.Board
	learner *adaptive.Set // learning: adaptive; nil when off

	grpcLis, httpLis net.Listener
	grpc             *grpc.Server
	http             *http.Server
	health           *health.Server
	healthNames      []string // "" and every service
	ready            atomic.Bool
	serving          chan struct{} // closed once Run serves
}

// New opens the stores, seeds the demo when asked, builds the engine and
// the transport, and binds both listeners, in that order (stores.go,
// transport.go). It fails fast on any problem; on failure nothing is left
// open.
func New(ctx context.Context, cfg Config, logger *slog.Logger, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		return nil, errors.New("server: no logger")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	// Log lines made while serving a call carry its trace and span ids.
	logger = slog.New(traceHandler{logger.Handler()})
	s := &Server{cfg: cfg, logger: logger, serving: make(chan struct{})}
	built := false
	defer func() {
		if !built {
			s.closeResources(context.Background())
		}
	}()
	var err error
	if s.tel, err = newTelemetry(ctx, deps.SpanExporter, cfg.LogHashKey, logger); err != nil {
		return nil, err
	}
	w, err := s.openStores(ctx, deps)
	if err != nil {
		return nil, err
	}
	svc, err := s.buildEngine(deps, w)
	if err != nil {
		return nil, err
	}
	if err := s.buildTransport(ctx, deps, svc); err != nil {
		return nil, err
	}
	built = true
	return s, nil
}

// WaitServing blocks until Run has started serving. The listeners are bound
// by New, so calls made before then wait in the backlog rather than fail.
func (s *Server) WaitServing() { <-s.serving }

// GRPCAddr returns the address the gRPC server listens on.
func (s *Server) GRPCAddr() string { return s.grpcLis.Addr().String() }

// HTTPAddr returns the address the HTTP server listens on.
func (s *Server) HTTPAddr() string { return s.httpLis.Addr().String() }

// Run serves gRPC and HTTP until ctx ends, then drains: health and /readyz
// report NOT_SERVING at once, calls go on being served for DrainDelay
// (REST responses close their connections), then the servers stop taking
// calls and those in flight finish (for at most ShutdownTimeout), the
// decision log is flushed and the store closed. It returns nil after a
// clean drain and an error when a server failed.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() {
		if err := s.grpc.Serve(s.grpcLis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			errc <- fmt.Errorf("grpc server: %w", err)
		}
	}()
	go func() {
		serve := s.http.Serve
		if s.tls != nil {
			serve = func(l net.Listener) error { return s.http.ServeTLS(l, "", "") }
		}
		if err := serve(s.httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http server: %w", err)
		}
	}()
	for _, name := range s.healthNames {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	if s.cfg.ModelDir != "" {
		w := &bundleWatcher{dir: s.cfg.ModelDir, every: s.cfg.ModelPoll, engine: s.engine, logger: s.logger,
			loaded: func(b *model.Bundle) error { return s.restoreSnapshot(ctx, b) }}
		wctx, stopWatch := context.WithCancel(ctx)
		defer stopWatch()
		go w.run(wctx)
	}
	if s.redis != nil {
		go s.refreshLoad(ctx)
	} else {
		tctx, stopTrim := context.WithCancel(ctx)
		defer stopTrim()
		go s.trim(tctx)
	}
	if s.learner != nil {
		lctx, stopLearning := context.WithCancel(ctx)
		defer stopLearning()
		// Saved every 5 s on the embedded store; read back every second
		// from Redis, where every replica adds its outcomes.
		period := 5 * time.Second
		if s.redis != nil {
			period = time.Second
		}
		go every(lctx, period, func() { s.syncLearning(lctx) })
	}
	pw := &policyWatcher{files: s.files, every: s.cfg.ModelPoll, engine: s.engine, logger: s.logger, inUse: s.polSum, loaded: s.setPolicyVersion}
	pctx, stopPolicy := context.WithCancel(ctx)
	defer stopPolicy()
	go pw.run(pctx)
	s.ready.Store(true)
	close(s.serving)
	s.logger.Info("tactd serving", "grpc_addr", s.GRPCAddr(), "http_addr", s.HTTPAddr(), "model_version", s.engine.Bundle().Version())

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		s.logger.Error("server failed; shutting down", "err", runErr)
	}
	// Readiness fails first (/readyz 503, gRPC health NOT_SERVING) while
	// both servers go on serving for drain_delay, so that load balancers
	// stop sending before anything closes; REST responses meanwhile close
	// their connections (closeWhenDraining). Then the servers drain.
	s.ready.Store(false)
	s.health.Shutdown()
	if runErr == nil && s.cfg.DrainDelay > 0 {
		s.logger.Info("shutting down: readiness off, still serving", "drain_delay", s.cfg.DrainDelay.String())
		select {
		case <-time.After(s.cfg.DrainDelay):
		case runErr = <-errc:
			s.logger.Error("server failed; shutting down", "err", runErr)
		}
	}
	s.logger.Info("shutting down: draining calls in flight", "timeout", s.cfg.ShutdownTimeout.String())

	// The drain has its own deadline: ctx is already done.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		done := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-dctx.Done():
			s.logger.Warn("grpc drain timed out; closing connections")
			s.grpc.Stop()
			<-done
		}
	})
	wg.Go(func() {
		if err := s.http.Shutdown(dctx); err != nil {
			s.logger.Warn("http drain timed out; closing connections", "err", err)
			_ = s.http.Close() // already failing over to a hard close
		}
	})
	wg.Wait()
	s.closeResources(dctx)
	if runErr == nil {
		s.logger.Info("tactd stopped")
	}
	return runErr
}

// loadRefresh is how often a replica reads the shared load board: a report
// to any replica governs every replica within it (and a round trip).
const loadRefresh = 250 * time.Millisecond

// refreshLoad keeps this replica's copy of the shared load board fresh
// until ctx ends. A failed read keeps the copy (Redis outages are logged
// by the store).
func (s *Server) refreshLoad(ctx context.Context) {
	every(ctx, loadRefresh, func() {
		rctx, cancel := context.WithTimeout(ctx, loadRefresh)
		_ = s.board.Refresh(rctx) // kept on failure; see Board.Refresh
		cancel()
	})
}

// every calls fn every d until ctx ends; a call that runs long delays the
// next, none overlap.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// trim keeps the embedded store's decision log and outcomes to their
// retention until ctx ends: every minute, or a quarter of
// decision_retention when that is shorter. (On Redis the streams are
// trimmed as they are written.)
func (s *Server) trim(ctx context.Context) {
	every(ctx, min(time.Minute, s.cfg.Retention.Decisions/4), func() {
		n, err := s.store.Trim(ctx, s.cfg.Retention, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			s.logger.Warn("trimming the decision log failed", "err", err)
		case n.Decisions > 0 || n.Outcomes > 0:
			s.logger.Info("trimmed the decision log", "decisions", n.Decisions, "outcomes", n.Outcomes)
		}
	})
}

// closeResources flushes the decision log and closes the store and any
// listener that was never served.
func (s *Server) closeResources(ctx context.Context) {
	if s.dlog != nil {
		if err := s.dlog.Close(ctx); err != nil {
			s.logger.Error("decision log: flush on close failed", "err", err, "pending", s.dlog.Pending())
		}
		if n := s.dlog.Dropped(); n > 0 {
			s.logger.Warn("decision log dropped records", "dropped", n)
		}
	}
	if s.learner != nil && s.store != nil && s.redis == nil {
		s.saveLearning(ctx)
	}
	if s.cache != nil {
		s.cache.Close()
	}
	if s.redis != nil {
		if err := s.redis.Close(); err != nil {
			s.logger.Error("redis: close failed", "err", err)
		}
	}
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			s.logger.Error("store: close failed", "err", err)
		}
	}
	for _, l := range []net.Listener{s.grpcLis, s.httpLis} {
		if l != nil {
			_ = l.Close() // may be closed already by the server
		}
	}
	if s.tel != nil {
		if err := s.tel.shutdown(ctx); err != nil {
			s.logger.Warn("telemetry: shutdown", "err", err)
		}
	}
}

// setPolicyVersion notes the digest of the catalog, policy and
// experiments in use (the tact.config.info metric).
func (s *Server) setPolicyVersion(sum [32]byte) {
	v := hex.EncodeToString(sum[:6])
	s.polVer.Store(&v)
}

func (s *Server) policyVersion() string {
	if v := s.polVer.Load(); v != nil {
		return *v
	}
	return ""
}

// loadSchema reads the feature schema file, or the demo bank's when path
// is empty.
func loadSchema(path string) (*features.Schema, error) {
	if path == "" {
		return demo.Schema()
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("feature_schema: %w", err)
	}
	defer f.Close()
	s, err := features.ReadSchema(f)
	if err != nil {
		return nil, fmt.Errorf("feature_schema %s: %w", path, err)
	}
	return s, nil
}
