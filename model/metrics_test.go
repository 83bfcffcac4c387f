package model

import (
	"math"
	"testing"
)

func TestEvaluateKnownValues(t *testing.T) {
	// Hand-checked: positives at scores 0.9 and 0.4, negatives 0.8, 0.4, 0.1.
	// Pairs (pos, neg): (0.9 beats all 3) + (0.4: beats 0.1, ties 0.4, loses
	// to 0.8 = 1.5) = 4.5 of 6.
	scores := []float64{0.9, 0.8, 0.4, 0.4, 0.1}
	labels := []bool{true, false, true, false, false}
	e, err := Evaluate(scores, labels, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := 4.5 / 6; math.Abs(e.ROCAUC-want) > 1e-12 {
		t.Errorf("ROC AUC = %v, want %v", e.ROCAUC, want)
	}
	// Thresholds: 0.9 (r=.5, p=1), 0.8 (r=.5), 0.4 (r=1, p=2/4).
	if want := 0.5*1 + 0.5*0.5; math.Abs(e.PRAUC-want) > 1e-12 {
		t.Errorf("PR AUC = %v, want %v", e.PRAUC, want)
	}
	wantLL := -(math.Log(0.9) + math.Log(0.2) + math.Log(0.4) + math.Log(0.6) + math.Log(0.9)) / 5
	if math.Abs(e.LogLoss-wantLL) > 1e-12 {
		t.Errorf("log loss = %v, want %v", e.LogLoss, wantLL)
	}
	wantBrier := (0.01 + 0.64 + 0.36 + 0.16 + 0.01) / 5
	if math.Abs(e.Brier-wantBrier) > 1e-12 {
		t.Errorf("Brier = %v, want %v", e.Brier, wantBrier)
	}
	if e.TopK != 2 || e.TopKHits != 1 {
		t.Errorf("top 2 hits = %d of %d, want 1 of 2", e.TopKHits, e.TopK)
	}
	if len(e.Deciles) != 10 || len(e.Calibration) != 10 {
		t.Fatalf("%d deciles, %d calibration bins", len(e.Deciles), len(e.Calibration))
	}
	if c := e.Calibration[9]; c.N != 1 || c.Rate != 1 {
		t.Errorf("calibration bin 0.9-1.0 = %+v, want 1 row, rate 1", c)
	}
	if _, err := Evaluate([]float64{0.5}, []bool{true}, 0); err == nil {
		t.Error("one-class labels evaluated")
	}
	if _, err := Evaluate([]float64{1.5, 0}, []bool{true, false}, 0); err == nil {
		t.Error("score above 1 evaluated")
	}
}

func TestEvaluatePerfectAndInverted(t *testing.T) {
	scores := []float64{0.1, 0.2, 0.3, 0.7, 0.8, 0.9}
	labels := []bool{false, false, false, true, true, true}
	e, _ := Evaluate(scores, labels, 0)
	if e.ROCAUC != 1 || e.PRAUC != 1 {
		t.Errorf("perfect ranking: ROC %v PR %v, want 1 and 1", e.ROCAUC, e.PRAUC)
	}
	for i := range labels {
		labels[i] = !labels[i]
	}
	e, _ = Evaluate(scores, labels, 0)
	if e.ROCAUC != 0 {
		t.Errorf("inverted ranking: ROC %v, want 0", e.ROCAUC)
	}
}
