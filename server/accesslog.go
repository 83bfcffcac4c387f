package server

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// traceHandler adds the trace and span ids of the call being served to
// every log line made in it.
type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(as)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}

// accessLog writes a line per call (method, code, latency; never the
// request) and counts the calls in flight. It runs first in the chain, for
// gRPC and for REST's in-process calls alike.
func (s *Server) accessLog(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	s.serveCall(ctx, info.FullMethod, func() error { resp, err = handler(ctx, req); return err })
	return resp, err
}

func (s *Server) accessLogStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	var err error
	s.serveCall(ss.Context(), info.FullMethod, func() error { err = handler(srv, ss); return err })
	return err
}

// serveCall runs a call counted in flight, then times and logs it.
func (s *Server) serveCall(ctx context.Context, method string, call func() error) {
	n := s.tel.inFlight.of(method)
	n.Add(1)
	start := time.Now()
	err := call()
	took := time.Since(start)
	n.Add(-1)
	code := status.Code(err)
	s.tel.rpcDuration.Record(ctx, took.Seconds(), s.tel.attrs("method", method, "code", code.String()).rec...)
	s.logCall(ctx, method, code, took)
}

func (s *Server) logCall(ctx context.Context, method string, code codes.Code, took time.Duration) {
	if !s.cfg.AccessLog {
		return
	}
	lvl := slog.LevelInfo
	if code == codes.Internal {
		lvl = slog.LevelError
	}
	s.logger.LogAttrs(ctx, lvl, "call", slog.String("method", method), slog.String("code", code.String()),
		slog.Float64("ms", float64(took.Microseconds())/1000))
}
