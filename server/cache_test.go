package server

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tact-nba/tact/features"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// countingSource counts the reads that reach the real store, and holds
// them until released so that callers pile up.
type countingSource struct {
	features.Source
	reads   atomic.Int64
	release chan struct{}
}

func (c *countingSource) Get(ctx context.Context, id string) (features.Record, error) {
	c.reads.Add(1)
	<-c.release
	return c.Source.Get(ctx, id)
}

// TestStampedeOneStoreRead: 1,000 concurrent Decide calls for one
// uncached client make exactly one read of the store.
func TestStampedeOneStoreRead(t *testing.T) {
	src := &countingSource{release: make(chan struct{})}
	ts := startServer(t, Deps{WrapFeatures: func(s features.Source) features.Source { src.Source = s; return src }})
	client := tactv1.NewDecisionServiceClient(ts.conn)

	var wg sync.WaitGroup
	var failed, degraded atomic.Int64
	actions := sync.Map{}
	for range 1000 {
		wg.Go(func() {
			resp, err := client.Decide(context.Background(), &tactv1.DecideRequest{ClientId: "C00074", Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND})
			if err != nil {
				failed.Add(1)
				return
			}
			if resp.GetDegraded() {
				degraded.Add(1)
			}
			actions.Store(resp.GetAction(), true)
		})
	}
	time.Sleep(30 * time.Millisecond) // well inside the 50 ms feature budget
	close(src.release)
	wg.Wait()
	if n := src.reads.Load(); n != 1 {
		t.Errorf("1,000 concurrent decisions made %d store reads, want 1", n)
	}
	if failed.Load() != 0 {
		t.Errorf("%d calls failed", failed.Load())
	}
	// Calls that waited past their budget answer a degraded NO_OFFER; the
	// rest decide on the one read.
	t.Logf("%d of 1000 answers degraded (waited past the feature budget)", degraded.Load())
	if _, ok := actions.Load(tactv1.Action_ACTION_OFFER_NOW); !ok {
		t.Error("no call got the decision made on the shared read")
	}
}
