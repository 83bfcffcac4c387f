package experiment

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/tact-nba/tact/model/demo"
	"github.com/tact-nba/tact/model/policy"
)

func demoEnv(t testing.TB) Env {
	t.Helper()
	cat, err := demo.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	schema, err := demo.Schema()
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Default(cat, schema)
	if err != nil {
		t.Fatal(err)
	}
	return Env{Policy: pol, Catalog: cat, Schema: schema, Bundle: demo.Bundles}
}

func parse(t *testing.T, js string) (*Set, error) {
	t.Helper()
	s, err := Parse([]byte(js), demoEnv(t))
	if s != nil {
		t.Cleanup(s.Close)
	}
	return s, err
}

// TestSplitOf100kClients: the README's champion/challenger config splits
// 100,000 client ids 50/50 within the SRM check's tolerance, and assigns
// each id the same way every time.
func TestSplitOf100kClients(t *testing.T) {
	raw, err := os.ReadFile("../../examples/experiments.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := parse(t, string(raw))
	if err != nil {
		t.Fatal(err)
	}
	info := s.Experiments()["model-cc-2026-11"]
	if info == nil || len(info.Variations) != 2 || info.Variations[1].Key != "challenger" {
		t.Fatalf("experiments %+v", s.Experiments())
	}
	tally := NewTally(info)
	ctx := context.Background()
	first := make([]int, 100_000)
	for i := range first {
		id := fmt.Sprintf("C%07d", i)
		exps, res, err := s.Assign(ctx, Attributes{ClientID: id, Tier: "standard", Channel: "web"})
		if err != nil || len(exps) != 1 {
			t.Fatalf("%s: %v %v", id, exps, err)
		}
		first[i] = exps[0].VariationID
		if (res != nil && res.Bundle != nil && res.Bundle.Version() == demo.ChallengerVersion) != (exps[0].Variation == "challenger") {
			t.Fatalf("%s: in %s, resolved to %+v", id, exps[0].Variation, res)
		}
		tally.Decision(id, id, false, exps)
	}
	r := tally.Results()
	n0, n1 := r.Variations[0].Clients, r.Variations[1].Clients
	t.Logf("champion %d, challenger %d, SRM p = %.4f", n0, n1, r.SRMPValue)
	if r.SRM || n0+n1 != 100_000 {
		t.Errorf("split %d / %d: SRM p %.6f", n0, n1, r.SRMPValue)
	}
	// The same ids again, with other attributes: the same variants.
	for i := 0; i < len(first); i += 7 {
		id := fmt.Sprintf("C%07d", i)
		exps, _, _ := s.Assign(ctx, Attributes{ClientID: id, Tier: "gold", Channel: "phone_inbound", Queue: "retail"})
		if len(exps) != 1 || exps[0].VariationID != first[i] {
			t.Fatalf("%s: variation %v the second time, %d the first", id, exps, first[i])
		}
	}
}

func TestConfigErrorsNameTheirPath(t *testing.T) {
	for js, want := range map[string]string{
		`{"features": {"f": {"defaultValue": {"model_version": "v9"}}}}`:                                              `features.f.defaultValue: model_version: no demo model bundle has version "v9"`,
		`{"features": {"f": {"defaultValue": {}, "rules": [{"variations": [{}, {"modle_version": "x"}]}]}}}`:          `features.f.rules[0].variations[1]: not a Tact override object: json: unknown field "modle_version"`,
		`{"features": {"f": {"defaultValue": {}, "rules": [{"force": {"tiers": {"gold": {"min_propensity": 2}}}}]}}}`: "features.f.rules[0].force: tiers[1].min_propensity: 2 not in 0..1",
		`{"features": {"f": {"defaultValue": 3}}}`:                                                                    "features.f.defaultValue: not a Tact override object",
		`{"features": {"f": {"defaultValue": {}, "rules": [{"variations": [{}]}]}}}`:                                  "features.f.rules[0].variations: an experiment needs two variations",
		`{"features": {"f": {"defaultValue": {}, "rules": [{"variations": [{}, {}], "weights": [0.5]}]}}}`:            "features.f.rules[0].weights: 1 weights for 2 variations",
		`{"features": {"f": {"defaultValue": {}, "rules": [{"variations": [{}, {}], "weights": [0.7, 0.6]}]}}}`:       "features.f.rules[0].weights: [0.7 0.6] must be at least 0 each and add up to 1",
		`{"features": {"f": {"defaultValue": {}, "rules": [{"variations": [{}, {}], "coverage": 1.5}]}}}`:             "features.f.rules[0].coverage: 1.5 not in 0..1",
		`{"feature": {}}`: `experiments: "features": missing`,
		`{"features": {}, "encryptedFeatures": "abc"}`: "encrypted payloads are not supported",
		`{"features": {"a": {"defaultValue": {}, "rules": [{"key": "x", "variations": [{}, {}]}]}, "b": {"defaultValue": {}, "rules": [{"key": "x", "variations": [{}, {}]}]}}}`: `experiment "x" is also run by feature "a"`,
	} {
		_, err := parse(t, js)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s:\n got %v\nwant %q", js, err, want)
		}
	}
}

// TestProtectionStaysOn: a variant that lowers platinum's bar is refused
// unless it says weaken_protection, and then it is listed as a warning.
func TestProtectionStaysOn(t *testing.T) {
	weak := `{"features": {"f": {"defaultValue": {}, "rules": [{"key": "bar", "variations": [{}, {"tiers": {"platinum": {"min_propensity": 0.1}}%s}]}]}}}`
	_, err := parse(t, fmt.Sprintf(weak, ""))
	if err == nil || !strings.Contains(err.Error(), "features.f.rules[0].variations[1]: weakens the protection") || !strings.Contains(err.Error(), "tiers.platinum.min_propensity 0.1 below 0.4") {
		t.Fatalf("weaker platinum bar without the flag: %v", err)
	}
	s, err := parse(t, fmt.Sprintf(weak, `, "weaken_protection": true`))
	if err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(s.Warnings(), "\n"); !strings.Contains(w, "tiers.platinum.min_propensity 0.1 below 0.4") {
		t.Errorf("warnings %q lack the weakened bar", w)
	}
	// A stricter variant for platinum needs no flag.
	if _, err := parse(t, `{"features": {"f": {"defaultValue": {}, "rules": [{"variations": [{}, {"tiers": {"platinum": {"min_propensity": 0.6}}}]}]}}}`); err != nil {
		t.Errorf("stricter variant: %v", err)
	}
}

// TestCombinedExperiments: a client in two experiments gets both
// variants' overrides, the later feature winning on a shared key.
func TestCombinedExperiments(t *testing.T) {
	s, err := parse(t, `{"features": {
		"a-bar": {"defaultValue": {}, "rules": [{"key": "bar", "coverage": 1, "variations": [{"tiers": {"standard": {"min_propensity": 0.3}}}, {"tiers": {"standard": {"min_propensity": 0.3}}}]}]},
		"b-model": {"defaultValue": {}, "rules": [{"key": "model", "variations": [{"model_version": "demo-2-challenger", "tiers": {"standard": {"min_propensity": 0.25}}}, {"model_version": "demo-2-challenger", "tiers": {"standard": {"min_propensity": 0.25}}}]}]}}}`)
	if err != nil {
		t.Fatal(err)
	}
	exps, r, err := s.Assign(context.Background(), Attributes{ClientID: "C1"})
	if err != nil || len(exps) != 2 || r == nil || r.Policy == nil || r.Bundle == nil {
		t.Fatalf("assign: %v %+v %v", exps, r, err)
	}
	if got := r.Policy.Tier("standard").MinPropensity; got != 0.25 {
		t.Errorf("standard bar %v, want 0.25 (the later feature)", got)
	}
	if r.Bundle.Version() != demo.ChallengerVersion {
		t.Errorf("bundle %s", r.Bundle.Version())
	}
}

// BenchmarkAssign is what experiments add to a decision: the README's
// champion/challenger config evaluated for one client.
//
//	go test -run '^$' -bench Assign -benchmem ./model/experiment/
func BenchmarkAssign(b *testing.B) {
	raw, err := os.ReadFile("../../examples/experiments.json")
	if err != nil {
		b.Fatal(err)
	}
	env := demoEnv(b)
	s, err := Parse(raw, env)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = fmt.Sprintf("C%05d", i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		exps, _, err := s.Assign(ctx, Attributes{ClientID: ids[i%len(ids)], Tier: "gold", Channel: "phone_inbound", Queue: "retail", Reason: "sales_enquiry", Stage: "opening"})
		if err != nil || len(exps) != 1 {
			b.Fatal(exps, err)
		}
		i++
	}
}
