package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tact-nba/tact/model"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// A simulated contact centre: a seeded hidden world decides whether a
// pitched client accepts, with true probabilities Tact never sees. Tact is
// driven over its real gRPC API: features imported, decisions asked,
// outcomes recorded.

const simSchema = `id_column: client_id
features:
  - {name: consent_offers, type: bool, default: "false"}
  - {name: balance, type: number}
  - {name: income, type: number}
  - {name: age_band, type: string}
  - {name: digital, type: bool, default: "false"}
  - {name: holds_card, type: bool, default: "false"}
  - {name: holds_loan, type: bool, default: "false"}
  - {name: holds_savings, type: bool, default: "false"}
  - {name: holds_robo, type: bool, default: "false"}
`

// Four products of equal value, so that the best choice is the likeliest
// acceptance; robo (a robo-adviser) is new: no model, no data.
const simCatalog = `currency: EUR
products:
  - {id: card, name: Card, value: 100, channels: [all], handling_seconds: 0}
  - {id: loan, name: Loan, value: 100, channels: [all], handling_seconds: 0}
  - {id: savings, name: Savings, value: 100, channels: [all], handling_seconds: 0}
  - {id: robo, name: Robo-adviser, value: 100, channels: [all], handling_seconds: 0}
`

// Gold clients are protected: a bar of 0.30 that exploration never goes
// below.
const simPolicy = `tiers:
  - name: gold
    when: "balance >= 100000"
    protected: true
    min_propensity: 0.30
    cool_down_days: 30
    pitch_when_busy: false
    caps:
      default: {per_7_days: 3, per_30_days: 10}
    contexts:
      sales_enquiry: [any]
      other: [any]
      service: [resolved, wrap_up]
  - name: standard
    min_propensity: 0.10
    cool_down_days: 30
    pitch_when_busy: true
    caps:
      default: {per_7_days: 3, per_30_days: 10}
    contexts:
      sales_enquiry: [any]
      other: [any]
      service: [resolved, wrap_up]
arbitration:
  channel_weights: {}
  stage_weights: {}
  levers: {}
  cost_per_handling_second: 0
  load_cost_weight: 0
  later_fatigue: 0.25
load:
  busy_when: {calls_waiting: 20, longest_wait_seconds: 120, service_level: 0.80}
  calm_when: {calls_waiting: 10, longest_wait_seconds: 60, service_level: 0.85}
  stale_after: 2m
  time_zone: UTC
  busy_windows: []
timing:
  contact_hours_feature: "contact_hours_{channel}"
`

var simProducts = []string{"card", "loan", "savings", "robo"}

// simClient is one client of the hidden world.
type simClient struct {
	id       string
	features map[string]*tactv1.FeatureValue
	gold     bool
	p        map[string]float64 // true acceptance per product
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// simWorld makes n clients with seed.
func simWorld(n int, seed uint64) []simClient {
	rng := rand.New(rand.NewPCG(seed, 7))
	bands := []string{"young", "middle", "senior"}
	out := make([]simClient, n)
	for i := range out {
		band := bands[rng.IntN(3)]
		income := float64(1 + rng.IntN(5))
		digital := rng.Float64() < 0.35
		balance := math.Round(math.Exp(9 + 1.5*rng.NormFloat64()))
		is := func(b string) float64 {
			if band == b {
				return 1
			}
			return 0
		}
		dig := 0.0
		if digital {
			dig = 1
		}
		out[i] = simClient{
			id: fmt.Sprintf("S%06d", i), gold: balance >= 100000,
			features: map[string]*tactv1.FeatureValue{
				"consent_offers": {Kind: &tactv1.FeatureValue_Bool{Bool: true}},
				"balance":        {Kind: &tactv1.FeatureValue_Number{Number: balance}},
				"income":         {Kind: &tactv1.FeatureValue_Number{Number: income}},
				"age_band":       {Kind: &tactv1.FeatureValue_String_{String_: band}},
				"digital":        {Kind: &tactv1.FeatureValue_Bool{Bool: digital}},
			},
			p: map[string]float64{
				"card":    sigmoid(-2.4 + 1.2*is("young") + 0.25*income),
				"loan":    sigmoid(-2.6 + 1.3*is("middle") + 0.2*income),
				"savings": sigmoid(-1.6 + 1.2*is("senior") - 0.2*income),
				"robo":    sigmoid(-3.6 + 2.6*dig + 0.9*is("young") + 0.25*income),
			},
		}
	}
	return out
}

// simBundle writes a bundle that knows each old product's average
// acceptance and nothing else (an intercept), and nothing of robo.
func simBundle(t *testing.T, dir string) {
	t.Helper()
	man := model.Manifest{Format: model.FormatBundle, Version: "sim-1", Models: map[string]model.ManifestModel{}}
	for _, id := range []string{"card", "loan", "savings"} {
		lm, err := model.NewLogistic([]model.Input{{Name: "income", Kind: model.Numeric, Std: 1}}, []float64{0}, -1.5, model.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := lm.WriteJSON(&buf); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, id+".json"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		man.Models[id] = model.ManifestModel{Type: "logistic", File: id + ".json"}
	}
	raw, err := json.Marshal(man)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, model.ManifestFile), raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// simSeed is the simulation's seed: 1, or TACT_SIM_SEED to try others.
func simSeed(t *testing.T) uint64 {
	v := os.Getenv("TACT_SIM_SEED")
	if v == "" {
		return 1
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("TACT_SIM_SEED=%q: %v", v, err)
	}
	return n
}

// simClock is the simulation's time, moved on by the driver.
type simClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *simClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *simClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// startSim starts tactd on the simulated bank with extra configuration,
// and imports the world's clients.
func startSim(t *testing.T, world []simClient, clock *simClock, seed uint64, opt func(*Config)) *testServer {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"schema.yaml": simSchema, "catalog.yaml": simCatalog, "policy.yaml": simPolicy}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bdir := filepath.Join(dir, "models")
	if err := os.MkdirAll(filepath.Join(bdir, "current"), 0o755); err != nil {
		t.Fatal(err)
	}
	simBundle(t, filepath.Join(bdir, "current"))
	// The policy's explorations are drawn from a seeded source.
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, 11))
	draw := func() float64 {
		mu.Lock()
		defer mu.Unlock()
		return rng.Float64()
	}
	srv := startServer(t, Deps{Now: clock.now, Rand: draw}, func(c *Config, _ *io.Writer) {
		c.Demo = "false"
		c.FeatureSchema, c.CatalogFile, c.PolicyFile, c.ModelDir = filepath.Join(dir, "schema.yaml"), filepath.Join(dir, "catalog.yaml"),
			filepath.Join(dir, "policy.yaml"), bdir
		if opt != nil {
			opt(c)
		}
	})
	fc := tactv1.NewFeatureServiceClient(srv.conn)
	for from := 0; from < len(world); from += 1000 {
		req := &tactv1.BatchPutClientFeaturesRequest{}
		for _, c := range world[from:min(from+1000, len(world))] {
			req.Clients = append(req.Clients, &tactv1.ClientFeatures{ClientId: c.id, Features: c.features})
		}
		if _, err := fc.BatchPutClientFeatures(t.Context(), req); err != nil {
			t.Fatal(err)
		}
	}
	return srv
}

// simPitch is one offer made now, with the true probability of the
// product offered first.
type simPitch struct {
	client  *simClient
	product string
	p       float64
	took    bool
}

// simCalls makes n inbound sales calls from clients drawn from world,
// answers each first offer as the hidden world decides, and returns the
// pitches and the calls' clients. check, when set, sees every explained
// decision.
func simCalls(t *testing.T, srv *testServer, world []simClient, clock *simClock, rng *rand.Rand, n int,
	check func(*simClient, *tactv1.DecideResponse)) (pitches []simPitch, called []*simClient) {
	t.Helper()
	dc := tactv1.NewDecisionServiceClient(srv.conn)
	for range n {
		c := &world[rng.IntN(len(world))]
		called = append(called, c)
		clock.add(8 * time.Hour / 3000) // 3,000 calls in an eight-hour day
		d, err := dc.Decide(t.Context(), &tactv1.DecideRequest{ClientId: c.id, Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND,
			Context: &tactv1.InteractionContext{Reason: tactv1.InteractionReason_INTERACTION_REASON_SALES_ENQUIRY}, Explain: check != nil})
		if err != nil {
			t.Fatal(err)
		}
		if check != nil {
			check(c, d)
		}
		if d.GetAction() != tactv1.Action_ACTION_OFFER_NOW {
			continue
		}
		prod := d.GetOffers()[0].GetProductId()
		p := c.p[prod]
		took := rng.Float64() < p
		outcome := tactv1.Outcome_OUTCOME_DECLINED
		if took {
			outcome = tactv1.Outcome_OUTCOME_ACCEPTED
		}
		if _, err := dc.RecordOutcome(t.Context(), &tactv1.RecordOutcomeRequest{DecisionId: d.GetDecisionId(), ProductId: prod, Outcome: outcome}); err != nil {
			t.Fatal(err)
		}
		pitches = append(pitches, simPitch{client: c, product: prod, p: p, took: took})
	}
	return pitches, called
}

// meanTrue is the mean true acceptance of pitches (all, or of one
// product), and how many there were.
func meanTrue(ps []simPitch, product string) (float64, int) {
	var s float64
	n := 0
	for _, p := range ps {
		if product == "" || p.product == product {
			s += p.p
			n++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return s / float64(n), n
}

// oracleTop is the acceptance an oracle reaches with k pitches of product
// among the calls: the k calls with the highest true probability.
func oracleTop(called []*simClient, product string, k int) float64 {
	ps := make([]float64, len(called))
	for i, c := range called {
		ps[i] = c.p[product]
	}
	slices.Sort(ps)
	slices.Reverse(ps)
	k = min(k, len(ps))
	var s float64
	for _, p := range ps[:k] {
		s += p
	}
	return s / float64(k)
}

// TestSimulatedCentreLearns is the learning loop's proof (must-show 1 and
// 5 of the learning issue). With learning adaptive and exploration on
// (auto), over simulated days of 1,500 calls from 200,000 clients (few
// call twice):
//   - robo, in the catalog with no model and no data, once it has 2,000
//     outcomes, is pitched on the next day with at least 90% of the
//     acceptance an oracle that knows the true probabilities reaches with
//     the same number of robo pitches among the same calls;
//   - Tact's acceptance (the mean true probability of what it offered)
//     rises day over day over the first three days, while it learns (it
//     levels off after, once the models have converged: logged);
//   - no offer, explored or not, breaks a gate: every offered product
//     passed all of its gates in the explained decision, and no gold
//     client is offered a product below the gold bar.
func TestSimulatedCentreLearns(t *testing.T) {
	if raceEnabled {
		t.Skip("12,000 calls in sequence: too slow under -race; the plain test run covers it")
	}
	seed := simSeed(t)
	world := simWorld(200000, seed)
	clock := &simClock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	srv := startSim(t, world, clock, seed, func(c *Config) {
		c.Learning, c.LearningPrior = "adaptive", 0.2
	})
	rng := rand.New(rand.NewPCG(seed, 3))
	decisions, explored, broken := 0, 0, 0
	check := func(c *simClient, d *tactv1.DecideResponse) {
		decisions++
		if len(d.GetOffers()) == 0 {
			return
		}
		o := d.GetOffers()[0]
		for _, cand := range d.GetCandidates() {
			if cand.GetProductId() != o.GetProductId() {
				continue
			}
			for _, g := range cand.GetGates() {
				if !g.GetPassed() {
					broken++
					t.Errorf("client %s offered %s, which failed gate %s", c.id, o.GetProductId(), g.GetName())
				}
			}
		}
		if c.gold && o.GetPropensity() < 0.30 {
			broken++
			t.Errorf("gold client %s offered %s at %.2f, below the gold bar", c.id, o.GetProductId(), o.GetPropensity())
		}
		for _, r := range d.GetReasons() {
			if bytes.Contains([]byte(r.GetMessage()), []byte("(exploration")) {
				explored++
			}
		}
	}
	// Days of 1,500 calls until robo has 2,000 outcomes; then 4,500 calls
	// more to judge robo by.
	const perDay, learnDays = 1500, 3
	var daily []float64
	roboOutcomes := 0
	var after []simPitch
	var afterCalls []*simClient
	for day := 1; after == nil && day <= 10; day++ {
		n := perDay
		if roboOutcomes >= 2000 {
			n = 4500
		}
		ps, called := simCalls(t, srv, world, clock, rng, n, check)
		clock.add(16 * time.Hour)
		acc, offers := meanTrue(ps, "")
		took := 0
		for _, p := range ps {
			if p.took {
				took++
			}
		}
		robo, rn := meanTrue(ps, "robo")
		t.Logf("day %d: %d calls, %d offers, mean true acceptance %.4f, accepted %.4f; robo %d offers at %.4f (oracle %.4f), %d robo outcomes before",
			day, n, offers, acc, float64(took)/float64(offers), rn, robo, oracleTop(called, "robo", rn), roboOutcomes)
		daily = append(daily, acc)
		if roboOutcomes >= 2000 {
			after, afterCalls = ps, called
		}
		roboOutcomes += rn
	}
	if testing.Verbose() {
		dc := tactv1.NewDecisionServiceClient(srv.conn)
		for i := range 12 {
			c := &world[i]
			var got []string
			for _, p := range simProducts {
				got = append(got, fmt.Sprintf("%s %.2f/%.2f", p, propensityOf(t, dc, c.id, p), c.p[p]))
			}
			t.Logf("%s %v %v: %v", c.id, c.features["age_band"], c.features["digital"], got)
		}
	}
	for i := 1; i < learnDays; i++ {
		if daily[i] <= daily[i-1] {
			t.Errorf("day %d's acceptance %.4f does not rise over day %d's %.4f", i+1, daily[i], i, daily[i-1])
		}
	}
	if after == nil {
		t.Fatalf("robo had only %d outcomes in 10 days: never 2,000", roboOutcomes)
	}
	got, k := meanTrue(after, "robo")
	oracle := oracleTop(afterCalls, "robo", k)
	t.Logf("robo after 2,000 outcomes: %d pitches at %.4f, oracle %.4f (%.1f%%); %d decisions checked, %d explored, %d broke a gate",
		k, got, oracle, 100*got/oracle, decisions, explored, broken)
	if got < 0.9*oracle {
		t.Errorf("robo's acceptance %.4f is below 90%% of the oracle's %.4f", got, oracle)
	}
	if decisions < 10000 || explored == 0 {
		t.Errorf("%d decisions checked, %d explored: want 10,000 decisions with explorations among them", decisions, explored)
	}
}
