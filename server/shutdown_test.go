package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tact-nba/tact/features"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// blockingReader holds every feature read until release is closed, so that
// calls are truly in flight when the server is told to stop.
type blockingReader struct {
	arrived atomic.Int32
	release chan struct{}
}

func (b *blockingReader) Get(_ context.Context, _ string) (features.Record, error) {
	b.arrived.Add(1)
	<-b.release
	return features.Record{}, features.ErrNotFound
}

func (b *blockingReader) PutBatch(context.Context, []features.Record) error { return nil }

func TestGracefulShutdownDrainsInFlightCalls(t *testing.T) {
	reader := &blockingReader{release: make(chan struct{})}
	// Long budgets, so that the held reads keep the calls in flight rather
	// than turning into quick degraded answers.
	ts := startServer(t, Deps{WrapFeatures: func(features.Source) features.Source { return reader }}, func(c *Config, _ *io.Writer) {
		c.FeatureBudget, c.Cache.StoreTimeout = 10*time.Second, 10*time.Second
	})
	client := tactv1.NewDecisionServiceClient(ts.conn)

	const grpcCalls, restCalls = 40, 10
	var wg sync.WaitGroup
	errs := make(chan error, grpcCalls+restCalls)
	// Distinct clients: the feature cache collapses concurrent reads of one.
	for i := range grpcCalls {
		wg.Go(func() {
			resp, err := client.Decide(context.Background(), &tactv1.DecideRequest{ClientId: fmt.Sprintf("G%05d", i), Channel: tactv1.Channel_CHANNEL_WEB})
			if err == nil && resp.GetDecisionId() == "" {
				err = errString("empty decision id")
			}
			errs <- err
		})
	}
	for i := range restCalls {
		wg.Go(func() {
			resp, err := http.Post(ts.base+"/v1/decisions", "application/json", strings.NewReader(fmt.Sprintf(`{"client_id":"R%05d","channel":"CHANNEL_WEB"}`, i)))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = errString(resp.Status)
				}
			}
			errs <- err
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for reader.arrived.Load() < grpcCalls+restCalls {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d calls reached the server", reader.arrived.Load(), grpcCalls+restCalls)
		}
		time.Sleep(5 * time.Millisecond)
	}

	start := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- ts.stop() }()
	// The server must be draining, not done, while calls are held.
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (%v) while %d calls were in flight", err, grpcCalls+restCalls)
	case <-time.After(200 * time.Millisecond):
	}
	if ts.ready.Load() {
		t.Error("ready is still true while draining")
	}
	close(reader.release)
	wg.Wait()
	close(errs)
	var failed int
	for err := range errs {
		if err != nil {
			failed++
			t.Errorf("in-flight call failed: %v", err)
		}
	}
	if err := <-stopped; err != nil {
		t.Errorf("Run: %v, want nil", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("drain took %v, want under 10 s", took)
	}
	t.Logf("%d of %d in-flight calls failed", failed, grpcCalls+restCalls)
}

type errString string

func (e errString) Error() string { return string(e) }

// TestDrainUnderLoadFailsNoCall stops a server under REST (keep-alive)
// and gRPC load, with a stand-in for the load balancer: it polls /readyz
// and stops routing new calls to the server once it answers 503. Readiness
// must fail while the server still serves (drain_delay), and no call may
// fail, at the connection level or otherwise. (Before drain_delay, /readyz
// never answered 503 and keep-alive REST calls were reset.)
func TestDrainUnderLoadFailsNoCall(t *testing.T) {
	ts := startServer(t, Deps{}, func(c *Config, _ *io.Writer) { c.DrainDelay = 500 * time.Millisecond })
	dec := tactv1.NewDecisionServiceClient(ts.conn)
	health := healthpb.NewHealthClient(ts.conn)
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 5 * time.Second}
	defer httpc.CloseIdleConnections()

	var routed atomic.Bool // the balancer still sends new calls here
	routed.Store(true)
	var okREST, okGRPC, afterNotReady atomic.Int64
	var mu sync.Mutex
	var failures []string
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; routed.Load(); i++ {
				body := fmt.Sprintf(`{"client_id":"C%05d","channel":"CHANNEL_WEB"}`, (w*1000+i)%1000+1)
				resp, err := httpc.Post(ts.base+"/v1/decisions", "application/json", strings.NewReader(body))
				if err != nil {
					fail("REST: %v", err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					fail("REST: %s", resp.Status)
					return
				}
				okREST.Add(1)
				if !routed.Load() {
					afterNotReady.Add(1)
				}
			}
		})
		wg.Go(func() {
			for i := 0; routed.Load(); i++ {
				_, err := dec.Decide(context.Background(), &tactv1.DecideRequest{ClientId: fmt.Sprintf("C%05d", (w*1000+i)%1000+1), Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND})
				if err != nil {
					fail("gRPC: %v", err)
					return
				}
				okGRPC.Add(1)
			}
		})
	}
	// The balancer: polls readiness on connections of its own.
	sawNotReady := make(chan struct{})
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	go func() {
		defer close(sawNotReady)
		for {
			resp, err := probe.Get(ts.base + "/readyz")
			if err != nil {
				fail("readyz: %v (the server stopped listening before readiness failed)", err)
				routed.Store(false)
				return
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				routed.Store(false)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	time.Sleep(300 * time.Millisecond) // load runs
	stopped := make(chan error, 1)
	go func() { stopped <- ts.stop() }()
	<-sawNotReady
	// Still serving, health included, while the delay runs.
	hctx, cancel := context.WithTimeout(t.Context(), time.Second)
	h, err := health.Check(hctx, &healthpb.HealthCheckRequest{})
	cancel()
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("gRPC health during the drain delay: %v, %v; want NOT_SERVING", h.GetStatus(), err)
	}
	wg.Wait()
	if err := <-stopped; err != nil {
		t.Errorf("Run: %v", err)
	}
	if len(failures) > 0 {
		t.Errorf("%d calls failed across the drain, first: %s", len(failures), failures[0])
	}
	if okREST.Load() == 0 || okGRPC.Load() == 0 {
		t.Errorf("calls served: %d REST, %d gRPC; want both", okREST.Load(), okGRPC.Load())
	}
	t.Logf("%d REST and %d gRPC calls ok across the drain (%d REST finished after readiness failed), 0 failed", okREST.Load(), okGRPC.Load(), afterNotReady.Load())
}
