package server

import (
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tact-nba/tact/features/redistest"
	"github.com/tact-nba/tact/model/policy"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// TestCapsHoldUnderConcurrency: 200 concurrent Decide + Presented pairs for
// one client never exceed the weekly cap of 2 on the phone, with the
// contact history in the bbolt file, in Redis, and in one Redis shared by
// two servers (each with its own cache and data directory).
func TestCapsHoldUnderConcurrency(t *testing.T) {
	def := string(policy.DefaultYAML())
	// 200 calls at once queue for Redis connections (and run slowly under
	// -race): a generous budget keeps this a test of the caps, not of
	// latency (past the budget the answer is a safe, degraded no offer).
	slack := func(c *Config, _ *io.Writer) { c.FeatureBudget = 5 * time.Second }
	t.Run("bolt", func(t *testing.T) {
		e := startScenarioServer(t, def, slack)
		e.client(t, "CAP1", nil)
		checkCap(t, "CAP1", []*scenarioEnv{e})
	})
	t.Run("redis", func(t *testing.T) {
		rs := redistest.Start(t)
		e := startScenarioServer(t, def, slack, func(c *Config, _ *io.Writer) { c.FeatureStore, c.Redis.Addr = "redis", rs.Addr })
		e.client(t, "CAP2", nil)
		checkCap(t, "CAP2", []*scenarioEnv{e})
	})
	t.Run("two servers, one redis", func(t *testing.T) {
		rs := redistest.Start(t)
		useRedis := func(c *Config, _ *io.Writer) { c.FeatureStore, c.Redis.Addr = "redis", rs.Addr }
		a, b := startScenarioServer(t, def, slack, useRedis), startScenarioServer(t, def, slack, useRedis)
		a.client(t, "CAP3", nil) // written to Redis: b reads it there
		checkCap(t, "CAP3", []*scenarioEnv{a, b})
	})
}

// checkCap runs 200 concurrent pairs spread over the servers and checks
// that exactly the cap's worth of offers was made and presented.
func checkCap(t *testing.T, id string, envs []*scenarioEnv) {
	t.Helper()
	const pairs, weeklyCap = 200, 2 // the default policy's standard tier
	var offered, presented, failed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{}) // all at once, to make collisions likely
	for i := range pairs {
		e := envs[i%len(envs)]
		wg.Go(func() {
			<-start
			d, err := e.dec.Decide(t.Context(), &tactv1.DecideRequest{ClientId: id, Channel: inbound, MaxOffers: 3})
			if err != nil {
				failed.Add(1)
				t.Errorf("Decide: %v", err)
				return
			}
			for _, o := range d.GetOffers() {
				offered.Add(1)
				_, err := e.dec.RecordOutcome(t.Context(), &tactv1.RecordOutcomeRequest{
					DecisionId: d.GetDecisionId(), ProductId: o.GetProductId(), Outcome: tactv1.Outcome_OUTCOME_PRESENTED,
				})
				if err != nil {
					t.Errorf("RecordOutcome: %v", err)
					continue
				}
				presented.Add(1)
			}
			if d.GetAction() == tactv1.Action_ACTION_NO_OFFER && d.GetReasons()[0].GetCode() != tactv1.ReasonCode_REASON_CODE_CAP_REACHED {
				t.Errorf("no offer for another reason than the cap: %v", d.GetReasons())
			}
		})
	}
	close(start)
	wg.Wait()
	t.Logf("%d pairs over %d server(s): %d offers made, %d presented, %d calls failed", pairs, len(envs), offered.Load(), presented.Load(), failed.Load())
	if offered.Load() > weeklyCap || presented.Load() > weeklyCap {
		t.Errorf("%d offers made and %d presented: the cap of %d was exceeded", offered.Load(), presented.Load(), weeklyCap)
	}
	if offered.Load() < weeklyCap {
		t.Errorf("%d offers made: the cap of %d was not used up (propensity 0.88, nothing else in the way)", offered.Load(), weeklyCap)
	}
	for _, e := range envs {
		if d := e.decide(t, &tactv1.DecideRequest{ClientId: id, Channel: inbound}); d.GetReasons()[0].GetCode() != tactv1.ReasonCode_REASON_CODE_CAP_REACHED {
			t.Errorf("after the run: %v, want CAP_REACHED on every server", d.GetReasons())
		}
	}
}
