package decision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model"
	"github.com/tact-nba/tact/model/catalog"
	"github.com/tact-nba/tact/model/load"
	"github.com/tact-nba/tact/model/policy"
)

var now = time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC)

// testBundle has, for each product, a model that reads the feature z_<id>:
// propensity = sigmoid(z), so that tests set propensities directly.
func testBundle(t *testing.T, version string, ids ...string) *model.Bundle {
	t.Helper()
	fsys := fstest.MapFS{}
	man := model.Manifest{Format: model.FormatBundle, Version: version, Models: map[string]model.ManifestModel{}}
	for _, id := range ids {
		lm, err := model.NewLogistic([]model.Input{{Name: "z_" + id, Kind: model.Numeric, Std: 1}}, []float64{1}, 0, model.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := lm.WriteJSON(&buf); err != nil {
			t.Fatal(err)
		}
		fsys["b/"+id+".json"] = &fstest.MapFile{Data: buf.Bytes()}
		man.Models[id] = model.ManifestModel{Type: "logistic", File: id + ".json"}
	}
	raw, err := json.Marshal(man)
	if err != nil {
		t.Fatal(err)
	}
	fsys["b/bundle.json"] = &fstest.MapFile{Data: raw}
	b, err := model.LoadBundle(fsys, "b")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const testSchema = `
features:
  - {name: consent_offers, type: bool}
  - {name: consent_outbound, type: bool}
  - {name: income, type: number}
  - {name: balance, type: number}
  - {name: tenure, type: number}
  - {name: nope, type: number}
  - {name: days_to_maturity, type: number}
  - {name: z_card, type: number}
  - {name: z_loan, type: number}
  - {name: z_fund, type: number}
  - {name: holds_card, type: bool}
  - {name: holds_loan, type: bool}
  - {name: holds_fund, type: bool}
  - {name: tier, type: string}
`

const testCatalogYAML = `
currency: EUR
products:
  - {id: card, name: Card, value: 100, channels: [all], talking_points: ["Client for {tenure} years.", "Missing {nope} feature."]}
  - id: loan
    name: Loan
    value: 300
    channels: [phone_inbound, phone_outbound, branch]
    eligibility: [{when: "income >= 1000", why: "income below 1,000"}]
  - id: fund
    name: Fund
    value: 400
    channels: [all]
    timing: {need: {days_feature: days_to_maturity, lead_days: 14, lag_days: 30, what: the deposit matures}}
`

func testSchemaOf(t *testing.T) *features.Schema {
	t.Helper()
	s, err := features.ReadSchema(strings.NewReader(testSchema))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testCatalog(t *testing.T) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Parse([]byte(testCatalogYAML), testSchemaOf(t))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testPolicy(t *testing.T, cat *catalog.Catalog) *policy.Policy {
	t.Helper()
	p, err := policy.Default(cat, testSchemaOf(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testHistory(t *testing.T) *features.Bolt {
	t.Helper()
	b, err := features.OpenBolt(filepath.Join(t.TempDir(), "tact.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

type memReader map[string]features.Record

func (m memReader) Get(ctx context.Context, id string) (features.Record, error) {
	r, ok := m[id]
	if !ok {
		return features.Record{}, features.ErrNotFound
	}
	return r, nil
}

type slowReader struct{}

func (slowReader) Get(ctx context.Context, _ string) (features.Record, error) {
	<-ctx.Done()
	return features.Record{}, ctx.Err()
}

type errReader struct{}

func (errReader) Get(context.Context, string) (features.Record, error) {
	return features.Record{}, errors.New("disk on fire")
}

// memLog is a DecisionRecorder and OutcomeStore in memory; decisions are
// visible to GetDecision only after Flush, like the real log.
type memLog struct {
	mu       sync.Mutex
	pending  []features.DecisionRecord
	saved    map[string]features.DecisionRecord
	outcomes map[string]features.OutcomeRecord
	flushes  int
	// commitErr, when set, fails every Commit.
	commitErr error
}

func newMemLog() *memLog {
	return &memLog{saved: map[string]features.DecisionRecord{}, outcomes: map[string]features.OutcomeRecord{}}
}

func (l *memLog) Append(r features.DecisionRecord) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = append(l.pending, r)
	return true
}

// Commit saves at once, as a durable write would; commitErr fails it.
func (l *memLog) Commit(_ context.Context, r features.DecisionRecord) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.commitErr != nil {
		return l.commitErr
	}
	l.saved[r.ID] = r
	return nil
}

func (l *memLog) Flush(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushes++
	for _, r := range l.pending {
		l.saved[r.ID] = r
	}
	l.pending = nil
	return nil
}

func (l *memLog) GetDecision(_ context.Context, id string) (features.DecisionRecord, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.saved[id]
	if !ok {
		return r, features.ErrNotFound
	}
	return r, nil
}

func (l *memLog) PutOutcome(_ context.Context, o *features.OutcomeRecord) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := o.DecisionID + "/" + o.ProductID + "/" + o.Outcome
	if old, ok := l.outcomes[k]; ok {
		*o = old
		return true, nil
	}
	l.outcomes[k] = *o
	return false, nil
}

func newEngine(t *testing.T, reader FeatureReader, log *memLog) *Engine {
	t.Helper()
	cat := testCatalog(t)
	e, err := New(Config{FeatureBudget: 20 * time.Millisecond}, Deps{
		Catalog: cat, Policy: testPolicy(t, cat), Bundle: testBundle(t, "test-1", "card", "loan", "fund"),
		Features: reader, History: testHistory(t), Load: load.NewBoard(), Log: log, Outcomes: log, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// client builds a record: consenting, standard tier, propensities given
// as z values (0 is 0.5, 1 is 0.73, -3 is 0.05).
func client(vals map[string]features.Value) features.Record {
	v := map[string]features.Value{
		"consent_offers": features.Bool(true),
		"income":         features.Number(2000),
		"balance":        features.Number(1000),
		"tenure":         features.Number(7),
		"z_card":         features.Number(0),
		"z_loan":         features.Number(-1),
		"z_fund":         features.Number(-3),
	}
	for k, x := range vals {
		v[k] = x
	}
	return features.Record{ClientID: "c", Values: v}
}

func TestDecide(t *testing.T) {
	type want struct {
		action   Action
		reason   ReasonCode
		offers   []string
		degraded bool
		// later is the later offer's product with OFFER_NOW
		later string
		tier  string
	}
	num, yes, no := features.Number, features.Bool(true), features.Bool(false)
	tests := []struct {
		name   string
		reader FeatureReader
		rec    map[string]features.Value
		req    Request
		want   want
	}{
		{name: "best by propensity x value", req: Request{Channel: catalog.PhoneInbound},
			// card 0.5*100 = 50, loan 0.27*300 = 80.7: loan first.
			want: want{action: OfferNow, reason: HighPropensity, offers: []string{"loan"}, tier: "standard"}},
		{name: "max offers", req: Request{Channel: catalog.PhoneInbound, MaxOffers: 3},
			want: want{action: OfferNow, reason: HighPropensity, offers: []string{"loan", "card"}, tier: "standard"}},
		{name: "channel not sold", req: Request{Channel: catalog.Web, MaxOffers: 3},
			want: want{action: OfferNow, reason: HighPropensity, offers: []string{"card"}, tier: "standard"}},
		{name: "held product dropped", rec: map[string]features.Value{"holds_loan": yes}, req: Request{Channel: catalog.PhoneInbound},
			want: want{action: OfferNow, reason: HighPropensity, offers: []string{"card"}, tier: "standard"}},
		{name: "not eligible", rec: map[string]features.Value{"income": num(500)}, req: Request{Channel: catalog.PhoneInbound},
			want: want{action: OfferNow, reason: HighPropensity, offers: []string{"card"}, tier: "standard"}},
		{name: "eligibility feature missing", rec: map[string]features.Value{"income": {Kind: features.KindString, Str: "?"}}, req: Request{Channel: catalog.PhoneInbound},
			want: want{action: OfferNow, reason: HighPropensity, offers: []string{"card"}, tier: "standard"}},
		{name: "all below the bar", rec: map[string]features.Value{"z_card": num(-3), "z_loan": num(-3)}, req: Request{Channel: catalog.PhoneInbound},
			want: want{action: NoOffer, reason: BelowTierBar, tier: "standard"}},
		{name: "higher tier, higher bar", rec: map[string]features.Value{"tier": features.String("platinum"), "z_card": num(-0.5), "z_loan": num(-1)}, req: Request{Channel: catalog.PhoneInbound},
			want: want{action: NoOffer, reason: BelowTierBar, tier: "platinum"}},
		// At gold the loan (0.27) is below the bar of 0.30; the card is not.
		{name: "tier from balance", rec: map[string]features.Value{"balance": num(150_000)}, req: Request{Channel: catalog.PhoneInbound},
			want: want{action: OfferNow, reason: HighPropensity, offers: []string{"card"}, tier: "gold"}},
		{name: "nothing eligible", rec: map[string]features.Value{"holds_card": yes, "holds_fund": yes}, req: Request{Channel: catalog.Web},
			want: want{action: NoOffer, reason: NoEligibleProduct, tier: "standard"}},
		{name: "complaint", req: Request{Channel: catalog.PhoneInbound, Reason: ReasonComplaint, Stage: StageResolved},
			want: want{action: NoOffer, reason: Complaint, tier: "standard"}},
		{name: "service not resolved", req: Request{Channel: catalog.PhoneInbound, Reason: ReasonService, Stage: StageInProgress},
			want: want{action: NoOffer, reason: CallStage, tier: "standard"}},
		{name: "service, stage not given", req: Request{Channel: catalog.PhoneInbound, Reason: ReasonService},
			want: want{action: NoOffer, reason: CallStage, tier: "standard"}},
		{name: "protected tier in service", rec: map[string]features.Value{"tier": features.String("gold")}, req: Request{Channel: catalog.PhoneInbound, Reason: ReasonService, Stage: StageOpening},
			want: want{action: NoOffer, reason: ProtectedTierServiceCall, tier: "gold"}},
		{name: "service resolved", req: Request{Channel: catalog.PhoneInbound, Reason: ReasonService, Stage: StageResolved},
			want: want{action: OfferNow, reason: HighPropensity, offers: []string{"loan"}, tier: "standard"}},
		{name: "no consent", rec: map[string]features.Value{"consent_offers": no}, req: Request{Channel: catalog.Web},
			want: want{action: NoOffer, reason: NoConsent, tier: "standard"}},
		{name: "outbound needs outbound consent", req: Request{Channel: catalog.PhoneOutbound},
			want: want{action: NoOffer, reason: NoConsent, tier: "standard"}},
		{name: "outbound with consent", rec: map[string]features.Value{"consent_outbound": yes}, req: Request{Channel: catalog.PhoneOutbound},
			want: want{action: OfferNow, reason: HighPropensity, offers: []string{"loan"}, tier: "standard"}},
		// The best product's moment has not come and nothing else fits
		// now (the card and loan are held): later.
		{name: "need moment ahead: later", rec: map[string]features.Value{"z_fund": num(1), "days_to_maturity": num(40), "holds_card": yes, "holds_loan": yes},
			req:  Request{Channel: catalog.PhoneInbound},
			want: want{action: OfferLater, reason: NeedNotYet, offers: []string{"fund"}, tier: "standard"}},
		// ...and when the loan clears every gate now: the loan now, the
		// fund later, in one answer.
		{name: "need moment ahead, another fits now: both", rec: map[string]features.Value{"z_fund": num(1), "days_to_maturity": num(40)}, req: Request{Channel: catalog.PhoneInbound},
			want: want{action: OfferNow, reason: HighPropensity, offers: []string{"loan"}, later: "fund", tier: "standard"}},
		// ...but not when what fits now is worth less than what pitching
		// now costs the later offer (the default later_fatigue, 0.25 of
		// the fund's priority): the loan at 0.18 is only the later fund.
		{name: "need moment ahead, a lesser one fits now: later", rec: map[string]features.Value{"z_fund": num(1), "days_to_maturity": num(40), "z_loan": num(-1.5)},
			req:  Request{Channel: catalog.PhoneInbound},
			want: want{action: OfferLater, reason: NeedNotYet, offers: []string{"fund"}, tier: "standard"}},
		{name: "need moment reached: now", rec: map[string]features.Value{"z_fund": num(1), "days_to_maturity": num(10)}, req: Request{Channel: catalog.PhoneInbound},
			want: want{action: OfferNow, reason: HighPropensity, offers: []string{"fund"}, tier: "standard"}},
		{name: "no need feature: now", rec: map[string]features.Value{"z_fund": num(1)}, req: Request{Channel: catalog.PhoneInbound},
			want: want{action: OfferNow, reason: HighPropensity, offers: []string{"fund"}, tier: "standard"}},
		{name: "unknown client", reader: memReader{}, req: Request{Channel: catalog.Web},
			want: want{action: NoOffer, reason: ClientUnknown}},
		{name: "store too slow", reader: slowReader{}, req: Request{Channel: catalog.Web},
			want: want{action: NoOffer, reason: FeaturesUnavailable, degraded: true}},
		{name: "store error", reader: errReader{}, req: Request{Channel: catalog.Web},
			want: want{action: NoOffer, reason: FeaturesUnavailable, degraded: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reader := tt.reader
			if reader == nil {
				reader = memReader{"c": client(tt.rec)}
			}
			log := newMemLog()
			e := newEngine(t, reader, log)
			tt.req.ClientID = "c"
			d := e.Decide(t.Context(), tt.req)
			if d.Action != tt.want.action {
				t.Errorf("action = %v, want %v (reasons %+v)", d.Action, tt.want.action, d.Reasons)
			}
			if len(d.Reasons) == 0 || d.Reasons[0].Code != tt.want.reason {
				t.Errorf("reasons = %+v, want first %v", d.Reasons, tt.want.reason)
			}
			var got []string
			for i, o := range d.Offers {
				got = append(got, o.ProductID)
				if o.Rank != i+1 {
					t.Errorf("offer %s rank %d, want %d", o.ProductID, o.Rank, i+1)
				}
			}
			if !slices.Equal(got, tt.want.offers) {
				t.Errorf("offers = %v, want %v", got, tt.want.offers)
			}
			if d.Degraded != tt.want.degraded || d.Tier != tt.want.tier {
				t.Errorf("degraded %v tier %q, want %v %q", d.Degraded, d.Tier, tt.want.degraded, tt.want.tier)
			}
			if (d.Action == OfferLater || tt.want.later != "") != (d.Later != nil) {
				t.Errorf("later = %+v with action %v", d.Later, d.Action)
			}
			if got := d.LaterOffer; (got == nil) != (tt.want.later == "") || (got != nil && got.ProductID != tt.want.later) {
				t.Errorf("later offer = %+v, want %q", got, tt.want.later)
			}
			if d.ID == "" || d.ModelVersion != "test-1" || !d.At.Equal(now) {
				t.Errorf("id %q, model %q, at %v", d.ID, d.ModelVersion, d.At)
			}
			if len(log.pending) != 1 || log.pending[0].ID != d.ID || log.pending[0].Action != d.Action.String() {
				t.Errorf("decision log = %+v, want this decision once", log.pending)
			}
		})
	}
}

func TestDecideLaterWindow(t *testing.T) {
	rec := client(map[string]features.Value{"z_fund": features.Number(1), "days_to_maturity": features.Number(40), "consent_outbound": features.Bool(true)})
	e := newEngine(t, memReader{"c": rec}, newMemLog())
	d := e.Decide(t.Context(), Request{ClientID: "c", Channel: catalog.PhoneInbound})
	if d.Later == nil {
		t.Fatalf("no later window: %+v", d)
	}
	// Matures on 2027-01-02 (40 days after 2026-11-23 10:30): offer from
	// 14 days before to 30 days after.
	wantFrom, wantTo := time.Date(2026, 12, 19, 0, 0, 0, 0, time.UTC), time.Date(2027, 2, 2, 0, 0, 0, 0, time.UTC)
	if d.Later.TimeZone != "UTC" || d.Later.PreferredHours != "" {
		t.Errorf("zone %q hours %q, want UTC and none", d.Later.TimeZone, d.Later.PreferredHours)
	}
	if !d.Later.NotBefore.Equal(wantFrom) || !d.Later.NotAfter.Equal(wantTo) {
		t.Errorf("window %v..%v, want %v..%v", d.Later.NotBefore, d.Later.NotAfter, wantFrom, wantTo)
	}
	if d.Later.Channel != catalog.PhoneOutbound {
		t.Errorf("later channel %v, want phone_outbound (the client allows outbound calls)", d.Later.Channel)
	}
}

// TestCapLeavesTheLaterOffer: the best product's moment has not come and
// the loan clears every gate now, but the client's cap on the channel is
// used: the answer is the fund later, and it says why the loan is not
// offered now (it said only that the fund waits, while --explain showed
// the loan passing every gate).
func TestCapLeavesTheLaterOffer(t *testing.T) {
	rec := client(map[string]features.Value{"z_fund": features.Number(1), "days_to_maturity": features.Number(40)})
	e := newEngine(t, memReader{"c": rec}, newMemLog())
	req := Request{ClientID: "c", Channel: catalog.PhoneInbound}
	// The standard tier's cap: 2 offers in 7 days.
	for i := range 2 {
		if d := e.Decide(t.Context(), req); d.Action != OfferNow || d.Offers[0].ProductID != "loan" || d.LaterOffer == nil {
			t.Fatalf("decision %d: %v %+v, want the loan now and the fund later", i+1, d.Action, d.Offers)
		}
	}
	d := e.Decide(t.Context(), req)
	if d.Action != OfferLater || len(d.Offers) != 1 || d.Offers[0].ProductID != "fund" {
		t.Fatalf("with the cap used: %v %+v, want the fund later", d.Action, d.Offers)
	}
	if len(d.Reasons) != 2 || d.Reasons[0].Code != NeedNotYet || d.Reasons[1].Code != CapReached || d.Reasons[1].ProductID != "loan" ||
		d.Reasons[1].Message != "Loan is not offered now. The client has had 2 offers by phone inbound in 7 days, the most a standard client gets." {
		t.Errorf("reasons %+v, want the fund's moment, then the cap that keeps the loan from now", d.Reasons)
	}
}

func TestDecideExplainAndTalkingPoints(t *testing.T) {
	rec := client(map[string]features.Value{"holds_loan": features.Bool(true)})
	e := newEngine(t, memReader{"c": rec}, newMemLog())
	d := e.Decide(t.Context(), Request{ClientID: "c", Channel: catalog.PhoneInbound, Explain: true})
	failed := map[string]string{}
	for _, c := range d.Candidates {
		last := c.Gates[len(c.Gates)-1]
		failed[c.ProductID] = "passed"
		if !last.Passed {
			failed[c.ProductID] = last.Name
		}
		if c.Value == 0 || c.Propensity == 0 {
			t.Errorf("candidate %s without value or propensity: %+v", c.ProductID, c)
		}
	}
	want := map[string]string{"loan": "not_held", "fund": "tier_bar", "card": "passed"}
	if !maps.Equal(failed, want) {
		t.Errorf("explained candidates = %v, want %v", failed, want)
	}
	if len(d.Offers) != 1 || !slices.Equal(d.Offers[0].TalkingPoints, []string{"Client for 7 years."}) {
		t.Errorf("talking points = %v; want the filled one only (the one naming a missing feature skipped)", d.Offers)
	}
	plain := e.Decide(t.Context(), Request{ClientID: "c", Channel: catalog.PhoneInbound})
	if len(plain.Candidates) != 0 {
		t.Errorf("without explain: %d candidates, want none", len(plain.Candidates))
	}
}

func TestRecordOutcome(t *testing.T) {
	log := newMemLog()
	e := newEngine(t, memReader{"c": client(nil)}, log)
	d := e.Decide(t.Context(), Request{ClientID: "c", Channel: catalog.PhoneInbound})

	o, dup, err := e.RecordOutcome(t.Context(), OutcomeRequest{DecisionID: d.ID, ProductID: "loan", Outcome: OutcomeDeclined})
	if err != nil || dup {
		t.Fatalf("RecordOutcome: %v, dup %v", err, dup)
	}
	if log.flushes != 1 {
		t.Errorf("flushes = %d: an outcome for a decision still in the buffer must flush the log", log.flushes)
	}
	if o.ClientID != "c" || o.Channel != string(catalog.PhoneInbound) || !o.OccurredAt.Equal(now) {
		t.Errorf("outcome = %+v, want client and channel from the decision, occurred now", o)
	}
	if _, dup, _ := e.RecordOutcome(t.Context(), OutcomeRequest{DecisionID: d.ID, ProductID: "loan", Outcome: OutcomeDeclined}); !dup {
		t.Error("repeat outcome not reported as duplicate")
	}
	var fe *FieldError
	if _, _, err := e.RecordOutcome(t.Context(), OutcomeRequest{DecisionID: d.ID, ProductID: "card", Outcome: OutcomePresented}); !errors.As(err, &fe) || fe.Field != "product_id" {
		t.Errorf("outcome for a product not offered: %v, want a product_id FieldError", err)
	}
	if _, _, err := e.RecordOutcome(t.Context(), OutcomeRequest{DecisionID: d.ID, ProductID: "loan", Outcome: OutcomePresented, OccurredAt: now.Add(-time.Hour)}); !errors.As(err, &fe) || fe.Field != "occurred_at" {
		t.Errorf("outcome before the decision: %v, want an occurred_at FieldError", err)
	}
	if _, _, err := e.RecordOutcome(t.Context(), OutcomeRequest{DecisionID: "nope", ProductID: "loan", Outcome: OutcomePresented}); !errors.Is(err, ErrUnknownDecision) {
		t.Errorf("unknown decision: %v, want ErrUnknownDecision", err)
	}
}

func TestNewRejectsMissingModels(t *testing.T) {
	log := newMemLog()
	cat := testCatalog(t)
	base := Deps{Catalog: cat, Policy: testPolicy(t, cat), Bundle: testBundle(t, "test-1", "card", "loan", "fund"), Features: memReader{},
		History: testHistory(t), Load: load.NewBoard(), Log: log, Outcomes: log}
	missing := base
	missing.Bundle = testBundle(t, "test-2", "card")
	if _, err := New(Config{}, missing); err == nil {
		t.Error("New with a product lacking a model succeeded")
	}
	noCat := base
	noCat.Catalog = nil
	if _, err := New(Config{}, noCat); err == nil {
		t.Error("New without a catalog succeeded")
	}
	e, err := New(Config{}, base)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetBundle(testBundle(t, "test-3", "card", "loan")); err == nil {
		t.Error("SetBundle with a product lacking a model succeeded")
	}
	if e.Bundle().Version() != "test-1" {
		t.Errorf("bundle after a rejected swap: %s, want test-1", e.Bundle().Version())
	}
}

// TestDurableOffers: with DurableOffers an offer's decision is committed
// before it is answered (found without a flush), and one that cannot be
// committed is not given: a degraded NO_OFFER. Other decisions are only
// appended.
func TestDurableOffers(t *testing.T) {
	log := newMemLog()
	e := newEngine(t, memReader{"c": client(nil)}, log)
	e.cfg.DurableOffers, e.cfg.CommitBudget = true, time.Second
	d := e.Decide(t.Context(), Request{ClientID: "c", Channel: catalog.PhoneInbound})
	if d.Action != OfferNow {
		t.Fatalf("decision %v %v, want an offer", d.Action, d.Reasons)
	}
	if _, err := log.GetDecision(t.Context(), d.ID); err != nil {
		t.Errorf("the offer's decision is not saved when answered: %v", err)
	}
	if len(log.pending) != 0 {
		t.Errorf("the committed decision was appended again: %d pending", len(log.pending))
	}
	if d := e.Decide(t.Context(), Request{ClientID: "unknown", Channel: catalog.PhoneInbound}); d.Action != NoOffer || len(log.pending) != 1 {
		t.Errorf("a no-offer decision: %v, %d pending; want it appended, not committed", d.Action, len(log.pending))
	}
	log.commitErr = errors.New("disk full")
	d = e.Decide(t.Context(), Request{ClientID: "c", Channel: catalog.Web})
	if d.Action != NoOffer || !d.Degraded || len(d.Offers) != 0 || d.Reasons[0].Code != HistoryUnavailable {
		t.Errorf("an offer that cannot be committed: %v degraded=%v offers=%d %v; want a degraded NO_OFFER", d.Action, d.Degraded, len(d.Offers), d.Reasons)
	}
}
