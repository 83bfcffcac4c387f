package model

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"testing"
	"testing/fstest"
)

// FuzzReadXGBoost: any JSON loads as a model or is refused; a model that
// loads scores a probability for any input.
func FuzzReadXGBoost(f *testing.F) {
	for _, path := range []string{"testdata/xgb_bank.json", "testdata/xgb_bench.json"} {
		if raw, err := os.ReadFile(path); err == nil {
			f.Add(raw)
		}
	}
	f.Add([]byte(`{"learner":{"objective":{"name":"binary:logistic"},"learner_model_param":{"base_score":"5E-1","num_feature":"1"},"feature_names":["x"],"gradient_booster":{"model":{"trees":[{"left_children":[1,-1,-1],"right_children":[2,-1,-1],"split_indices":[0,0,0],"split_conditions":[0.5,-1,1],"default_left":[1,0,0],"base_weights":[0,-1,1]}]}}}}`))
	f.Add([]byte(`{"learner":{"gradient_booster":{"model":{"trees":[{"left_children":[0],"right_children":[0]}]}}}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadXGBoost(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, v := range []float64{math.NaN(), -1e300, 0, 0.5, 1e300} {
			p := m.Score(constFeatures(v))
			if !(p >= 0 && p <= 1) {
				t.Fatalf("score %v for inputs %v", p, v)
			}
		}
	})
}

// constFeatures gives every numeric input the same value.
type constFeatures float64

func (c constFeatures) Num(string) (float64, bool) { return float64(c), !math.IsNaN(float64(c)) }
func (c constFeatures) Cat(string) (string, bool)  { return "", false }

// FuzzLoadBundle: any manifest and model file load as a bundle or are
// refused with an error; a bundle that loads scores in 0..1.
func FuzzLoadBundle(f *testing.F) {
	lm, err := NewLogistic([]Input{{Name: "x", Kind: Numeric, Std: 1}}, []float64{0.7}, -0.2, Meta{})
	if err != nil {
		f.Fatal(err)
	}
	var model bytes.Buffer
	if err := lm.WriteJSON(&model); err != nil {
		f.Fatal(err)
	}
	man, _ := json.Marshal(Manifest{Format: FormatBundle, Version: "v1", Models: map[string]ManifestModel{"p": {Type: "logistic", File: "p.json"}}})
	f.Add(man, model.Bytes())
	f.Add([]byte(`{"format":"tact.bundle.v1","version":"v","models":{"p":{"type":"xgboost","file":"p.json"}}}`), []byte(`{}`))
	f.Add([]byte(`{"format":"tact.bundle.v1","version":"v","models":{"p":{"type":"logistic","file":"../p.json","calibration":{"a":1e308,"b":-1e308}}}}`), model.Bytes())
	f.Fuzz(func(t *testing.T, manifest, modelFile []byte) {
		fsys := fstest.MapFS{"b/bundle.json": {Data: manifest}, "b/p.json": {Data: modelFile}}
		b, err := LoadBundle(fsys, "b")
		if err != nil {
			return
		}
		n := len(b.Products())
		out, scratch := make([]float64, n), make([]float64, n)
		for _, v := range []float64{math.NaN(), 0, 1e300} {
			b.ScoreAll(constFeatures(v), out, scratch)
			for i, p := range out {
				if !(p >= 0 && p <= 1) {
					t.Fatalf("%s scores %v", b.Products()[i], p)
				}
			}
		}
	})
}
