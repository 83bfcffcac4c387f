package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"

	growthbook "github.com/growthbook/growthbook-golang"
)

// The GrowthBook SDKs' shared test cases (testdata/growthbook), run through
// the Go SDK's public API: what Tact uses to assign clients must assign
// them as GrowthBook does everywhere else.
type gbCases struct {
	Hash           [][4]json.RawMessage `json:"hash"`
	GetBucketRange [][3]json.RawMessage `json:"getBucketRange"`
	Choose         [][4]json.RawMessage `json:"chooseVariation"`
	Run            [][6]json.RawMessage `json:"run"`
}

func loadCases(t *testing.T) *gbCases {
	t.Helper()
	raw, err := os.ReadFile("testdata/growthbook/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var c gbCases
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Hash) == 0 || len(c.GetBucketRange) == 0 || len(c.Choose) == 0 || len(c.Run) == 0 {
		t.Fatalf("cases.json lacks a section: %d hash, %d bucket range, %d choose, %d run", len(c.Hash), len(c.GetBucketRange), len(c.Choose), len(c.Run))
	}
	return &c
}

func must[T any](t *testing.T, raw json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return v
}

func newGB(t *testing.T, opts ...growthbook.ClientOption) *growthbook.Client {
	t.Helper()
	// The cases include invalid weights, which the SDK warns about.
	opts = append(opts, growthbook.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	c, err := growthbook.NewClient(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// bucketOf runs a two-way experiment for one hash value and returns the
// hash the SDK computed (the result's bucket), or nil when it did not hash.
func bucketOf(t *testing.T, gb *growthbook.Client, exp growthbook.Experiment, value string) *growthbook.ExperimentResult {
	t.Helper()
	c, err := gb.WithAttributes(growthbook.Attributes{"id": value})
	if err != nil {
		t.Fatal(err)
	}
	return c.RunExperiment(context.Background(), &exp)
}

// TestGrowthBookHashCases: the hash of (seed, value, version), read as the
// bucket of an experiment seeded with seed for a client with that id.
func TestGrowthBookHashCases(t *testing.T) {
	gb := newGB(t)
	for _, c := range loadCases(t).Hash {
		seed, value, version := must[string](t, c[0]), must[string](t, c[1]), must[int](t, c[2])
		want := must[*float64](t, c[3])
		// An empty seed makes the SDK seed with the key: the key is the seed.
		exp := growthbook.Experiment{Key: seed, Seed: seed, HashVersion: version, Variations: []growthbook.FeatureValue{0, 1}}
		res := bucketOf(t, gb, exp, value)
		switch {
		case want == nil && res.Bucket != nil:
			t.Errorf("hash(%q, %q, v%d) = %v, want none", seed, value, version, *res.Bucket)
		case want != nil && (res.Bucket == nil || *res.Bucket != *want):
			t.Errorf("hash(%q, %q, v%d) = %v, want %v", seed, value, version, res.Bucket, *want)
		}
	}
}

// variationFor is the oracle the cases define: the first range holding n.
func variationFor(n float64, ranges [][2]float64) int {
	for i, r := range ranges {
		if n >= r[0] && n < r[1] {
			return i
		}
	}
	return -1
}

// TestGrowthBookChooseVariationCases checks the oracle against the cases,
// then the SDK against the oracle: 2,000 client ids per case, each with the
// bucket the SDK hashed it to, must get the variation whose range holds
// that bucket.
func TestGrowthBookChooseVariationCases(t *testing.T) {
	gb := newGB(t)
	for _, c := range loadCases(t).Choose {
		name, n := must[string](t, c[0]), must[float64](t, c[1])
		ranges, want := must[[][2]float64](t, c[2]), must[int](t, c[3])
		if got := variationFor(n, ranges); got != want {
			t.Fatalf("%s: the oracle gives %d, the case %d", name, got, want)
		}
		exp := growthbook.Experiment{Key: "choose-" + name}
		for i, r := range ranges {
			exp.Variations = append(exp.Variations, i)
			exp.Ranges = append(exp.Ranges, growthbook.BucketRange{Min: r[0], Max: r[1]})
		}
		checkAgainstOracle(t, gb, name, exp, ranges)
	}
}

// TestGrowthBookBucketRangeCases: the SDK's ranges for a variation count,
// coverage and weights, seen through 2,000 assignments per case.
func TestGrowthBookBucketRangeCases(t *testing.T) {
	gb := newGB(t)
	for _, c := range loadCases(t).GetBucketRange {
		name := must[string](t, c[0])
		args := must[[3]json.RawMessage](t, c[1])
		nv, coverage := must[int](t, args[0]), must[float64](t, args[1])
		weights := must[[]float64](t, args[2])
		ranges := must[[][2]float64](t, c[2])
		exp := growthbook.Experiment{Key: "range-" + name, Coverage: &coverage, Weights: weights}
		for i := range nv {
			exp.Variations = append(exp.Variations, i)
		}
		checkAgainstOracle(t, gb, name, exp, ranges)
	}
}

func checkAgainstOracle(t *testing.T, gb *growthbook.Client, name string, exp growthbook.Experiment, ranges [][2]float64) {
	t.Helper()
	seen := map[int]int{}
	for i := range 2000 {
		id := fmt.Sprintf("client-%d", i)
		res := bucketOf(t, gb, exp, id)
		// A client outside every range gets no bucket in its result: the
		// same key (the seed) over one full range hashes it the same way.
		probe := bucketOf(t, gb, growthbook.Experiment{Key: exp.Key, Variations: []growthbook.FeatureValue{0, 1},
			Ranges: []growthbook.BucketRange{{Min: 0, Max: 1}, {Min: 1, Max: 1}}}, id)
		if probe.Bucket == nil || (res.Bucket != nil && *res.Bucket != *probe.Bucket) {
			t.Fatalf("%s: bucket of %s: %v, probe %v", name, id, res.Bucket, probe.Bucket)
		}
		want := variationFor(*probe.Bucket, ranges)
		got := res.VariationId
		if !res.InExperiment {
			got = -1
		}
		if got != want {
			t.Fatalf("%s: %s at bucket %v got variation %d, the ranges %v give %d", name, id, *probe.Bucket, got, ranges, want)
		}
		seen[got]++
	}
	// Every range wider than a sliver was hit: the check saw each variation.
	for i, r := range ranges {
		if r[1]-r[0] >= 0.01 && seen[i] == 0 {
			t.Errorf("%s: no client landed in range %d %v", name, i, r)
		}
	}
}

// TestGrowthBookRunCases: whole experiment runs (targeting, coverage,
// weights, namespaces, forced and QA modes).
func TestGrowthBookRunCases(t *testing.T) {
	for _, c := range loadCases(t).Run {
		name := must[string](t, c[0])
		var ctx struct {
			Attributes       growthbook.Attributes          `json:"attributes"`
			QAMode           bool                           `json:"qaMode"`
			URL              string                         `json:"url"`
			ForcedVariations growthbook.ForcedVariationsMap `json:"forcedVariations"`
			Features         growthbook.FeatureMap          `json:"features"`
			Enabled          *bool                          `json:"enabled"`
			SavedGroups      json.RawMessage                `json:"savedGroups"`
		}
		if err := json.Unmarshal(c[1], &ctx); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		opts := []growthbook.ClientOption{growthbook.WithAttributes(ctx.Attributes), growthbook.WithQaMode(ctx.QAMode),
			growthbook.WithForcedVariations(ctx.ForcedVariations), growthbook.WithFeatures(ctx.Features)}
		if ctx.URL != "" {
			opts = append(opts, growthbook.WithUrl(ctx.URL))
		}
		if ctx.Enabled != nil {
			opts = append(opts, growthbook.WithEnabled(*ctx.Enabled))
		}
		gb := newGB(t, opts...)
		if ctx.SavedGroups != nil {
			if err := gb.UpdateFromApiResponseJSON(fmt.Sprintf(`{"features": {}, "savedGroups": %s}`, ctx.SavedGroups)); err != nil {
				t.Fatalf("%s: saved groups: %v", name, err)
			}
			if ctx.Features != nil {
				if err := gb.SetFeatures(ctx.Features); err != nil {
					t.Fatal(err)
				}
			}
		}
		exp := must[growthbook.Experiment](t, c[2])
		res := gb.RunExperiment(context.Background(), &exp)
		got, _ := json.Marshal(res.Value)
		var want any
		_ = json.Unmarshal(c[3], &want)
		wantJSON, _ := json.Marshal(want)
		inExp, hashUsed := must[bool](t, c[4]), must[bool](t, c[5])
		if string(got) != string(wantJSON) || res.InExperiment != inExp || res.HashUsed != hashUsed {
			t.Errorf("%s: value %s in=%v hashed=%v; want %s in=%v hashed=%v", name, got, res.InExperiment, res.HashUsed, wantJSON, inExp, hashUsed)
		}
	}
}
