// Package servertest starts a real tactd server for tests and benchmarks of
// other packages: gRPC and HTTP on 127.0.0.1 with free ports, a fresh data
// directory, the demo bank, logs discarded.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/tact-nba/tact/server"
)

// Start runs a server until the test ends, then stops it and reports a
// failed drain as a test error. It returns once the server is serving.
// opts change the configuration (listeners on 127.0.0.1:0, a temporary
// data directory, the rest defaults) before the server starts.
func Start(tb testing.TB, deps server.Deps, opts ...func(*server.Config)) *server.Server {
	tb.Helper()
	cfg := server.Defaults()
	cfg.Demo, cfg.DrainDelay = "true", 0 // the demo bank in a temporary data_dir; no balancer to wait for
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", tb.TempDir()
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), deps)
	if err != nil {
		cancel()
		tb.Fatalf("servertest: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("servertest: Run: %v", err)
		}
	})
	srv.WaitServing()
	return srv
}

// FreeAddr returns a 127.0.0.1 address with a port free a moment ago, for
// a server started in a child process (which cannot be handed a listener).
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
