package server

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// TestAppendDecisionMatchesProtojson writes 2,000 random decisions, with
// awkward strings, numbers, enums out of range and absent parts, and
// compares each with protojson's JSON (as values: protojson's spacing is
// unstable by design).
func TestAppendDecisionMatchesProtojson(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	strs := []string{"", "plain", `quote " and \ back`, "tab\tnew\nline\r\b\f", "ctl \x01\x1f\x7f", "ünïcødé €", "😀 emoji", "<html> & 'x'", "\u2028\u2029"}
	floats := []float64{0, 1, -1, 0.5, 0.648221, 55.3399, 1e-7, 1.5e-6, 123456789, 1e21, 2.5e22, -3e-9, math.MaxFloat64, math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1), math.Inf(-1)}
	str := func() string { return strs[rng.IntN(len(strs))] }
	flt := func() float64 { return floats[rng.IntN(len(floats))] }
	ts := func() *timestamppb.Timestamp {
		if rng.IntN(4) == 0 {
			return nil
		}
		nanos := []int32{0, 1, 100, 1000, 120_000_000, 999_999_999, 5_000_000}[rng.IntN(7)]
		return &timestamppb.Timestamp{Seconds: rng.Int64N(253402300799), Nanos: nanos}
	}
	reason := func() *tactv1.Reason {
		return &tactv1.Reason{Code: tactv1.ReasonCode(rng.IntN(25)), Message: str(), ProductId: str()}
	}
	marshal := protojson.MarshalOptions{UseProtoNames: true, EmitDefaultValues: true}
	for i := range 2000 {
		d := &tactv1.DecideResponse{
			DecisionId: str(), Action: tactv1.Action(rng.IntN(6)), Tier: str(), ModelVersion: str(),
			ExperimentVariant: str(), Degraded: rng.IntN(2) == 0, DryRun: rng.IntN(4) == 0, DecidedAt: ts(),
		}
		for range rng.IntN(3) {
			o := &tactv1.Offer{ProductId: str(), Name: str(), Propensity: flt(), Score: flt(), Rank: rng.Uint32()}
			for range rng.IntN(3) {
				o.TalkingPoints = append(o.TalkingPoints, str())
			}
			d.Offers = append(d.Offers, o)
		}
		if rng.IntN(2) == 0 {
			d.Later = &tactv1.LaterWindow{NotBefore: ts(), NotAfter: ts(), Channel: tactv1.Channel(rng.IntN(10)), PreferredHours: str(), TimeZone: str()}
		}
		for range rng.IntN(3) {
			d.Reasons = append(d.Reasons, reason())
		}
		for range rng.IntN(3) {
			c := &tactv1.Candidate{ProductId: str(), Propensity: flt(), Value: flt(), Priority: flt()}
			for range rng.IntN(4) {
				g := &tactv1.Gate{Name: str(), Passed: rng.IntN(2) == 0}
				if !g.Passed {
					g.Reason = reason()
				}
				c.Gates = append(c.Gates, g)
			}
			d.Candidates = append(d.Candidates, c)
		}
		for range rng.IntN(3) {
			ids := []int32{0, 1, 2, -1, math.MaxInt32, math.MinInt32}
			d.Experiments = append(d.Experiments, &tactv1.ExperimentExposure{Experiment: str(), Feature: str(),
				VariationId: ids[rng.IntN(len(ids))], Variation: str(), Name: str()})
		}
		want, err := marshal.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendDecision(nil, d)
		if !ok {
			t.Fatalf("decision %d: appendDecision refused what protojson wrote: %s", i, want)
		}
		var wv, gv any
		if err := json.Unmarshal(want, &wv); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(got, &gv); err != nil {
			t.Fatalf("decision %d: not JSON: %v\n%s", i, err, got)
		}
		if !reflect.DeepEqual(wv, gv) {
			t.Fatalf("decision %d differs from protojson:\nprotojson: %s\nours:      %s", i, want, got)
		}
	}
}

func TestAppendDecisionRefusesWhatProtojsonRejects(t *testing.T) {
	for name, d := range map[string]*tactv1.DecideResponse{
		"invalid UTF-8":      {Tier: "\xff"},
		"timestamp too late": {DecidedAt: &timestamppb.Timestamp{Seconds: 253402300800}},
		"negative nanos":     {DecidedAt: &timestamppb.Timestamp{Nanos: -1}},
	} {
		if _, err := (protojson.MarshalOptions{}).Marshal(d); err == nil {
			t.Fatalf("%s: protojson accepts it; the test is wrong", name)
		}
		if _, ok := appendDecision(nil, d); ok {
			t.Errorf("%s: appendDecision wrote it; protojson rejects it", name)
		}
	}
}

func BenchmarkDecisionJSON(b *testing.B) {
	d := &tactv1.DecideResponse{
		DecisionId: "01a207b4-e5e7-7a7d-90ff-4bf25cd86043", Action: tactv1.Action_ACTION_OFFER_NOW,
		Offers: []*tactv1.Offer{{ProductId: "home_insurance", Name: "Home insurance", Propensity: 0.648221, Score: 55.3399, Rank: 1,
			TalkingPoints: []string{"Cover for buildings and contents in one policy."}}},
		Reasons: []*tactv1.Reason{{Code: tactv1.ReasonCode_REASON_CODE_HIGH_PROPENSITY, Message: "Home insurance: propensity 0.65 clears the standard bar of 0.15; rank 1 of 5 eligible.", ProductId: "home_insurance"}},
		Tier:    "standard", ModelVersion: "demo-2", DecidedAt: timestamppb.Now(),
	}
	b.Run("protojson", func(b *testing.B) {
		b.ReportAllocs()
		m := protojson.MarshalOptions{UseProtoNames: true, EmitDefaultValues: true}
		for b.Loop() {
			if _, err := m.Marshal(d); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendDecision", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			if _, ok := appendDecision(buf[:0], d); !ok {
				b.Fatal("refused")
			}
		}
	})
}
