package decision

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model"
	"github.com/tact-nba/tact/model/catalog"
	"github.com/tact-nba/tact/model/load"
)

// evidenceLearner is a hand-written Learner that scores the prior and has
// a fixed evidence per product.
type evidenceLearner map[string]float64

func (l evidenceLearner) Score(_ string, _ model.Features, prior float64) float64 { return prior }
func (l evidenceLearner) Learn(string, model.Features, float64, bool)             {}
func (l evidenceLearner) Evidence(product string) float64                         { return l[product] }

func newExploringEngine(t *testing.T, reader FeatureReader, log *memLog, cfg Config, learner Learner) *Engine {
	t.Helper()
	cat := testCatalog(t)
	cfg.FeatureBudget = time.Second
	e, err := New(cfg, Deps{
		Catalog: cat, Policy: testPolicy(t, cat), Bundle: testBundle(t, "test-1", "card", "loan", "fund"),
		Features: reader, History: testHistory(t), Load: load.NewBoard(), Log: log, Outcomes: log, Now: func() time.Time { return now },
		Learner: learner,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestDecisionDetailLogged(t *testing.T) {
	log := newMemLog()
	rec := client(map[string]features.Value{"z_fund": features.Number(1), "days_to_maturity": features.Number(40)})
	e := newEngine(t, memReader{"c": rec}, log)
	d := e.Decide(t.Context(), Request{ClientID: "c", Channel: catalog.PhoneInbound, Queue: "retail", Reason: ReasonSalesEnquiry,
		Stage: StageInProgress, Sentiment: SentimentPositive})
	if len(log.pending) != 1 || log.pending[0].Detail == nil {
		t.Fatalf("logged %+v, want one decision with its detail", log.pending)
	}
	dt := log.pending[0].Detail
	if dt.Reason != "sales_enquiry" || dt.Stage != "in_progress" || dt.Sentiment != "positive" || dt.Queue != "retail" || dt.QueueState != "unknown" {
		t.Errorf("context %+v", dt)
	}
	// Every catalog product, in catalog order (by id), with the gate that
	// stopped it; the loan offered now with probability 1, the fund
	// waiting.
	want := []struct {
		product, gate string
		prob          float64
	}{{"card", "", 0}, {"fund", "timing", 0}, {"loan", "", 1}}
	if len(dt.Candidates) != len(want) {
		t.Fatalf("candidates %+v", dt.Candidates)
	}
	for i, w := range want {
		c := dt.Candidates[i]
		if c.Product != w.product || c.Gate != w.gate || c.Prob != w.prob {
			t.Errorf("candidate %d = %+v, want %s gate %q prob %v", i, c, w.product, w.gate, w.prob)
		}
	}
	// The card is not chosen but could have been (its probability is 0
	// without exploration); its priority is its value less the cost.
	if c := dt.Candidates[2]; math.Abs(c.Propensity-0.268941) > 1e-5 || c.Value == 0 || math.Abs(c.Priority()-d.Offers[0].Score) > 1e-3 {
		t.Errorf("loan %+v (priority %v), offered %+v", c, c.Priority(), d.Offers[0])
	}
	// The features as scored read back the same.
	got, err := features.UnpackFeatures("c", dt.Features)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range rec.Values {
		if g, ok := got.Value(name); !ok || g != v {
			t.Errorf("feature %s read back %+v, want %+v", name, g, v)
		}
	}
}

// The card (propensity 0.5, value 100) and the loan (0.27, 300) both pass
// every gate on a phone call; the loan is the best. The card is tried with
// the probability explore gives: (rate + ramp * immaturity) / 2.
func TestExplorationProbabilities(t *testing.T) {
	const n = 4000
	reader := memReader{}
	for i := range n {
		id := fmt.Sprintf("c%d", i)
		r := client(nil)
		r.ClientID = id
		reader[id] = r
	}
	for _, tc := range []struct {
		evidence float64
		want     float64
	}{{0, (0.1 + 0.5) / 2}, {250, (0.1 + 0.5*0.5) / 2}, {1000, 0.1 / 2}} {
		t.Run(fmt.Sprint(tc.evidence), func(t *testing.T) {
			log := newMemLog()
			rng := rand.New(rand.NewPCG(1, uint64(tc.evidence)))
			e := newExploringEngine(t, reader, log, Config{Exploration: 0.1, ExplorationRamp: 0.5, Rand: rng.Float64},
				evidenceLearner{"card": tc.evidence, "loan": 1000})
			cards := 0
			for i := range n {
				d := e.Decide(t.Context(), Request{ClientID: fmt.Sprintf("c%d", i), Channel: catalog.PhoneInbound})
				if d.Action != OfferNow {
					t.Fatalf("decision %d: %v %+v", i, d.Action, d.Reasons)
				}
				if d.Offers[0].ProductID == "card" {
					cards++
				}
			}
			share := float64(cards) / n
			if sd := math.Sqrt(tc.want * (1 - tc.want) / n); math.Abs(share-tc.want) > 4*sd {
				t.Errorf("card first in %.3f of decisions, want %.3f", share, tc.want)
			}
			for _, r := range log.pending {
				cs := r.Detail.Candidates
				if math.Abs(cs[0].Prob-tc.want) > 1e-12 || math.Abs(cs[2].Prob-(1-tc.want)) > 1e-12 || cs[1].Prob != 0 {
					t.Fatalf("logged probabilities %+v, want card %v", cs, tc.want)
				}
				if r.Products[0] == "card" && cs[0].Gate != "" {
					t.Fatalf("explored a product that failed a gate: %+v", cs[0])
				}
			}
		})
	}
}

func TestExplorationConfig(t *testing.T) {
	cat := testCatalog(t)
	for _, cfg := range []Config{{Exploration: -0.1}, {Exploration: 0.6, ExplorationRamp: 0.5}, {ExplorationMaturity: -1}} {
		_, err := New(cfg, Deps{Catalog: cat, Policy: testPolicy(t, cat), Bundle: testBundle(t, "t", "card", "loan", "fund"),
			Features: memReader{}, History: testHistory(t), Load: load.NewBoard(), Log: newMemLog(), Outcomes: newMemLog()})
		if err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

func TestNoDetail(t *testing.T) {
	log := newMemLog()
	e := newExploringEngine(t, memReader{"c": client(nil)}, log, Config{NoDetail: true}, nil)
	d := e.Decide(t.Context(), Request{ClientID: "c", Channel: catalog.PhoneInbound})
	if d.Action != OfferNow || len(log.pending) != 1 || log.pending[0].Detail != nil {
		t.Fatalf("%v logged %+v, want its record without detail", d.Action, log.pending)
	}
}

// With a detail share, about that share of the decisions keep their
// detail.
func TestDetailShare(t *testing.T) {
	log := newMemLog()
	reader := memReader{}
	const n = 2000
	for i := range n {
		id := fmt.Sprintf("c%d", i)
		r := client(nil)
		r.ClientID = id
		reader[id] = r
	}
	e := newExploringEngine(t, reader, log, Config{DetailShare: 0.25}, nil)
	for i := range n {
		e.Decide(t.Context(), Request{ClientID: fmt.Sprintf("c%d", i), Channel: catalog.PhoneInbound})
	}
	kept := 0
	for _, r := range log.pending {
		if r.Detail != nil {
			kept++
		}
	}
	if sd := math.Sqrt(n * 0.25 * 0.75); math.Abs(float64(kept)-n*0.25) > 4*sd {
		t.Errorf("%d of %d decisions kept their detail, want about a quarter", kept, n)
	}
	if _, err := New(Config{DetailShare: 1.5}, Deps{}); err == nil {
		t.Error("a detail share of 1.5 accepted")
	}
}

// seenLearner is a hand-written Learner that keeps the tenure it learned
// each outcome with.
type seenLearner struct{ tenures []float64 }

func (l *seenLearner) Score(_ string, _ model.Features, prior float64) float64 { return prior }
func (l *seenLearner) Evidence(string) float64                                 { return 0 }
func (l *seenLearner) Learn(_ string, f model.Features, _ float64, _ bool) {
	x, _ := f.Num("tenure")
	l.tenures = append(l.tenures, x)
}

// An outcome teaches the learner the client's features as they were when
// the offer was decided (the decision's detail), not as they are by the
// time the answer comes; without the detail, as they are then.
func TestLearnsFromTheFeaturesAsScored(t *testing.T) {
	for _, noDetail := range []bool{false, true} {
		reader := memReader{"c": client(map[string]features.Value{"tenure": features.Number(7)})}
		learner := &seenLearner{}
		e := newExploringEngine(t, reader, newMemLog(), Config{NoDetail: noDetail}, learner)
		d := e.Decide(t.Context(), Request{ClientID: "c", Channel: catalog.PhoneInbound})
		if d.Action != OfferNow {
			t.Fatalf("%v %+v", d.Action, d.Reasons)
		}
		reader["c"] = client(map[string]features.Value{"tenure": features.Number(8)}) // a year on
		if _, _, err := e.RecordOutcome(t.Context(), OutcomeRequest{DecisionID: d.ID, ProductID: d.Offers[0].ProductID, Outcome: OutcomeAccepted}); err != nil {
			t.Fatal(err)
		}
		want := 7.0
		if noDetail {
			want = 8
		}
		if len(learner.tenures) != 1 || learner.tenures[0] != want {
			t.Errorf("without detail %v: learned with tenures %v, want [%v]", noDetail, learner.tenures, want)
		}
	}
}
