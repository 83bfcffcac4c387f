package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestSetMatchesModels scores random clients (values missing, categories
// unknown to some models) through a Set and model by model.
func TestSetMatchesModels(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	miss := 2.0
	mk := func(cats []string, mean, std float64, withMissing bool) []Input {
		in := []Input{
			{Name: "x", Kind: Numeric, Mean: mean, Std: std},
			{Name: "amount", Kind: Numeric, Transform: TransformLog1p, Mean: mean / 2, Std: std * 2},
			{Name: "age", Kind: Numeric, Transform: TransformBucketize, Edges: []float64{30, 50, 70}},
			{Name: "job", Kind: Categorical, Categories: cats},
		}
		if withMissing {
			in[0].Missing, in[2].Missing = &miss, &miss
		}
		return in
	}
	var models []*Logistic
	var names []string
	for p, spec := range []struct {
		cats        []string
		mean, std   float64
		withMissing bool
	}{
		{[]string{"admin", "tech"}, 1, 2, false},
		{[]string{"", "chef", "tech"}, -3, 0.5, true},
		{[]string{"retired"}, 10, 4, false},
	} {
		in := mk(spec.cats, spec.mean, spec.std, spec.withMissing)
		width := 0
		for i := range in {
			width += in[i].Width()
		}
		w := make([]float64, width)
		for j := range w {
			w[j] = rng.NormFloat64()
		}
		m, err := NewLogistic(in, w, rng.NormFloat64(), Meta{})
		if err != nil {
			t.Fatal(err)
		}
		models = append(models, m)
		names = append(names, fmt.Sprint("p", p))
	}
	set, err := NewSet(names, models)
	if err != nil {
		t.Fatal(err)
	}
	jobs := []string{"admin", "tech", "chef", "retired", "pilot"}
	out := make([]float64, set.Len())
	for i := range 2000 {
		f := row{}
		if rng.IntN(4) > 0 {
			f["x"] = rng.NormFloat64() * 3
		}
		if rng.IntN(4) > 0 {
			f["amount"] = rng.ExpFloat64()*1000 - 50
		}
		if rng.IntN(4) > 0 {
			f["age"] = float64(18 + rng.IntN(70))
		}
		if rng.IntN(4) > 0 {
			f["job"] = jobs[rng.IntN(len(jobs))]
		}
		set.ScoreAll(f, out)
		for mi, m := range models {
			if want := m.Score(f); math.Abs(out[mi]-want) > 1e-12 {
				t.Fatalf("client %d %v, model %d: set %.15f, model %.15f", i, f, mi, out[mi], want)
			}
		}
	}
	one := &mapFeatures{num: map[string]float64{"x": 1}, cat: map[string]string{"job": "tech"}}
	// Under -race sync.Pool drops items at random, so allocations are
	// counted only without it.
	if a := testing.AllocsPerRun(100, func() { set.ScoreAll(one, out) }); a != 0 && !raceEnabled {
		t.Errorf("ScoreAll allocates %v times", a)
	}
	if _, err := NewSet([]string{"a"}, nil); err == nil {
		t.Error("NewSet with mismatched names succeeded")
	}
}
