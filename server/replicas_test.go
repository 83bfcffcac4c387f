package server

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/features/redistest"
	"github.com/tact-nba/tact/model/demo"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// startReplicas starts n tactd sharing one Redis that holds the demo
// bank's clients: a redis-server of the test's own ("single"), or the
// package's Redis Cluster ("cluster") under a key prefix of the test's own.
func startReplicas(t *testing.T, mode string, n int, opts ...func(*Config)) []*testServer {
	t.Helper()
	rc := features.RedisConfig{Mode: mode, Prefix: "tact:"}
	if mode == "cluster" {
		rc.Addrs = redisCluster(t).Seeds()
		// A prefix of this run's own: the cluster outlives the test.
		rc.Prefix = strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	} else {
		rc.Addr = redistest.Start(t).Addr
	}
	seedRedis(t, rc)
	var out []*testServer
	for range n {
		out = append(out, startServer(t, Deps{}, func(c *Config, _ *io.Writer) {
			c.FeatureStore = "redis"
			c.Redis.Mode, c.Redis.Addr, c.Redis.Addrs, c.Redis.Prefix = rc.Mode, rc.Addr, rc.Addrs, rc.Prefix
			c.FeatureBudget = time.Second // a loaded CI host must not turn the answers degraded
			for _, o := range opts {
				o(c)
			}
		}))
	}
	return out
}

// seedRedis writes the demo bank's clients into the Redis rc names.
func seedRedis(t *testing.T, rc features.RedisConfig) {
	t.Helper()
	store, err := features.OpenRedis(t.Context(), rc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	bank, err := demo.New(demo.Seed)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.PutBatch(t.Context(), bank.Clients); err != nil {
		t.Fatal(err)
	}
}

// onEachRedis runs test against one redis-server and against the
// package's Redis Cluster.
func onEachRedis(t *testing.T, test func(t *testing.T, mode string)) {
	for _, mode := range []string{"single", "cluster"} {
		t.Run(mode, func(t *testing.T) { test(t, mode) })
	}
}

// TestReplicasShareTheLoadBoard: over three replicas, a busy report to one
// keeps a platinum client unpitched on the others within a second, and a
// calm report to another frees it on the rest; each replica's GetLoad
// shows the report another took. (Each replica had a board of its own: the
// ones that missed the busy report pitched.)
func TestReplicasShareTheLoadBoard(t *testing.T) { onEachRedis(t, replicasShareTheLoadBoard) }

func replicasShareTheLoadBoard(t *testing.T, mode string) {
	reps := startReplicas(t, mode, 3)
	a, b, c := reps[0], reps[1], reps[2]
	report := func(ts *testServer, waiting uint32) {
		t.Helper()
		if _, err := tactv1.NewLoadServiceClient(ts.conn).ReportLoad(t.Context(), &tactv1.ReportLoadRequest{Queue: "retail", CallsWaiting: proto.Uint32(waiting)}); err != nil {
			t.Fatal(err)
		}
	}
	// busyWithin reports whether the platinum client C00074 is held back as in
	// a busy period on ts, waiting up to a second for want.
	busyWithin := func(ts *testServer, want bool) bool {
		t.Helper()
		dec := tactv1.NewDecisionServiceClient(ts.conn)
		deadline := time.Now().Add(time.Second)
		for {
			d, err := dec.Decide(t.Context(), &tactv1.DecideRequest{ClientId: "C00074", Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND, Queue: "retail"})
			if err != nil {
				t.Fatal(err)
			}
			busy := d.GetAction() == tactv1.Action_ACTION_NO_OFFER && d.GetReasons()[0].GetCode() == tactv1.ReasonCode_REASON_CODE_BUSY_PERIOD
			if busy == want || time.Now().After(deadline) {
				return busy
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	report(b, 2)
	if busyWithin(b, false) {
		t.Fatal("a calm queue holds a platinum client back")
	}
	report(a, 40)
	for name, ts := range map[string]*testServer{"b": b, "c": c} {
		if !busyWithin(ts, true) {
			t.Errorf("a busy report to replica a: replica %s still pitches a platinum client after 1 s", name)
		}
	}
	l, err := tactv1.NewLoadServiceClient(b.conn).GetLoad(t.Context(), &tactv1.GetLoadRequest{Queue: "retail"})
	if err != nil || l.GetLoad().GetCallsWaiting() != 40 {
		t.Errorf("GetLoad on b: %v, %v; want a's report of 40 calls waiting", l.GetLoad(), err)
	}
	report(b, 2)
	for name, ts := range map[string]*testServer{"a": a, "c": c} {
		if busyWithin(ts, false) {
			t.Errorf("a calm report to replica b: replica %s still holds a platinum client back after 1 s", name)
		}
	}
}

// TestOutcomeOnAnyReplica: an outcome recorded on one replica for an offer
// another replica made is accepted (it was refused "unknown decision"),
// and the refusal's cool-down then holds on all three.
func TestOutcomeOnAnyReplica(t *testing.T) { onEachRedis(t, outcomeOnAnyReplica) }

func outcomeOnAnyReplica(t *testing.T, mode string) {
	reps := startReplicas(t, mode, 3)
	a, b, c := tactv1.NewDecisionServiceClient(reps[0].conn), tactv1.NewDecisionServiceClient(reps[1].conn), tactv1.NewDecisionServiceClient(reps[2].conn)
	req := &tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_BRANCH}
	// A first call opens the pool's connections, which can miss the
	// 50 ms budget on a loaded host: a degraded no-offer (nothing
	// reserved) is then the right answer, and the call is made again.
	var d *tactv1.DecideResponse
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		var err error
		d, err = a.Decide(t.Context(), req)
		if err == nil && d.GetAction() == tactv1.Action_ACTION_OFFER_NOW {
			break
		}
		if err != nil || !d.GetDegraded() || time.Since(start) > 5*time.Second {
			t.Fatalf("Decide on a: %v degraded=%v %v, %v; want an offer", d.GetAction(), d.GetDegraded(), d.GetReasons(), err)
		}
	}
	product := d.GetOffers()[0].GetProductId()
	out, err := b.RecordOutcome(t.Context(), &tactv1.RecordOutcomeRequest{DecisionId: d.GetDecisionId(), ProductId: product, Outcome: tactv1.Outcome_OUTCOME_DECLINED})
	if err != nil {
		t.Fatalf("outcome on b for a's decision: %v", err)
	}
	if again, err := a.RecordOutcome(t.Context(), &tactv1.RecordOutcomeRequest{DecisionId: d.GetDecisionId(), ProductId: product, Outcome: tactv1.Outcome_OUTCOME_DECLINED}); err != nil || out.GetDecisionId() != again.GetDecisionId() {
		t.Errorf("the same outcome on a: %v", err)
	}
	for name, rep := range map[string]tactv1.DecisionServiceClient{"a": a, "b": b, "c": c} {
		d, err := rep.Decide(t.Context(), &tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_WEB, Explain: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range d.GetOffers() {
			if o.GetProductId() == product {
				t.Errorf("replica %s offers %s again right after the client declined it", name, product)
			}
		}
	}
	if _, err := b.RecordOutcome(t.Context(), &tactv1.RecordOutcomeRequest{DecisionId: d.GetDecisionId(), ProductId: "no_such_product", Outcome: tactv1.Outcome_OUTCOME_ACCEPTED}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("outcome for a product the decision did not offer: %v, want InvalidArgument", err)
	}
}

// TestCapsAcrossReplicas: 50 concurrent decisions for one client spread
// over three replicas never give more offers than the client's caps on
// the channel allow (the caps' check and reservation are one script in
// Redis).
func TestCapsAcrossReplicas(t *testing.T) { onEachRedis(t, capsAcrossReplicas) }

func capsAcrossReplicas(t *testing.T, mode string) {
	reps := startReplicas(t, mode, 3)
	var wg sync.WaitGroup
	var mu sync.Mutex
	offers, tier := 0, ""
	for i := range 50 {
		wg.Go(func() {
			d, err := tactv1.NewDecisionServiceClient(reps[i%3].conn).Decide(t.Context(), &tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_WEB, MaxOffers: 3})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			offers += len(d.GetOffers())
			tier = d.GetTier()
		})
	}
	wg.Wait()
	allowed := -1
	for _, c := range reps[0].engine.Policy().Tier(tier).CapsFor("web") {
		if allowed < 0 || c.Max < allowed {
			allowed = c.Max
		}
	}
	if offers == 0 || offers > allowed {
		t.Errorf("50 concurrent decisions over 3 replicas gave %d offers; the %s cap on web allows %d", offers, tier, allowed)
	}
}

// TestLogsSharedAcrossReplicas: decisions and outcomes made on three
// replicas are all in the export of each, and an experiment's results are
// the same from each and count every replica's decisions (each replica
// counted its own).
func TestLogsSharedAcrossReplicas(t *testing.T) { onEachRedis(t, logsSharedAcrossReplicas) }

func logsSharedAcrossReplicas(t *testing.T, mode string) {
	exps := filepath.Join(t.TempDir(), "experiments.json")
	if err := os.WriteFile(exps, []byte(`{"features": {"bar": {"defaultValue": {}, "rules": [{"key": "bar-test",
		"variations": [{}, {"tiers": {"standard": {"min_propensity": 0.2}}}], "weights": [0.5, 0.5], "coverage": 1,
		"hashAttribute": "id", "hashVersion": 2, "seed": "bar-test"}]}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	reps := startReplicas(t, mode, 3, func(c *Config) { c.ExperimentsFile = exps })
	decisions := map[string]bool{}
	outcomes := map[string]bool{}
	exposed := 0
	for i := range 60 {
		dec := tactv1.NewDecisionServiceClient(reps[i%3].conn)
		d, err := dec.Decide(t.Context(), &tactv1.DecideRequest{ClientId: fmt.Sprintf("C%05d", 1+i*7), Channel: tactv1.Channel_CHANNEL_BRANCH})
		if err != nil {
			t.Fatal(err)
		}
		decisions[d.GetDecisionId()] = true
		if len(d.GetExperiments()) > 0 {
			exposed++
		}
		if d.GetAction() == tactv1.Action_ACTION_OFFER_NOW {
			// The outcome on the next replica.
			p := d.GetOffers()[0].GetProductId()
			if _, err := tactv1.NewDecisionServiceClient(reps[(i+1)%3].conn).RecordOutcome(t.Context(), &tactv1.RecordOutcomeRequest{DecisionId: d.GetDecisionId(), ProductId: p, Outcome: tactv1.Outcome_OUTCOME_ACCEPTED}); err != nil {
				t.Fatal(err)
			}
			outcomes[d.GetDecisionId()+"/"+p] = true
		}
	}
	if len(outcomes) == 0 || exposed == 0 {
		t.Fatalf("%d outcomes, %d exposed decisions: the test needs both", len(outcomes), exposed)
	}
	// Each replica's log writes its queued decisions every 50 ms: an
	// export includes other replicas' decisions made before that.
	time.Sleep(200 * time.Millisecond)
	var first *tactv1.GetExperimentResultsResponse
	for i, ts := range reps {
		exp := tactv1.NewExportServiceClient(ts.conn)
		got := map[string]bool{}
		ds, err := exp.ExportDecisions(t.Context(), &tactv1.ExportDecisionsRequest{Since: timestamppb.New(time.Now().Add(-time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		for m, err := ds.Recv(); err == nil; m, err = ds.Recv() {
			got[m.GetDecision().GetDecisionId()] = true
		}
		for id := range decisions {
			if !got[id] {
				t.Errorf("replica %d's export lacks decision %s (of %d made over the replicas; it has %d)", i, id, len(decisions), len(got))
				break
			}
		}
		gotOut := map[string]bool{}
		os, err := exp.ExportOutcomes(t.Context(), &tactv1.ExportOutcomesRequest{Since: timestamppb.New(time.Now().Add(-time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		for m, err := os.Recv(); err == nil; m, err = os.Recv() {
			gotOut[m.GetOutcome().GetDecisionId()+"/"+m.GetOutcome().GetProductId()] = true
		}
		if len(gotOut) != len(outcomes) {
			t.Errorf("replica %d exports %d outcomes, want the %d recorded over the replicas", i, len(gotOut), len(outcomes))
		}
		r, err := tactv1.NewExperimentServiceClient(ts.conn).GetExperimentResults(t.Context(), &tactv1.GetExperimentResultsRequest{Experiment: "bar-test"})
		if err != nil {
			t.Fatal(err)
		}
		n := int64(0)
		for _, v := range r.GetVariations() {
			n += v.GetDecisions()
		}
		if n != int64(exposed) {
			t.Errorf("replica %d counts %d decisions in the experiment, want all %d", i, n, exposed)
		}
		if first == nil {
			first = r
		} else if !proto.Equal(first, r) {
			t.Errorf("replica %d's results differ from replica 0's:\n%v\n%v", i, r, first)
		}
	}
}
