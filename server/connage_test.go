package server

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// connCounter counts the connections a client opened.
type connCounter struct{ conns atomic.Int64 }

func (c *connCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (c *connCounter) HandleRPC(context.Context, stats.RPCStats)                       {}
func (c *connCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}

func (c *connCounter) HandleConn(_ context.Context, s stats.ConnStats) {
	if _, ok := s.(*stats.ConnBegin); ok {
		c.conns.Add(1)
	}
}

// TestMaxConnectionAge: tactd closes a client's connection after
// max_connection_age (GOAWAY), the client opens a new one (through a
// balancer, perhaps to a newer replica), and no call fails across it.
func TestMaxConnectionAge(t *testing.T) {
	ts := startServer(t, Deps{}, func(c *Config, _ *io.Writer) { c.MaxConnectionAge = 300 * time.Millisecond })
	counter := &connCounter{}
	conn, err := grpc.NewClient(ts.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithStatsHandler(counter))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dc := tactv1.NewDecisionServiceClient(conn)
	calls := 0
	for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline); calls++ {
		if _, err := dc.Decide(t.Context(), &tactv1.DecideRequest{ClientId: "C00001", Channel: tactv1.Channel_CHANNEL_WEB}); err != nil {
			t.Fatalf("call %d across the connection's recycling: %v", calls, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := counter.conns.Load(); n < 3 {
		t.Errorf("%d connections in 1.5 s with max_connection_age 300ms, want at least 3", n)
	}
}
