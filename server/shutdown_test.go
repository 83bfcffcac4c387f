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
		c.FeatureBudget, c.StoreTimeout = 10*time.Second, 10*time.Second
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
