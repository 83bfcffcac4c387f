// The mix of requests a run sends: clients (hot and uniform), channels,
// contexts, and the load report the tact servers get first.

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// mix draws the calls: client ids, channels and contexts. Each caller
// has its own (a drawer), so that drawing does not contend.
type mix struct {
	o    *options
	seed atomic.Uint64
}

func newMix(o *options) *mix { return &mix{o: o} }

// drawer draws calls for one caller.
type drawer struct {
	o    *options
	rng  *rand.Rand
	zipf *rand.Zipf
}

func (m *mix) drawer() *drawer {
	rng := rand.New(rand.NewPCG(m.seed.Add(1), 2))
	return &drawer{o: m.o, rng: rng, zipf: rand.NewZipf(rng, m.o.zipf, 1, uint64(m.o.hot-1))}
}

// draw returns a call: a hot client (Zipf) or, past the hot share, one
// drawn uniformly from the population; phone calls carry the queue whose
// load tactload reports.
func (d *drawer) draw() *tactv1.DecideRequest {
	n := 1 + int(d.zipf.Uint64())
	if d.rng.Float64() >= d.o.hotShare {
		n = 1 + d.rng.IntN(d.o.population)
	}
	req := &tactv1.DecideRequest{ClientId: fmt.Sprintf(d.o.idFormat, n)}
	req.Channel = pick(d.rng, channels, func(c struct {
		ch tactv1.Channel
		w  float64
	}) float64 {
		return c.w
	}).ch
	if req.Channel == tactv1.Channel_CHANNEL_PHONE_INBOUND {
		req.Queue = loadQueue
	}
	req.Context = pick(d.rng, contexts, func(c struct {
		c *tactv1.InteractionContext
		w float64
	}) float64 {
		return c.w
	}).c
	return req
}

// loadQueue is the queue of the phone calls; tactload reports it calm.
const loadQueue = "retail"

var (
	channels = []struct {
		ch tactv1.Channel
		w  float64
	}{
		{tactv1.Channel_CHANNEL_PHONE_INBOUND, 0.5}, {tactv1.Channel_CHANNEL_WEB, 0.2}, {tactv1.Channel_CHANNEL_MOBILE_APP, 0.15},
		{tactv1.Channel_CHANNEL_BRANCH, 0.1}, {tactv1.Channel_CHANNEL_CHAT, 0.05},
	}
	contexts = []struct {
		c *tactv1.InteractionContext
		w float64
	}{
		{&tactv1.InteractionContext{Reason: tactv1.InteractionReason_INTERACTION_REASON_SALES_ENQUIRY, Stage: tactv1.InteractionStage_INTERACTION_STAGE_IN_PROGRESS}, 0.3},
		{&tactv1.InteractionContext{Reason: tactv1.InteractionReason_INTERACTION_REASON_SERVICE, Stage: tactv1.InteractionStage_INTERACTION_STAGE_RESOLVED}, 0.25},
		{&tactv1.InteractionContext{Reason: tactv1.InteractionReason_INTERACTION_REASON_SERVICE, Stage: tactv1.InteractionStage_INTERACTION_STAGE_IN_PROGRESS}, 0.15},
		{&tactv1.InteractionContext{Reason: tactv1.InteractionReason_INTERACTION_REASON_OTHER}, 0.25},
		{&tactv1.InteractionContext{Reason: tactv1.InteractionReason_INTERACTION_REASON_COMPLAINT}, 0.05},
	}
)

func pick[T any](rng *rand.Rand, items []T, weight func(T) float64) T {
	x := rng.Float64()
	for _, it := range items {
		if x -= weight(it); x < 0 {
			return it
		}
	}
	return items[len(items)-1]
}

// reportLoad reports the phone queue calm now and every 20 s until ctx
// ends (a report is stale after 2 minutes).
func reportLoad(ctx context.Context, grpcAddr string) error {
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	lc := tactv1.NewLoadServiceClient(conn)
	report := func() error {
		_, err := lc.ReportLoad(ctx, &tactv1.ReportLoadRequest{Queue: loadQueue, CallsWaiting: proto.Uint32(3), LongestWaitSeconds: proto.Float64(20), ServiceLevel: proto.Float64(0.92), AgentsAvailable: proto.Uint32(5)})
		return err
	}
	if err := report(); err != nil {
		conn.Close()
		return err
	}
	go func() {
		defer conn.Close()
		t := time.NewTicker(20 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = report() // the next tick tries again; a stale report only protects more
			}
		}
	}()
	return nil
}
