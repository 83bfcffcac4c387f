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
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"buf.build/go/protovalidate"
	pvinterceptor "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/protovalidate"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model/decision"
	"github.com/tact-nba/tact/model/demo"
	"github.com/tact-nba/tact/model/load"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// Deps lets tests replace parts of the wiring. Nil fields get the defaults.
type Deps struct {
	// WrapFeatures, when set, wraps the store the feature cache reads
	// from (tests count, hold or fail reads with it).
	WrapFeatures func(features.Source) features.Source
	// Now returns the current time.
	Now func() time.Time
	// GRPCListener, when set, is where gRPC is served instead of
	// grpc_addr (benchmarks serve over an in-memory bufconn).
	GRPCListener net.Listener
	// SpanExporter, when set, takes the spans instead of the exporter
	// OTEL_TRACES_EXPORTER names (tests read them from memory).
	SpanExporter sdktrace.SpanExporter
}

type services struct {
	decision *decisionService
	catalog  *catalogService
	load     *loadService
	features *featureService
	export   *exportService
	exps     *experimentService
}

// Server is a running tactd: listeners, servers, engine and stores.
type Server struct {
	cfg    Config
	logger *slog.Logger

	store   *features.Bolt
	redis   *features.Redis
	history features.ContactHistory
	files   *policyFiles
	polSum  [32]byte
	polVer  atomic.Pointer[string] // digest of the catalog, policy and experiments in use
	tls     *tls.Config            // nil: plain text
	admit   *admission
	tel     *telemetry
	cache   *features.Cache
	dlog    *features.DecisionLog
	engine  *decision.Engine

	grpcLis, httpLis net.Listener
	grpc             *grpc.Server
	http             *http.Server
	health           *health.Server
	ready            atomic.Bool
	serving          chan struct{} // closed once Run serves
}

// New opens the store, seeds the demo when asked, builds the engine and
// binds both listeners. It fails fast on any problem; on failure nothing is
// left open.
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
	s.store, err = features.OpenBolt(filepath.Join(cfg.DataDir, "tact.db"))
	if err != nil {
		return nil, err
	}
	bank, err := demo.New(demo.Seed)
	if err != nil {
		return nil, err
	}
	if cfg.SeedDemo() && cfg.FeatureStore == "bolt" {
		n, err := s.store.CountClients(ctx)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			if err := bank.Seed(ctx, s.store); err != nil {
				return nil, err
			}
			logger.Info("seeded demo clients", "clients", len(bank.Clients), "store", s.store.Path())
		}
	}
	schema, err := loadSchema(cfg.FeatureSchema)
	if err != nil {
		return nil, err
	}
	bundle := bank.Bundle
	if cfg.ModelDir != "" {
		if bundle, err = loadBundle(cfg.ModelDir); err != nil {
			return nil, fmt.Errorf("model_dir: %w", err)
		}
	}
	s.files = &policyFiles{catalogPath: cfg.CatalogFile, policyPath: cfg.PolicyFile, experimentsPath: cfg.ExperimentsFile,
		schema: schema, bundle: bundleByVersion(cfg.ModelDir)}
	dc, sum, err := s.files.load()
	if err != nil {
		return nil, err
	}
	s.polSum = sum
	s.setPolicyVersion(sum)
	cat, pol := dc.cat, dc.pol
	s.dlog = features.NewDecisionLog(s.store, cfg.DecisionLogBuffer, logger)
	var src features.Source = s.store
	s.history = s.store
	if cfg.FeatureStore == "redis" {
		s.redis, err = features.OpenRedis(ctx, cfg.Redis, logger)
		if err != nil {
			return nil, fmt.Errorf("feature_store redis: %w", err)
		}
		src = s.redis
		// Every replica sharing the Redis shares the contact history, so
		// that the caps hold across them.
		s.history = s.redis
	}
	storeAttr := attribute.String("store", cfg.FeatureStore)
	src = &timedSource{Source: src, t: s.tel, store: storeAttr}
	s.tel.storeErrors.Add(ctx, 0, metric.WithAttributes(storeAttr)) // the series exists from the start
	if deps.WrapFeatures != nil {
		src = deps.WrapFeatures(src)
	}
	// Decisions read features only through the cache.
	s.cache, err = features.NewCache(src, cfg.Cache, deps.Now)
	if err != nil {
		return nil, err
	}
	board := load.NewBoard()
	s.engine, err = decision.New(decision.Config{FeatureBudget: cfg.FeatureBudget}, decision.Deps{
		Catalog:  cat,
		Policy:   pol,
		Bundle:   bundle,
		Features: s.cache,
		History:  s.history,
		Load:     board,
		Log:      s.dlog,
		Outcomes: s.store,
		Now:      deps.Now,
		Tracer:   s.tel.tracer,
	})
	if err != nil {
		return nil, err
	}
	if err := s.engine.SetExperiments(dc.exps); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.ExperimentsFile, err)
	}
	logLoaded(logger, dc)

	validator, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("server: validator: %w", err)
	}
	recoverPanic := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		logger.ErrorContext(ctx, "panic in handler", "panic", fmt.Sprint(p))
		return status.Error(codes.Internal, "internal error")
	})
	authn, err := newAuth(&cfg)
	if err != nil {
		return nil, err
	}
	shed := func(reason string) { s.tel.shed.Add(context.Background(), 1, s.tel.attr("reason", reason).add...) }
	if cfg.RateLimit > 0 {
		authn.limits = &callerLimits{rate: rate.Limit(cfg.RateLimit), burst: cfg.RateBurst, shed: shed, limiters: map[string]*callerLimiter{}}
	}
	limit := int64(cfg.MaxInFlight)
	if limit == 0 {
		limit = int64(128 * runtime.GOMAXPROCS(0))
	}
	s.admit = &admission{limit: limit, shed: shed}
	tlsConf, err := serverTLS(&cfg, logger)
	if err != nil {
		return nil, err
	}
	s.tls = tlsConf
	ic := chainUnary(
		s.accessLog,
		deadline(cfg.CallTimeout),
		authn.unary,
		recovery.UnaryServerInterceptor(recoverPanic),
		validate(pvinterceptor.UnaryServerInterceptor(validator)),
	)
	svc := &services{
		decision: &decisionService{engine: s.engine, logger: logger, tel: s.tel},
		catalog:  &catalogService{engine: s.engine},
		load:     &loadService{board: board, engine: s.engine, now: deps.Now},
		export:   &exportService{store: s.store, log: s.dlog, logger: logger},
		features: &featureService{cache: s.cache, schema: schema, now: deps.Now, logger: logger},
		exps:     &experimentService{engine: s.engine, store: s.store, log: s.dlog, logger: logger},
	}

	// Stream workers: calls run on long-lived goroutines whose stacks have
	// grown to the Decide path's depth, instead of a new goroutine per
	// call that grows (copies) its stack every time (11% of the CPU of a
	// decision in the profile). Past the workers, grpc-go starts a
	// goroutine per call as before.
	gopts := []grpc.ServerOption{grpc.NumStreamWorkers(uint32(16 * runtime.GOMAXPROCS(0))),
		grpc.InTapHandle(s.admit.tap), grpc.StatsHandler(admissionStats{s.admit}),
		grpc.MaxConcurrentStreams(1000), grpc.MaxRecvMsgSize(1 << 20),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 5 * time.Minute, Time: time.Minute, Timeout: 20 * time.Second}),
	}
	if tlsConf != nil {
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(tlsConf)))
	}
	s.grpc = grpc.NewServer(append(gopts,
		grpc.ForceServerCodecV2(newNamingCodec()),
		grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(s.tel.tp), otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()))),
		grpc.UnaryInterceptor(ic), grpc.ChainStreamInterceptor(
			decodeErrorsStream,
			s.accessLogStream,
			authn.stream,
			recovery.StreamServerInterceptor(recoverPanic),
			pvinterceptor.StreamServerInterceptor(validator),
		))...)
	registerService(s.grpc, &tactv1.DecisionService_ServiceDesc, tactv1.DecisionServiceServer(svc.decision))
	registerService(s.grpc, &tactv1.CatalogService_ServiceDesc, tactv1.CatalogServiceServer(svc.catalog))
	registerService(s.grpc, &tactv1.LoadService_ServiceDesc, tactv1.LoadServiceServer(svc.load))
	registerService(s.grpc, &tactv1.FeatureService_ServiceDesc, tactv1.FeatureServiceServer(svc.features))
	registerService(s.grpc, &tactv1.ExportService_ServiceDesc, tactv1.ExportServiceServer(svc.export))
	registerService(s.grpc, &tactv1.ExperimentService_ServiceDesc, tactv1.ExperimentServiceServer(svc.exps))
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	for _, name := range s.serviceNames() {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_NOT_SERVING)
	}

	handler, err := newGateway(ctx, svc, ic, cfg.MaxBodyBytes, &s.ready, s.tel, authn, s.admit)
	if err != nil {
		return nil, err
	}
	if err := s.tel.observe(s); err != nil {
		return nil, err
	}
	s.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		TLSConfig:         tlsConf,
	}

	var lc net.ListenConfig
	if deps.GRPCListener != nil {
		s.grpcLis = deps.GRPCListener
	} else if s.grpcLis, err = lc.Listen(ctx, "tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("server: grpc_addr: %w", err)
	}
	if s.httpLis, err = lc.Listen(ctx, "tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("server: http_addr: %w", err)
	}
	built = true
	return s, nil
}

func (s *Server) serviceNames() []string {
	return []string{"", tactv1.DecisionService_ServiceDesc.ServiceName, tactv1.CatalogService_ServiceDesc.ServiceName,
		tactv1.LoadService_ServiceDesc.ServiceName, tactv1.FeatureService_ServiceDesc.ServiceName,
		tactv1.ExportService_ServiceDesc.ServiceName}
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
	for _, name := range s.serviceNames() {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	if s.cfg.ModelDir != "" {
		w := &bundleWatcher{dir: s.cfg.ModelDir, every: s.cfg.ModelPoll, engine: s.engine, logger: s.logger}
		wctx, stopWatch := context.WithCancel(ctx)
		defer stopWatch()
		go w.run(wctx)
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
