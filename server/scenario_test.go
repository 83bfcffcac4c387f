package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model"
	"github.com/tact-nba/tact/model/policy"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// The scenario bank: five products whose propensities the tests set
// directly (the model of product p reads the feature z_p: propensity =
// sigmoid(z_p)), the default policy, and a clock the tests move.
const scenarioSchema = `
features:
  - {name: consent_offers, type: bool}
  - {name: consent_outbound, type: bool}
  - {name: income, type: number}
  - {name: balance, type: number}
  - {name: tier, type: string}
  - {name: days_to_maturity, type: number}
  - {name: payday, type: number}
  - {name: contact_hours_phone_outbound, type: string}
  - {name: holds_card, type: bool}
  - {name: holds_loan, type: bool}
  - {name: holds_fund, type: bool}
  - {name: holds_upgrade, type: bool}
  - {name: holds_insurance, type: bool}
  - {name: z_card, type: number}
  - {name: z_loan, type: number}
  - {name: z_fund, type: number}
  - {name: z_upgrade, type: number}
  - {name: z_insurance, type: number}
`

const scenarioCatalog = `
currency: EUR
products:
  - {id: card, name: Card, value: 100, channels: [all], cool_down_days: 30, handling_seconds: 30}
  - id: loan
    name: Loan
    value: 300
    channels: [phone_inbound, phone_outbound, branch]
    eligibility: [{when: "income >= 1000", why: "income below 1,000"}]
    cool_down_days: 60
    handling_seconds: 120
  - id: fund
    name: Fund
    value: 400
    channels: [phone_inbound, phone_outbound, branch, web]
    handling_seconds: 60
    timing: {need: {days_feature: days_to_maturity, lead_days: 14, lag_days: 30, what: their deposit matures}}
  - id: upgrade
    name: Upgrade
    value: 200
    channels: [all]
    handling_seconds: 30
    timing: {payday: {day_feature: payday, within_days: 4, what: payday}}
  - {id: insurance, name: Insurance, value: 20, channels: [all], handling_seconds: 300}
`

var scenarioProducts = []string{"card", "loan", "fund", "upgrade", "insurance"}

// monday is 14:00 UTC on Monday 2026-11-23, outside the busy windows.
var monday = time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// brokenSource fails every read of a client whose id starts with
// "broken", as a store that cannot answer.
type brokenSource struct{ features.Source }

func (b brokenSource) Get(ctx context.Context, id string) (features.Record, error) {
	if strings.HasPrefix(id, "broken") {
		return features.Record{}, errors.New("store unreachable")
	}
	return b.Source.Get(ctx, id)
}

type scenarioEnv struct {
	ts    *testServer
	clock *testClock
	dec   tactv1.DecisionServiceClient
	feat  tactv1.FeatureServiceClient
	load  tactv1.LoadServiceClient
}

// writeScenarioBank writes the schema, catalog, policy and bundle files
// into dir and points cfg at them.
func writeScenarioBank(t *testing.T, dir, policyYAML string, cfg *Config) {
	t.Helper()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg.FeatureSchema = write("schema.yaml", []byte(scenarioSchema))
	cfg.CatalogFile = write("catalog.yaml", []byte(scenarioCatalog))
	cfg.PolicyFile = write("policy.yaml", []byte(policyYAML))
	man := model.Manifest{Format: model.FormatBundle, Version: "scenario-1", Models: map[string]model.ManifestModel{}}
	for _, id := range scenarioProducts {
		lm, err := model.NewLogistic([]model.Input{{Name: "z_" + id, Kind: model.Numeric, Std: 1}}, []float64{1}, 0, model.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := lm.WriteJSON(&buf); err != nil {
			t.Fatal(err)
		}
		write("models/current/"+id+".json", buf.Bytes())
		man.Models[id] = model.ManifestModel{Type: "logistic", File: id + ".json"}
	}
	raw, err := json.Marshal(man)
	if err != nil {
		t.Fatal(err)
	}
	write("models/current/bundle.json", raw)
	cfg.ModelDir = filepath.Join(dir, "models")
	cfg.Demo = "false"
}

func startScenarioServer(t *testing.T, policyYAML string, opts ...func(*Config, *io.Writer)) *scenarioEnv {
	t.Helper()
	return startScenarioServerDrawing(t, policyYAML, nil, opts...)
}

// startScenarioServerDrawing is startScenarioServer with the explorations
// drawn from draw.
func startScenarioServerDrawing(t *testing.T, policyYAML string, draw func() float64, opts ...func(*Config, *io.Writer)) *scenarioEnv {
	t.Helper()
	clock := &testClock{t: monday}
	dir := t.TempDir()
	ts := startServer(t, Deps{Now: clock.Now, Rand: draw, WrapFeatures: func(s features.Source) features.Source { return brokenSource{s} }},
		append([]func(*Config, *io.Writer){func(c *Config, _ *io.Writer) { writeScenarioBank(t, dir, policyYAML, c) }}, opts...)...)
	return &scenarioEnv{
		ts: ts, clock: clock,
		dec:  tactv1.NewDecisionServiceClient(ts.conn),
		feat: tactv1.NewFeatureServiceClient(ts.conn),
		load: tactv1.NewLoadServiceClient(ts.conn),
	}
}

func fbool(b bool) *tactv1.FeatureValue {
	return &tactv1.FeatureValue{Kind: &tactv1.FeatureValue_Bool{Bool: b}}
}
func text(s string) *tactv1.FeatureValue {
	return &tactv1.FeatureValue{Kind: &tactv1.FeatureValue_String_{String_: s}}
}

// z is the z-value that gives propensity p.
func z(p float64) *tactv1.FeatureValue { return num(math.Log(p / (1 - p))) }

// client stores a consenting standard client whose only likely product is
// the card (0.88), with the given features on top.
func (e *scenarioEnv) client(t *testing.T, id string, vals map[string]*tactv1.FeatureValue) {
	t.Helper()
	fs := map[string]*tactv1.FeatureValue{
		"consent_offers": fbool(true), "income": num(2000), "balance": num(1000),
		"z_card": z(0.88), "z_loan": z(0.01), "z_fund": z(0.01), "z_upgrade": z(0.01), "z_insurance": z(0.01),
	}
	for k, v := range vals {
		fs[k] = v
	}
	if _, err := e.feat.PutClientFeatures(t.Context(), &tactv1.PutClientFeaturesRequest{ClientId: id, Features: fs}); err != nil {
		t.Fatalf("PutClientFeatures %s: %v", id, err)
	}
}

func (e *scenarioEnv) decide(t *testing.T, req *tactv1.DecideRequest) *tactv1.DecideResponse {
	t.Helper()
	resp, err := e.dec.Decide(t.Context(), req)
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	return resp
}

// offerAndOutcome makes a decision at a time on a channel and records an
// outcome for its first offer ("" records none).
func (e *scenarioEnv) offerAndOutcome(t *testing.T, id string, at time.Time, ch tactv1.Channel, outcome tactv1.Outcome, why tactv1.NotPresentedReason) {
	t.Helper()
	e.clock.Set(at)
	d := e.decide(t, &tactv1.DecideRequest{ClientId: id, Channel: ch})
	if d.GetAction() != tactv1.Action_ACTION_OFFER_NOW {
		t.Fatalf("setup decision at %v: %v %v", at, d.GetAction(), d.GetReasons())
	}
	if outcome == tactv1.Outcome_OUTCOME_UNSPECIFIED {
		return
	}
	_, err := e.dec.RecordOutcome(t.Context(), &tactv1.RecordOutcomeRequest{
		DecisionId: d.GetDecisionId(), ProductId: d.GetOffers()[0].GetProductId(), Outcome: outcome, NotPresentedReason: why,
	})
	if err != nil {
		t.Fatalf("RecordOutcome: %v", err)
	}
}

func (e *scenarioEnv) report(t *testing.T, queue string, waiting uint32, sl float64, asOf time.Time) {
	t.Helper()
	_, err := e.load.ReportLoad(t.Context(), &tactv1.ReportLoadRequest{Queue: queue, CallsWaiting: &waiting, ServiceLevel: &sl, AsOf: timestamppb.New(asOf)})
	if err != nil {
		t.Fatalf("ReportLoad: %v", err)
	}
}

var (
	inbound  = tactv1.Channel_CHANNEL_PHONE_INBOUND
	outbound = tactv1.Channel_CHANNEL_PHONE_OUTBOUND
	web      = tactv1.Channel_CHANNEL_WEB
	branch   = tactv1.Channel_CHANNEL_BRANCH
	platinum = map[string]*tactv1.FeatureValue{"balance": num(300_000)}
)

func ctxOf(r tactv1.InteractionReason, s tactv1.InteractionStage) *tactv1.InteractionContext {
	return &tactv1.InteractionContext{Reason: r, Stage: s}
}

// TestPolicyScenarios runs the decision policy's rules, one scenario
// each and the combinations that matter, over the real gRPC API.
// TestPolicyScenarios runs the policy's scenarios as they are, then again
// with exploration on at its most (every decision with two or more
// products to offer makes another than the best its first offer): every
// scenario's action, reason, tier and failed gate hold; an explored first
// offer may be another product, but one that passed every gate.
func TestPolicyScenarios(t *testing.T) {
	for _, exploring := range []bool{false, true} {
		t.Run(map[bool]string{false: "exploration off", true: "exploration on"}[exploring], func(t *testing.T) {
			policyScenarios(t, exploring)
		})
	}
}

func policyScenarios(t *testing.T, exploring bool) {
	withWindows := strings.Replace(string(policy.DefaultYAML()), "busy_windows: []",
		`busy_windows: [{days: [mon, tue, wed, thu, fri], from: "09:00", to: "11:00"}]`, 1)
	explore := func(c *Config, _ *io.Writer) {
		if exploring {
			c.Exploration, c.ExplorationRate = "on", 1
		}
	}
	// Drawing 0 explores whenever it can: the first offer is the last of
	// the products that passed every gate.
	var draw func() float64
	if exploring {
		draw = func() float64 { return 0 }
	}
	envs := map[string]*scenarioEnv{
		"default":  startScenarioServerDrawing(t, string(policy.DefaultYAML()), draw, explore),
		"schedule": startScenarioServerDrawing(t, withWindows, draw, explore),
	}
	explored := 0
	defer func() {
		if exploring {
			t.Logf("%d scenarios explored", explored)
			if explored == 0 {
				t.Error("no scenario explored: exploration at its most did nothing")
			}
		}
	}()
	type want struct {
		action  tactv1.Action
		reason  tactv1.ReasonCode
		offers  []string
		tier    string
		gate    string // "product/gate" that must have failed (explain)
		check   func(t *testing.T, d *tactv1.DecideResponse)
		degrade bool
	}
	now, later, none := tactv1.Action_ACTION_OFFER_NOW, tactv1.Action_ACTION_OFFER_LATER, tactv1.Action_ACTION_NO_OFFER
	const (
		high   = tactv1.ReasonCode_REASON_CODE_HIGH_PROPENSITY
		busy   = tactv1.ReasonCode_REASON_CODE_BUSY_PERIOD
		capped = tactv1.ReasonCode_REASON_CODE_CAP_REACHED
		cool   = tactv1.ReasonCode_REASON_CODE_COOL_DOWN
	)
	tests := []struct {
		name   string
		env    string // "default" when empty
		client map[string]*tactv1.FeatureValue
		setup  func(t *testing.T, e *scenarioEnv, id string)
		at     time.Time // monday when zero
		req    *tactv1.DecideRequest
		want   want
	}{
		// Propensity, tiers and ranking.
		{name: "offer now: high propensity", req: &tactv1.DecideRequest{Channel: inbound},
			want: want{action: now, reason: high, offers: []string{"card"}, tier: "standard"}},
		{name: "ranking by propensity x value, two offers",
			client: map[string]*tactv1.FeatureValue{"z_loan": z(0.73)}, req: &tactv1.DecideRequest{Channel: inbound, MaxOffers: 2},
			want: want{action: now, reason: high, offers: []string{"loan", "card"}, tier: "standard"}},
		{name: "below the standard bar", client: map[string]*tactv1.FeatureValue{"z_card": z(0.1)}, req: &tactv1.DecideRequest{Channel: inbound},
			want: want{action: none, reason: tactv1.ReasonCode_REASON_CODE_BELOW_TIER_BAR, tier: "standard"}},
		{name: "platinum: 0.35 is below its bar of 0.40", client: map[string]*tactv1.FeatureValue{"balance": num(300_000), "z_card": z(0.35)},
			req:  &tactv1.DecideRequest{Channel: inbound},
			want: want{action: none, reason: tactv1.ReasonCode_REASON_CODE_BELOW_TIER_BAR, tier: "platinum"}},
		{name: "standard: 0.35 clears its bar", client: map[string]*tactv1.FeatureValue{"z_card": z(0.35)}, req: &tactv1.DecideRequest{Channel: inbound},
			want: want{action: now, reason: high, offers: []string{"card"}, tier: "standard"}},
		{name: "the tier feature overrides the rules", client: map[string]*tactv1.FeatureValue{"tier": text("gold")}, req: &tactv1.DecideRequest{Channel: inbound},
			want: want{action: now, reason: high, offers: []string{"card"}, tier: "gold"}},

		// The contact.
		{name: "complaint", req: &tactv1.DecideRequest{Channel: inbound, Context: ctxOf(tactv1.InteractionReason_INTERACTION_REASON_COMPLAINT, tactv1.InteractionStage_INTERACTION_STAGE_RESOLVED)},
			want: want{action: none, reason: tactv1.ReasonCode_REASON_CODE_COMPLAINT, tier: "standard"}},
		{name: "negative sentiment", req: &tactv1.DecideRequest{Channel: inbound, Context: &tactv1.InteractionContext{Reason: tactv1.InteractionReason_INTERACTION_REASON_SALES_ENQUIRY, Sentiment: tactv1.Sentiment_SENTIMENT_NEGATIVE}},
			want: want{action: none, reason: tactv1.ReasonCode_REASON_CODE_NEGATIVE_SENTIMENT, tier: "standard"}},
		{name: "service call in progress, standard", req: &tactv1.DecideRequest{Channel: inbound, Context: ctxOf(tactv1.InteractionReason_INTERACTION_REASON_SERVICE, tactv1.InteractionStage_INTERACTION_STAGE_IN_PROGRESS)},
			want: want{action: none, reason: tactv1.ReasonCode_REASON_CODE_CALL_STAGE, tier: "standard"}},
		{name: "service call, stage not given", req: &tactv1.DecideRequest{Channel: inbound, Context: ctxOf(tactv1.InteractionReason_INTERACTION_REASON_SERVICE, 0)},
			want: want{action: none, reason: tactv1.ReasonCode_REASON_CODE_CALL_STAGE, tier: "standard"}},
		{name: "service call in progress, platinum", client: platinum, req: &tactv1.DecideRequest{Channel: inbound, Context: ctxOf(tactv1.InteractionReason_INTERACTION_REASON_SERVICE, tactv1.InteractionStage_INTERACTION_STAGE_IN_PROGRESS)},
			want: want{action: none, reason: tactv1.ReasonCode_REASON_CODE_PROTECTED_TIER_SERVICE_CALL, tier: "platinum"}},
		{name: "service call resolved, platinum", client: platinum, req: &tactv1.DecideRequest{Channel: inbound, Context: ctxOf(tactv1.InteractionReason_INTERACTION_REASON_SERVICE, tactv1.InteractionStage_INTERACTION_STAGE_RESOLVED)},
			want: want{action: now, reason: high, offers: []string{"card"}, tier: "platinum"}},

		// Busy periods: the load feed, hysteresis, staleness, the schedule.
		{name: "busy + platinum", client: platinum,
			setup: func(t *testing.T, e *scenarioEnv, id string) { e.report(t, "q-"+id, 30, 0.9, monday) },
			req:   &tactv1.DecideRequest{Queue: "q", Channel: inbound},
			want:  want{action: none, reason: busy, tier: "platinum"}},
		{name: "busy + gold", client: map[string]*tactv1.FeatureValue{"balance": num(150_000)},
			setup: func(t *testing.T, e *scenarioEnv, id string) { e.report(t, "q-"+id, 30, 0.9, monday) },
			req:   &tactv1.DecideRequest{Queue: "q", Channel: inbound},
			want:  want{action: none, reason: busy, tier: "gold"}},
		{name: "busy + standard with a high propensity: offered",
			setup: func(t *testing.T, e *scenarioEnv, id string) { e.report(t, "q-"+id, 30, 0.9, monday) },
			req:   &tactv1.DecideRequest{Queue: "q", Channel: inbound},
			want:  want{action: now, reason: high, offers: []string{"card"}, tier: "standard"}},
		{name: "busy + standard: a long pitch of little value is not worth the time",
			client: map[string]*tactv1.FeatureValue{"z_card": z(0.01), "z_insurance": z(0.9)},
			setup:  func(t *testing.T, e *scenarioEnv, id string) { e.report(t, "q-"+id, 30, 0.9, monday) },
			req:    &tactv1.DecideRequest{Queue: "q", Channel: inbound, Explain: true},
			want:   want{action: none, reason: tactv1.ReasonCode_REASON_CODE_NOT_WORTH_COST, gate: "insurance/worth_the_time"}},
		{name: "quiet queue: the same pitch is worth it",
			client: map[string]*tactv1.FeatureValue{"z_card": z(0.01), "z_insurance": z(0.9)},
			setup:  func(t *testing.T, e *scenarioEnv, id string) { e.report(t, "q-"+id, 0, 0.95, monday) },
			req:    &tactv1.DecideRequest{Queue: "q", Channel: inbound},
			want:   want{action: now, reason: high, offers: []string{"insurance"}}},
		{name: "hysteresis: busy, then between the thresholds, still busy", client: platinum,
			setup: func(t *testing.T, e *scenarioEnv, id string) {
				e.report(t, "q-"+id, 30, 0.9, monday.Add(-time.Minute))
				e.report(t, "q-"+id, 15, 0.9, monday)
			},
			req:  &tactv1.DecideRequest{Queue: "q", Channel: inbound},
			want: want{action: none, reason: busy}},
		{name: "hysteresis: busy, then under every calm threshold", client: platinum,
			setup: func(t *testing.T, e *scenarioEnv, id string) {
				e.report(t, "q-"+id, 30, 0.9, monday.Add(-time.Minute))
				e.report(t, "q-"+id, 5, 0.9, monday)
			},
			req:  &tactv1.DecideRequest{Queue: "q", Channel: inbound},
			want: want{action: now, reason: high, offers: []string{"card"}}},
		{name: "stale report, no schedule, platinum: the safe side", client: platinum,
			setup: func(t *testing.T, e *scenarioEnv, id string) {
				e.report(t, "q-"+id, 2, 0.95, monday.Add(-10*time.Minute))
			},
			req:  &tactv1.DecideRequest{Queue: "q", Channel: inbound},
			want: want{action: none, reason: busy, check: wantMessage("no fresh load report and no schedule")}},
		{name: "stale report, no schedule, standard: offered",
			setup: func(t *testing.T, e *scenarioEnv, id string) {
				e.report(t, "q-"+id, 2, 0.95, monday.Add(-10*time.Minute))
			},
			req:  &tactv1.DecideRequest{Queue: "q", Channel: inbound},
			want: want{action: now, reason: high, offers: []string{"card"}}},
		{name: "stale report, in a scheduled busy window, platinum", env: "schedule", client: platinum,
			at:    monday.Add(-4 * time.Hour), // 10:00
			setup: func(t *testing.T, e *scenarioEnv, id string) { e.report(t, "q-"+id, 2, 0.95, monday.Add(-5*time.Hour)) },
			req:   &tactv1.DecideRequest{Queue: "q", Channel: inbound},
			want:  want{action: none, reason: busy, check: wantMessage("scheduled busy period")}},
		{name: "stale report, outside the scheduled windows, platinum", env: "schedule", client: platinum,
			setup: func(t *testing.T, e *scenarioEnv, id string) { e.report(t, "q-"+id, 40, 0.5, monday.Add(-time.Hour)) },
			req:   &tactv1.DecideRequest{Queue: "q", Channel: inbound},
			want:  want{action: now, reason: high, offers: []string{"card"}}},
		{name: "fresh report overrides the schedule", env: "schedule", client: platinum, at: monday.Add(-4 * time.Hour),
			setup: func(t *testing.T, e *scenarioEnv, id string) { e.report(t, "q-"+id, 1, 0.95, monday.Add(-4*time.Hour)) },
			req:   &tactv1.DecideRequest{Queue: "q", Channel: inbound},
			want:  want{action: now, reason: high, offers: []string{"card"}}},

		// Contact policy: caps per channel, their windows, vetoes,
		// cool-downs, acceptance.
		{name: "cap reached on the phone (2 a week)",
			setup: func(t *testing.T, e *scenarioEnv, id string) {
				e.offerAndOutcome(t, id, monday.Add(-48*time.Hour), inbound, tactv1.Outcome_OUTCOME_PRESENTED, 0)
				e.offerAndOutcome(t, id, monday.Add(-24*time.Hour), inbound, 0, 0)
			},
			req:  &tactv1.DecideRequest{Channel: inbound},
			want: want{action: none, reason: capped, check: wantMessage("2 offers by phone inbound in 7 days")}},
		{name: "cap reached on the phone, not on the web",
			setup: func(t *testing.T, e *scenarioEnv, id string) {
				e.offerAndOutcome(t, id, monday.Add(-48*time.Hour), inbound, tactv1.Outcome_OUTCOME_PRESENTED, 0)
				e.offerAndOutcome(t, id, monday.Add(-24*time.Hour), inbound, 0, 0)
			},
			req:  &tactv1.DecideRequest{Channel: web},
			want: want{action: now, reason: high, offers: []string{"card"}}},
		{name: "weekly cap expires after 7 days",
			setup: func(t *testing.T, e *scenarioEnv, id string) {
				e.offerAndOutcome(t, id, monday.Add(-8*24*time.Hour), inbound, tactv1.Outcome_OUTCOME_PRESENTED, 0)
				e.offerAndOutcome(t, id, monday.Add(-8*24*time.Hour+time.Hour), inbound, tactv1.Outcome_OUTCOME_PRESENTED, 0)
			},
			req:  &tactv1.DecideRequest{Channel: inbound},
			want: want{action: now, reason: high, offers: []string{"card"}}},
		{name: "monthly cap (5 in 30 days) holds after the week",
			setup: func(t *testing.T, e *scenarioEnv, id string) {
				for _, daysAgo := range []int{25, 24, 17, 16, 9} {
					e.offerAndOutcome(t, id, monday.AddDate(0, 0, -daysAgo), inbound, 0, 0)
				}
			},
			req:  &tactv1.DecideRequest{Channel: inbound},
			want: want{action: none, reason: capped, check: wantMessage("in 30 days")}},
		{name: "agent vetoes give the cap back",
			setup: func(t *testing.T, e *scenarioEnv, id string) {
				e.offerAndOutcome(t, id, monday.Add(-2*time.Hour), inbound, tactv1.Outcome_OUTCOME_NOT_PRESENTED, tactv1.NotPresentedReason_NOT_PRESENTED_REASON_NO_TIME)
				e.offerAndOutcome(t, id, monday.Add(-time.Hour), inbound, tactv1.Outcome_OUTCOME_NOT_PRESENTED, tactv1.NotPresentedReason_NOT_PRESENTED_REASON_NOT_APPROPRIATE)
			},
			req:  &tactv1.DecideRequest{Channel: inbound},
			want: want{action: now, reason: high, offers: []string{"card"}}},
		{name: "cool-down after a refusal",
			setup: func(t *testing.T, e *scenarioEnv, id string) {
				e.offerAndOutcome(t, id, monday.AddDate(0, 0, -10), web, tactv1.Outcome_OUTCOME_DECLINED, 0)
			},
			req:  &tactv1.DecideRequest{Channel: inbound, Explain: true},
			want: want{action: none, reason: cool, gate: "card/cool_down", check: wantMessage("not again before 2026-12-13")}},
		{name: "cool-down expired after 30 days",
			setup: func(t *testing.T, e *scenarioEnv, id string) {
				e.offerAndOutcome(t, id, monday.AddDate(0, 0, -31), web, tactv1.Outcome_OUTCOME_DECLINED, 0)
			},
			req:  &tactv1.DecideRequest{Channel: inbound},
			want: want{action: now, reason: high, offers: []string{"card"}}},
		{name: "platinum cool-down is longer (90 days)", client: platinum,
			setup: func(t *testing.T, e *scenarioEnv, id string) {
				e.offerAndOutcome(t, id, monday.AddDate(0, 0, -31), web, tactv1.Outcome_OUTCOME_DECLINED, 0)
			},
			req:  &tactv1.DecideRequest{Channel: inbound},
			want: want{action: none, reason: cool}},
		{name: "an agent veto is not a refusal: no cool-down",
			setup: func(t *testing.T, e *scenarioEnv, id string) {
				e.offerAndOutcome(t, id, monday.AddDate(0, 0, -1), web, tactv1.Outcome_OUTCOME_NOT_PRESENTED, tactv1.NotPresentedReason_NOT_PRESENTED_REASON_CLIENT_UPSET)
			},
			req:  &tactv1.DecideRequest{Channel: inbound},
			want: want{action: now, reason: high, offers: []string{"card"}}},
		{name: "accepted: not offered again",
			setup: func(t *testing.T, e *scenarioEnv, id string) {
				e.offerAndOutcome(t, id, monday.AddDate(0, 0, -100), web, tactv1.Outcome_OUTCOME_ACCEPTED, 0)
			},
			req:  &tactv1.DecideRequest{Channel: inbound, Explain: true},
			want: want{action: none, reason: tactv1.ReasonCode_REASON_CODE_RECENTLY_ACCEPTED, gate: "card/not_accepted"}},

		// Timing.
		{name: "need moment ahead: later, by outbound call in the client's hours",
			client: map[string]*tactv1.FeatureValue{"z_fund": z(0.6), "days_to_maturity": num(40), "consent_outbound": fbool(true), "contact_hours_phone_outbound": text("17:00-20:00"),
				"z_card": z(0.1)},
			req: &tactv1.DecideRequest{Channel: inbound},
			want: want{action: later, reason: tactv1.ReasonCode_REASON_CODE_NEED_NOT_YET, offers: []string{"fund"}, check: func(t *testing.T, d *tactv1.DecideResponse) {
				l := d.GetLater()
				// Matures 2027-01-02 14:00: from 14 days before, at 17:00.
				if got := l.GetNotBefore().AsTime(); !got.Equal(time.Date(2026, 12, 19, 17, 0, 0, 0, time.UTC)) {
					t.Errorf("not_before %v, want 2026-12-19 17:00", got)
				}
				if l.GetChannel() != outbound || l.GetPreferredHours() != "17:00-20:00" || l.GetTimeZone() != "UTC" {
					t.Errorf("later = %v, want an outbound call between 17:00 and 20:00 UTC", l)
				}
			}}},
		{name: "need moment reached: now",
			client: map[string]*tactv1.FeatureValue{"z_fund": z(0.6), "days_to_maturity": num(10)},
			req:    &tactv1.DecideRequest{Channel: inbound},
			want:   want{action: now, reason: high, offers: []string{"fund"}}},
		{name: "payday ahead: later, from payday",
			client: map[string]*tactv1.FeatureValue{"z_upgrade": z(0.9), "payday": num(25), "z_card": z(0.1)},
			req:    &tactv1.DecideRequest{Channel: web},
			want: want{action: later, reason: tactv1.ReasonCode_REASON_CODE_NEED_NOT_YET, offers: []string{"upgrade"}, check: func(t *testing.T, d *tactv1.DecideResponse) {
				if got := d.GetLater().GetNotBefore().AsTime(); !got.Equal(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)) {
					t.Errorf("not_before %v, want payday 2026-11-25", got)
				}
			}}},
		// Two answers at once: the card fits now (0.88, worth more than a
		// quarter of the upgrade's priority), the upgrade from payday.
		{name: "payday ahead, the card fits now: both",
			client: map[string]*tactv1.FeatureValue{"z_upgrade": z(0.9), "payday": num(25)},
			req:    &tactv1.DecideRequest{Channel: web},
			want: want{action: now, reason: high, offers: []string{"card"}, check: func(t *testing.T, d *tactv1.DecideResponse) {
				if got := d.GetLaterOffer().GetProductId(); got != "upgrade" {
					t.Errorf("later offer %q, want upgrade", got)
				}
				if got := d.GetLater().GetNotBefore().AsTime(); !got.Equal(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)) {
					t.Errorf("later not_before %v, want payday 2026-11-25", got)
				}
				if rs := d.GetReasons(); len(rs) != 2 || rs[1].GetCode() != tactv1.ReasonCode_REASON_CODE_NEED_NOT_YET {
					t.Errorf("reasons %v, want the card's then the upgrade's need", rs)
				}
			}}},
		{name: "just after payday: now",
			client: map[string]*tactv1.FeatureValue{"z_upgrade": z(0.9), "payday": num(21)},
			req:    &tactv1.DecideRequest{Channel: web},
			want:   want{action: now, reason: high, offers: []string{"upgrade"}}},

		// Eligibility, consent and the client's data.
		{name: "no consent", client: map[string]*tactv1.FeatureValue{"consent_offers": fbool(false)}, req: &tactv1.DecideRequest{Channel: web},
			want: want{action: none, reason: tactv1.ReasonCode_REASON_CODE_NO_CONSENT}},
		{name: "outbound call without outbound consent", req: &tactv1.DecideRequest{Channel: outbound},
			want: want{action: none, reason: tactv1.ReasonCode_REASON_CODE_NO_CONSENT}},
		{name: "already holds the product", client: map[string]*tactv1.FeatureValue{"holds_card": fbool(true)}, req: &tactv1.DecideRequest{Channel: inbound, Explain: true},
			want: want{action: none, reason: tactv1.ReasonCode_REASON_CODE_BELOW_TIER_BAR, gate: "card/not_held"}},
		{name: "not eligible", client: map[string]*tactv1.FeatureValue{"z_card": z(0.01), "z_loan": z(0.9), "income": num(500)},
			req:  &tactv1.DecideRequest{Channel: branch, Explain: true},
			want: want{action: none, reason: tactv1.ReasonCode_REASON_CODE_BELOW_TIER_BAR, gate: "loan/eligibility"}},
		{name: "channel does not sell it", client: map[string]*tactv1.FeatureValue{"z_card": z(0.01), "z_loan": z(0.9)},
			req:  &tactv1.DecideRequest{Channel: web, Explain: true},
			want: want{action: none, reason: tactv1.ReasonCode_REASON_CODE_BELOW_TIER_BAR, gate: "loan/channel"}},
		{name: "unknown client", client: map[string]*tactv1.FeatureValue{}, req: &tactv1.DecideRequest{ClientId: "nobody-here", Channel: web},
			want: want{action: none, reason: tactv1.ReasonCode_REASON_CODE_CLIENT_UNKNOWN}},
		{name: "features unavailable", req: &tactv1.DecideRequest{ClientId: "broken-1", Channel: web},
			want: want{action: none, reason: tactv1.ReasonCode_REASON_CODE_FEATURES_UNAVAILABLE, degrade: true}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := envs[tt.env]
			if tt.env == "" {
				env = envs["default"]
			}
			id := fmt.Sprintf("S%03d", i)
			if !strings.HasPrefix(tt.req.GetClientId(), "broken") {
				env.client(t, id, tt.client)
			}
			at := tt.at
			if at.IsZero() {
				at = monday
			}
			env.clock.Set(at)
			if tt.setup != nil {
				tt.setup(t, env, id)
			}
			env.clock.Set(at)
			req := tt.req
			if req.ClientId == "" {
				req.ClientId = id
			}
			if req.Queue == "q" { // the scenario's own queue
				req.Queue = "q-" + id
			}
			if exploring {
				req = proto.CloneOf(req)
				req.Explain = true
			}
			d := env.decide(t, req)
			if exploring && explores(d) {
				explored++
				// Another product first, one that passed every gate.
				for _, o := range d.GetOffers() {
					for _, g := range gatesOf(d, o.GetProductId()) {
						if !g.GetPassed() {
							t.Errorf("explored %s, which failed the %s gate", o.GetProductId(), g.GetName())
						}
					}
				}
				if d.GetAction() != tt.want.action || d.GetReasons()[0].GetCode() != tt.want.reason || (tt.want.tier != "" && d.GetTier() != tt.want.tier) {
					t.Errorf("explored: action %v reasons %v tier %q, want %v %v %q", d.GetAction(), d.GetReasons(), d.GetTier(), tt.want.action, tt.want.reason, tt.want.tier)
				}
				return
			}
			if d.GetAction() != tt.want.action {
				t.Errorf("action %v, want %v (reasons %v)", d.GetAction(), tt.want.action, d.GetReasons())
			}
			if len(d.GetReasons()) == 0 || d.GetReasons()[0].GetCode() != tt.want.reason {
				t.Errorf("reasons %v, want first %v", d.GetReasons(), tt.want.reason)
			}
			var offers []string
			for _, o := range d.GetOffers() {
				offers = append(offers, o.GetProductId())
			}
			if fmt.Sprint(offers) != fmt.Sprint(tt.want.offers) {
				t.Errorf("offers %v, want %v", offers, tt.want.offers)
			}
			if tt.want.tier != "" && d.GetTier() != tt.want.tier {
				t.Errorf("tier %q, want %q", d.GetTier(), tt.want.tier)
			}
			if d.GetDegraded() != tt.want.degrade {
				t.Errorf("degraded %v, want %v", d.GetDegraded(), tt.want.degrade)
			}
			if tt.want.gate != "" {
				product, gate, _ := strings.Cut(tt.want.gate, "/")
				if !failedGate(d, product, gate) {
					t.Errorf("%s did not fail the %s gate: %v", product, gate, d.GetCandidates())
				}
			}
			if tt.want.check != nil {
				tt.want.check(t, d)
			}
		})
	}
}

// explores reports whether the decision's first offer was an exploration.
func explores(d *tactv1.DecideResponse) bool {
	for _, r := range d.GetReasons() {
		if strings.Contains(r.GetMessage(), "(exploration, chance") {
			return true
		}
	}
	return false
}

// gatesOf returns a product's gates in an explained decision.
func gatesOf(d *tactv1.DecideResponse, product string) []*tactv1.Gate {
	for _, c := range d.GetCandidates() {
		if c.GetProductId() == product {
			return c.GetGates()
		}
	}
	return nil
}

func wantMessage(part string) func(t *testing.T, d *tactv1.DecideResponse) {
	return func(t *testing.T, d *tactv1.DecideResponse) {
		t.Helper()
		if len(d.GetReasons()) == 0 || !strings.Contains(d.GetReasons()[0].GetMessage(), part) {
			t.Errorf("reason %v does not say %q", d.GetReasons(), part)
		}
	}
}

func failedGate(d *tactv1.DecideResponse, product, gate string) bool {
	for _, c := range d.GetCandidates() {
		if c.GetProductId() != product {
			continue
		}
		for _, g := range c.GetGates() {
			if g.GetName() == gate && !g.GetPassed() && g.GetReason().GetMessage() != "" {
				return true
			}
		}
	}
	return false
}
