package model

import (
	"bytes"
	"math"
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

func TestBundleMixesLogisticAndXGBoost(t *testing.T) {
	xgbRaw, err := os.ReadFile("testdata/xgb_bank.json")
	if err != nil {
		t.Fatal(err)
	}
	lm, err := NewLogistic([]Input{{Name: "age", Kind: Numeric, Mean: 40, Std: 10}, {Name: "job", Kind: Categorical, Categories: []string{"admin"}}}, []float64{0.5, 1, -1}, -1, Meta{Rows: 7})
	if err != nil {
		t.Fatal(err)
	}
	var lraw bytes.Buffer
	if err := lm.WriteJSON(&lraw); err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{
		"b/bundle.json": {Data: []byte(`{"format":"tact.bundle.v1","version":"t-1","models":{
			"card":{"type":"logistic","file":"card.json"},
			"fund":{"type":"xgboost","file":"fund.xgb.json","calibration":{"a":0.5,"b":0.25}}}}`)},
		"b/card.json":     {Data: lraw.Bytes()},
		"b/fund.xgb.json": {Data: xgbRaw},
	}
	b, err := LoadBundle(fsys, "b")
	if err != nil {
		t.Fatal(err)
	}
	xm, err := ReadXGBoost(bytes.NewReader(xgbRaw))
	if err != nil {
		t.Fatal(err)
	}
	if b.Version() != "t-1" || strings.Join(b.Products(), ",") != "card,fund" {
		t.Fatalf("version %q, products %v", b.Version(), b.Products())
	}
	if m, ok := b.Meta("card"); !ok || m.Rows != 7 {
		t.Errorf("Meta(card) = %+v, %v", m, ok)
	}
	f := &mapFeatures{num: map[string]float64{"age": 52, "euribor3m": 1.2}, cat: map[string]string{"job": "admin"}}
	out, scratch := make([]float64, 2), make([]float64, 2)
	b.ScoreAll(f, out, scratch)
	if want := lm.Score(f); math.Abs(out[0]-want) > 1e-12 {
		t.Errorf("card = %v, want %v", out[0], want)
	}
	p := xm.Score(f)
	if want := sigmoid(0.5*math.Log(p/(1-p)) + 0.25); math.Abs(out[1]-want) > 1e-12 {
		t.Errorf("fund (calibrated) = %v, want %v", out[1], want)
	}
}

func TestLoadBundleReportsEveryProblem(t *testing.T) {
	fsys := fstest.MapFS{
		"b/bundle.json": {Data: []byte(`{"format":"tact.bundle.v2","version":"","models":{
			"a":{"type":"forest","file":"a.json"},
			"b":{"type":"logistic","file":"missing.json"},
			"c":{"type":"logistic","file":"../escape.json"},
			"d":{"type":"logistic","file":"d.json"}},"learning":"learned.json"}`)},
		"b/a.json":       {Data: []byte(`{}`)},
		"b/d.json":       {Data: []byte(`{"format":"tact.logistic.v1","inputs":[],"weights":[],"bias":0}`)},
		"b/learned.json": {Data: []byte(`{not json`)},
	}
	_, err := LoadBundle(fsys, "b")
	if err == nil {
		t.Fatal("a broken bundle loaded")
	}
	for _, want := range []string{"format", "version: empty", `models[a].type: "forest"`, "models[b].file", "models[c].file", "models[d]: d.json", "no inputs",
		"learning: learned.json is not JSON"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := LoadBundle(fstest.MapFS{"b/bundle.json": {Data: []byte(`{"format":"tact.bundle.v1","version":"x","models":{},"extra":1}`)}}, "b"); err == nil || !strings.Contains(err.Error(), "extra") {
		t.Errorf("unknown manifest field: %v", err)
	}
}
