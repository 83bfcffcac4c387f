package features

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

func randomDecision(rng *rand.Rand) DecisionRecord {
	words := []string{"", "offer_now", "card", "é-ü", "model-cc-2026-11", "phone_inbound", "x"}
	w := func() string { return words[rng.IntN(len(words))] }
	d := DecisionRecord{ID: fmt.Sprintf("0196%012x", rng.Uint64()>>16), ClientID: w(), Channel: w(), Action: w(),
		Tier: w(), ModelVersion: w(), Reason: w(), Degraded: rng.IntN(2) == 0,
		At: time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).UTC()}
	for range rng.IntN(4) {
		d.Products = append(d.Products, w())
	}
	for range rng.IntN(3) {
		d.Exposures = append(d.Exposures, Exposure{Experiment: w(), Feature: w(), VariationID: rng.IntN(5) - 1, Variation: w(), Name: w()})
	}
	if rng.IntN(2) == 0 {
		dt := &DecisionDetail{Reason: w(), Stage: w(), Sentiment: w(), Queue: w(), QueueState: w(), Pressure: rng.Float64()}
		for range rng.IntN(4) {
			dt.Candidates = append(dt.Candidates, CandidateRecord{Product: w(), Propensity: rng.Float64(), Value: 100 * rng.Float64(),
				Cost: rng.Float64(), Gate: w(), Prob: rng.Float64()})
		}
		if rng.IntN(2) == 0 {
			dt.Features = PackFeatures(&Record{Values: map[string]Value{"age": Number(rng.Float64()), "tier": String(w()), "x": Bool(true)}})
		}
		d.Detail = dt
	}
	return d
}

func TestDecisionCodecRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 2000 {
		d := randomDecision(rng)
		raw, err := encodeDecision(&d)
		if err != nil {
			t.Fatal(err)
		}
		if raw[0] != decisionV2 {
			t.Fatalf("record %d written as %q, not the binary form", i, raw[:1])
		}
		var got DecisionRecord
		if err := decodeDecision(raw, &got); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, d) {
			t.Fatalf("record %d: read back\n%+v\nwrote\n%+v", i, got, d)
		}
		// The log's first form, JSON, reads the same.
		old, _ := json.Marshal(&d)
		var fromJSON DecisionRecord
		if err := decodeDecision(old, &fromJSON); err != nil || !reflect.DeepEqual(fromJSON, d) {
			t.Fatalf("record %d from JSON: %v\n%+v", i, err, fromJSON)
		}
		// Every truncation, and a byte too many, is an error, not a panic
		// or a wrong record.
		for n := range len(raw) {
			var cut DecisionRecord
			if err := decodeDecision(raw[:n], &cut); err == nil {
				t.Fatalf("record %d cut to %d of %d bytes decoded: %+v", i, n, len(raw), cut)
			}
		}
		if err := decodeDecision(append(raw, 0), &got); err == nil {
			t.Fatalf("record %d with a trailing byte decoded", i)
		}
	}
}

// A record of the first binary form (before details were kept) reads as
// it did: no detail.
func TestDecisionCodecReadsV1(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for i := range 200 {
		d := randomDecision(rng)
		d.Detail = nil
		raw, _ := encodeDecision(&d)
		v1 := append([]byte{decisionV1}, raw[1:len(raw)-1]...) // no detail byte
		var got DecisionRecord
		if err := decodeDecision(v1, &got); err != nil || !reflect.DeepEqual(got, d) {
			t.Fatalf("record %d of v1: %v\n%+v\nwant %+v", i, err, got, d)
		}
	}
}

func TestPackedFeaturesRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	r := Record{ClientID: "C1", Values: map[string]Value{"age": Number(41), "segment": String("mass"), "consent_offers": Bool(true),
		"digital": Bool(false), "deposit_maturity": Time(at)}}
	b := PackFeatures(&r)
	got, err := UnpackFeatures("C1", b)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range r.Values {
		g, ok := got.Value(name)
		if !ok || g.Kind != v.Kind || g.Num != v.Num || g.Str != v.Str || g.Bool != v.Bool || !g.Time.Equal(v.Time) {
			t.Errorf("%s: read back %+v, want %+v", name, g, v)
		}
	}
	if got.Len() != len(r.Values) {
		t.Errorf("read back %d features, want %d", got.Len(), len(r.Values))
	}
	// A packed record (from the cache) packs to the same bytes.
	packed := r.pack()
	if string(PackFeatures(&packed)) != string(b) {
		t.Error("a cached record packs differently")
	}
	// Every truncation and every flipped byte is an error or a record,
	// never a panic.
	for n := range len(b) {
		if _, err := UnpackFeatures("C1", b[:n]); err == nil && n < len(b) {
			t.Errorf("cut to %d of %d bytes unpacked", n, len(b))
		}
		for _, x := range []byte{0xff, 0x01} {
			c := slices.Clone(b)
			c[n] ^= x
			_, _ = UnpackFeatures("C1", c)
		}
	}
}

func TestDecisionCodecOutOfRangeTimeIsJSON(t *testing.T) {
	d := DecisionRecord{ID: "d1", ClientID: "C1", Action: "no_offer", At: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}
	raw, err := encodeDecision(&d)
	if err != nil {
		t.Fatal(err)
	}
	var got DecisionRecord
	if raw[0] != '{' || decodeDecision(raw, &got) != nil || !got.At.Equal(d.At) {
		t.Fatalf("a decision in 2300 was written as %q and read as %+v", raw, got)
	}
}

func FuzzDecodeDecision(f *testing.F) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 3 {
		d := randomDecision(rng)
		raw, _ := encodeDecision(&d)
		f.Add(raw)
	}
	f.Add([]byte(`{"id":"d1","at":"2026-11-23T10:00:00Z"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var d DecisionRecord
		if err := decodeDecision(raw, &d); err != nil || len(raw) == 0 || raw[0] == '{' {
			return
		}
		// What decodes from the binary form writes and reads back the
		// same (not always the same bytes: a varint may be written
		// longer than needed, as the committed seed has).
		again, err := encodeDecision(&d)
		if err != nil {
			t.Fatal(err)
		}
		var back DecisionRecord
		if err := decodeDecision(again, &back); err != nil || !reflect.DeepEqual(back, d) {
			t.Fatalf("decoded %+v\nre-encoded %x, read back %+v, %v", d, again, back, err)
		}
	})
}

// BenchmarkEncodeDecision writes an offer's record as the log keeps it:
// without its detail (as before the learning loop), and with the detail
// of a demo decision (8 products, 21 features as scored). It reports the
// bytes a decision takes.
func BenchmarkEncodeDecision(b *testing.B) {
	d := DecisionRecord{ID: "01a23a87-1878-78ba-a01d-4e572b241831", ClientID: "C00003", Channel: "phone_inbound", Action: "offer_now",
		Products: []string{"home_insurance"}, Tier: "standard", ModelVersion: "demo-2", Reason: "high_propensity",
		At: time.Date(2026, 12, 3, 6, 11, 1, 880570164, time.UTC)}
	vals := map[string]Value{"tier": String("standard"), "contact_hours_phone_outbound": String("17:00-20:00")}
	for _, n := range []string{"age", "income_monthly", "balance", "tenure_years", "num_products", "days_to_deposit_maturity", "payday"} {
		vals[n] = Number(12345.67)
	}
	for _, n := range []string{"digital_active", "consent_offers", "consent_outbound", "deposit_matures_within_60d", "holds_credit_card",
		"holds_premium_card", "holds_savings_account", "holds_term_deposit", "holds_personal_loan", "holds_mortgage", "holds_home_insurance", "holds_investment_fund"} {
		vals[n] = Bool(true)
	}
	detail := &DecisionDetail{Reason: "sales_enquiry", Stage: "in_progress", Sentiment: "neutral", Queue: "retail", QueueState: "calm", Pressure: 0.4,
		Features: PackFeatures(&Record{Values: vals})}
	for _, p := range []string{"credit_card", "home_insurance", "investment_fund", "mortgage", "personal_loan", "premium_card", "savings_account", "term_deposit"} {
		detail.Candidates = append(detail.Candidates, CandidateRecord{Product: p, Propensity: 0.2865874966373196, Value: 80, Cost: 9, Gate: "tier_bar", Prob: 0.95})
	}
	for _, tc := range []struct {
		name   string
		detail *DecisionDetail
	}{{"without_detail", nil}, {"with_detail", detail}} {
		b.Run(tc.name, func(b *testing.B) {
			d.Detail = tc.detail
			var n int
			for b.Loop() {
				raw, err := encodeDecision(&d)
				if err != nil {
					b.Fatal(err)
				}
				n = len(raw)
			}
			b.ReportMetric(float64(n), "bytes/decision")
		})
	}
}
