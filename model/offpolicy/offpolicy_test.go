package offpolicy

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tact-nba/tact/features"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func TestLabels(t *testing.T) {
	out := func(d, p, kind string, at time.Duration) features.OutcomeRecord {
		return features.OutcomeRecord{DecisionID: d, ProductID: p, Outcome: kind, OccurredAt: t0.Add(at)}
	}
	a := NewAnswers([]features.OutcomeRecord{
		out("d1", "card", "presented", 0), out("d1", "card", "accepted", time.Minute),
		out("d2", "card", "declined", 0),
		out("d3", "card", "not_presented", 0),
		out("d4", "card", "presented", 0),
		out("d5", "card", "presented", 23*time.Hour),
	})
	now := t0.Add(24 * time.Hour)
	for _, tc := range []struct {
		decision string
		label    float64
		ok       bool
	}{
		{"d1", 1, true},  // accepted
		{"d2", 0, true},  // declined
		{"d3", 0, false}, // the agent's veto is not a refusal
		{"d4", 0, true},  // presented a day ago, never answered
		{"d5", 0, false}, // presented an hour ago: may still be answered
		{"d6", 0, false}, // no outcome: nobody knows it was made
	} {
		y, ok := a.Label(tc.decision, "card", 24*time.Hour, now)
		if y != tc.label || ok != tc.ok {
			t.Errorf("%s: label %v, %v; want %v, %v", tc.decision, y, ok, tc.label, tc.ok)
		}
	}
	// With no wait configured, an unanswered offer is never labelled.
	if _, ok := a.Label("d4", "card", 0, now); ok {
		t.Error("d4 labelled with --no-answer-after 0")
	}
}

func TestRows(t *testing.T) {
	feats := features.PackFeatures(&features.Record{Values: map[string]features.Value{"age": features.Number(41)}})
	decisions := []features.DecisionRecord{
		{ID: "d2", ClientID: "C2", Products: []string{"card"}, At: t0.Add(time.Hour), Detail: &features.DecisionDetail{Features: feats}},
		{ID: "d1", ClientID: "C1", Products: []string{"card", "loan"}, At: t0, Detail: &features.DecisionDetail{Features: feats}},
		{ID: "d3", ClientID: "C3", Products: []string{"card"}, At: t0}, // logged before details were kept
	}
	a := NewAnswers([]features.OutcomeRecord{
		{DecisionID: "d1", ProductID: "card", Outcome: "accepted"}, {DecisionID: "d1", ProductID: "loan", Outcome: "declined"},
		{DecisionID: "d2", ProductID: "card", Outcome: "declined"}, {DecisionID: "d3", ProductID: "card", Outcome: "accepted"},
	})
	rows, skipped := Rows(decisions, a, 0, t0)
	if len(rows) != 3 || skipped != 1 {
		t.Fatalf("%d rows, %d skipped: %+v", len(rows), skipped, rows)
	}
	if rows[0].DecisionID != "d1" || rows[0].Label != 1 || rows[1].Product != "loan" || rows[1].Label != 0 || rows[2].DecisionID != "d2" {
		t.Errorf("rows %+v", rows)
	}
	if n, _ := rows[0].Features.Num("age"); n != 41 || rows[0].Features.ClientID != "C1" {
		t.Errorf("features %+v", rows[0].Features)
	}
}

// Three decisions, worked by hand: the challenger always picks b.
func TestEvaluateByHand(t *testing.T) {
	cands := func(pa, pb float64) []features.CandidateRecord {
		return []features.CandidateRecord{{Product: "a", Propensity: 0.5, Value: 1, Prob: pa}, {Product: "b", Propensity: 0.25, Value: 1, Prob: pb}}
	}
	samples := []Sample{
		{Candidates: cands(0.8, 0.2), Chosen: 1, Prob: 0.2, Reward: 1}, // b explored, accepted: weight 5
		{Candidates: cands(0.8, 0.2), Chosen: 0, Prob: 0.8, Reward: 1}, // a, accepted: weight 0
		{Candidates: cands(0.5, 0.5), Chosen: 1, Prob: 0.5, Reward: 0}, // b, declined: weight 2
	}
	alwaysB := func(s *Sample) (int, float64) { return 1, 0.3 }
	res, err := Evaluate(samples, alwaysB)
	if err != nil {
		t.Fatal(err)
	}
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-12 }
	// IPS: (5*1 + 0 + 2*0) / 3; SNIPS: 5 / (5 + 0 + 2); DR: mean of
	// 0.3 + 5*(1-0.3), 0.3, 0.3 + 2*(0-0.3).
	if !near(res.IPS.Value, 5.0/3) || !near(res.SNIPS.Value, 5.0/7) || !near(res.DR.Value, (3.8+0.3-0.3)/3) {
		t.Errorf("IPS %v SNIPS %v DR %v", res.IPS.Value, res.SNIPS.Value, res.DR.Value)
	}
	if res.N != 3 || res.Matched != 2 || res.Support != 1 || !near(res.Logged.Value, 2.0/3) {
		t.Errorf("%+v", res)
	}
	if !(res.SNIPS.Low <= res.SNIPS.Value && res.SNIPS.Value <= res.SNIPS.High && res.SNIPS.High <= 1) {
		t.Errorf("SNIPS interval %+v", res.SNIPS)
	}
	if _, err := Evaluate(nil, alwaysB); !errors.Is(err, ErrNoSamples) {
		t.Errorf("no samples: %v", err)
	}
}

// TestEvaluateOneUnmatchedDecision: a log of one decision the challenger
// would have decided otherwise: the self-normalised estimate is undefined
// (null in JSON, which has no NaN: the JSON output failed), and no
// interval claims a spread one decision cannot show.
func TestEvaluateOneUnmatchedDecision(t *testing.T) {
	samples := []Sample{{Candidates: []features.CandidateRecord{{Product: "a", Propensity: 0.5, Value: 1, Prob: 1}, {Product: "b", Propensity: 0.2, Value: 1}},
		Chosen: 0, Prob: 1, Reward: 1}}
	res, err := Evaluate(samples, func(*Sample) (int, float64) { return 1, 0.2 })
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(res.SNIPS.Value) {
		t.Errorf("SNIPS %v with no decision matching, want undefined", res.SNIPS.Value)
	}
	for name, e := range map[string]Estimate{"logged": res.Logged, "IPS": res.IPS, "DR": res.DR} {
		if e.Low != 0 || e.High != 1 {
			t.Errorf("%s over one decision: interval [%v, %v], want [0, 1]", name, e.Low, e.High)
		}
	}
	raw, err := json.Marshal(res)
	if err != nil || !strings.Contains(string(raw), `"SNIPS":{"Value":null,"Low":0,"High":1}`) || !strings.Contains(string(raw), `"Logged":{"Value":1,"Low":0,"High":1}`) {
		t.Errorf("JSON: %s, %v", raw, err)
	}
}
