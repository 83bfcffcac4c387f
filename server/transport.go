package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"time"

	"buf.build/go/protovalidate"
	pvinterceptor "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/protovalidate"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
)

// buildTransport is the last stage of New: authentication, TLS, admission
// and the interceptors; the gRPC server with every service of the table,
// health and reflection; the REST gateway and the HTTP server; and both
// listeners, bound.
func (s *Server) buildTransport(ctx context.Context, deps Deps, svc *services) error {
	cfg, logger := &s.cfg, s.logger
	validator, err := protovalidate.New()
	if err != nil {
		return fmt.Errorf("server: validator: %w", err)
	}
	recoverPanic := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		logger.ErrorContext(ctx, "panic in handler", "panic", fmt.Sprint(p))
		return status.Error(codes.Internal, "internal error")
	})
	authn, err := newAuth(cfg)
	if err != nil {
		return err
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
	tlsConf, err := serverTLS(cfg, logger)
	if err != nil {
		return err
	}
	s.tls = tlsConf
	ic := chainUnary(
		s.accessLog,
		deadline(cfg.CallTimeout),
		authn.unary,
		recovery.UnaryServerInterceptor(recoverPanic),
		validate(pvinterceptor.UnaryServerInterceptor(validator)),
	)
	// Stream workers: calls run on long-lived goroutines whose stacks have
	// grown to the Decide path's depth, instead of a new goroutine per
	// call that grows (copies) its stack every time (11% of the CPU of a
	// decision in the profile). Past the workers, grpc-go starts a
	// goroutine per call as before.
	gopts := []grpc.ServerOption{grpc.NumStreamWorkers(uint32(16 * runtime.GOMAXPROCS(0))),
		grpc.InTapHandle(s.admit.tap), grpc.StatsHandler(admissionStats{s.admit}),
		grpc.MaxConcurrentStreams(1000), grpc.MaxRecvMsgSize(1 << 20),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		// max_connection_age recycles connections so that a replica
		// started later gets a share of long-lived clients.
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 5 * time.Minute, Time: time.Minute, Timeout: 20 * time.Second,
			MaxConnectionAge: cfg.MaxConnectionAge, MaxConnectionAgeGrace: cfg.ShutdownTimeout}),
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
	table := svc.table()
	for _, e := range table {
		registerService(s.grpc, e.desc, e.impl)
	}
	s.healthNames = healthNames(table)
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	for _, name := range s.healthNames {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_NOT_SERVING)
	}

	con, err := newConsole(s, svc, authn, ic)
	if err != nil {
		return err
	}
	handler, err := newGateway(ctx, table, ic, svc.features.schema, cfg.MaxBodyBytes, &s.ready, s.tel, authn, s.admit, con.register)
	if err != nil {
		return err
	}
	if err := s.tel.observe(s); err != nil {
		return err
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
		return fmt.Errorf("server: grpc_addr: %w", err)
	}
	if s.httpLis, err = lc.Listen(ctx, "tcp", cfg.HTTPAddr); err != nil {
		return fmt.Errorf("server: http_addr: %w", err)
	}
	return nil
}
