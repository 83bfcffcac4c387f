package model

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// mapFeatures is a client's features in maps, as the feature store gives
// them.
type mapFeatures struct {
	num map[string]float64
	cat map[string]string
}

func (m *mapFeatures) Num(name string) (float64, bool) { v, ok := m.num[name]; return v, ok }
func (m *mapFeatures) Cat(name string) (string, bool)  { v, ok := m.cat[name]; return v, ok }

// BenchmarkLogistic50x64 scores 50 products, each a logistic model over the
// same 64 features (56 numeric, 8 categorical), for one client: the work
// of one Decide.
func BenchmarkLogistic50x64(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	f := &mapFeatures{num: map[string]float64{}, cat: map[string]string{}}
	var inputs []Input
	width := 0
	for i := range 64 {
		name := fmt.Sprintf("f%02d", i)
		if i%8 == 7 {
			cats := []string{"a", "b", "c", "d", "e"}
			inputs = append(inputs, Input{Name: name, Kind: Categorical, Categories: cats})
			f.cat[name] = cats[rng.IntN(6)%5]
			width += 6
			continue
		}
		in := Input{Name: name, Kind: Numeric, Mean: 1, Std: 2}
		if i%8 == 3 {
			in.Transform = TransformLog1p
		}
		inputs = append(inputs, in)
		f.num[name] = rng.NormFloat64()
		width++
	}
	models := make([]*Logistic, 50)
	for p := range models {
		w := make([]float64, width)
		for j := range w {
			w[j] = rng.NormFloat64() / 8
		}
		m, err := NewLogistic(inputs, w, -2, Meta{})
		if err != nil {
			b.Fatal(err)
		}
		models[p] = m
	}
	names := make([]string, len(models))
	for i := range names {
		names[i] = fmt.Sprint("p", i)
	}
	set, err := NewSet(names, models)
	if err != nil {
		b.Fatal(err)
	}
	out := make([]float64, set.Len())
	b.Run("set", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			set.ScoreAll(f, out)
		}
	})
	b.Run("set_cached_client", func(b *testing.B) {
		// A client from the feature cache: its features are read once per
		// bundle (Memo), then every decision scores from the resolved view.
		mf := &memoFeatures{mapFeatures: f}
		b.ReportAllocs()
		for b.Loop() {
			set.ScoreAll(mf, out)
		}
	})
	b.Run("one_by_one", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i, m := range models {
				out[i] = m.Score(f)
			}
		}
	})
}

// BenchmarkXGBoost200x4 scores one product with 200 trees of depth 4.
func BenchmarkXGBoost200x4(b *testing.B) {
	m := readXGB(b, "testdata/xgb_bench.json")
	if m.Trees != 200 {
		b.Fatalf("%d trees, want 200", m.Trees)
	}
	f := &mapFeatures{num: map[string]float64{"age": 41, "campaign": 2, "pdays": 999, "previous": 0, "emp.var.rate": 1.1, "cons.price.idx": 93.9, "cons.conf.idx": -36.4, "euribor3m": 4.86, "nr.employed": 5191}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var sink float64
		for pb.Next() {
			sink += m.Score(f)
		}
		_ = sink
	})
}

// memoFeatures keeps a memo like the feature cache's records.
type memoFeatures struct {
	*mapFeatures
	key, v any
}

func (m *memoFeatures) Memo(key any) (any, bool) {
	if m.key != key {
		return nil, false
	}
	return m.v, true
}

func (m *memoFeatures) Memoize(key, v any) { m.key, m.v = key, v }
