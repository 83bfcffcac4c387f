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

// memoRow is a row that keeps one memoized value, like a cached record.
type memoRow struct {
	row
	key, v any
	stores int
}

func (m *memoRow) Memo(key any) (any, bool) {
	if m.key != key || m.key == nil {
		return nil, false
	}
	return m.v, true
}

func (m *memoRow) Memoize(key, v any) { m.key, m.v = key, v; m.stores++ }

func TestSetMemoizesReads(t *testing.T) {
	in := []Input{{Name: "x", Kind: Numeric, Mean: 1, Std: 2}, {Name: "job", Kind: Categorical, Categories: []string{"a"}}}
	m1, err := NewLogistic(in, []float64{0.5, 1, -1}, 0.1, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := NewLogistic(in, []float64{-0.5, 2, 0}, 0.3, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	s1, err := NewSet([]string{"p"}, []*Logistic{m1})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := NewSet([]string{"p"}, []*Logistic{m2})
	if err != nil {
		t.Fatal(err)
	}
	f := &memoRow{row: row{"x": 3.0, "job": "a"}}
	out := make([]float64, 1)
	for range 3 {
		s1.ScoreAll(f, out)
		if want := m1.Score(f.row); math.Abs(out[0]-want) > 1e-12 {
			t.Fatalf("memoized score %v, want %v", out[0], want)
		}
	}
	if f.stores != 1 {
		t.Errorf("features resolved %d times for one set, want 1", f.stores)
	}
	// Another set (a new bundle) resolves again and scores with its own
	// weights.
	s2.ScoreAll(f, out)
	if want := m2.Score(f.row); math.Abs(out[0]-want) > 1e-12 || f.stores != 2 {
		t.Errorf("after a new set: %v (want %v), %d resolutions (want 2)", out[0], want, f.stores)
	}
}
