package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

type feats map[string]float64

func (f feats) Num(name string) (float64, bool) { v, ok := f[name]; return v, ok }

// TestFitRecoversKnownModel draws labels from a known logistic model and
// checks that Fit finds its weights again.
func TestFitRecoversKnownModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 20000
	trueW := []float64{1.5, -0.8}
	const trueB = -0.5
	rows := make([][]float64, n)
	labels := make([]bool, n)
	for i := range rows {
		x := []float64{rng.NormFloat64(), rng.NormFloat64()}
		rows[i] = x
		labels[i] = rng.Float64() < sigmoid(trueB+trueW[0]*x[0]+trueW[1]*x[1])
	}
	m, err := Fit([]string{"a", "b"}, rows, labels, FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Weights are on standardised inputs; the inputs are ~N(0,1) already.
	for j, w := range trueW {
		got := m.Weights[j] / m.Scale[j]
		if math.Abs(got-w) > 0.08 {
			t.Errorf("weight %d = %.3f, want %.3f ± 0.08", j, got, w)
		}
	}
	if got := m.Score(feats{"a": 0, "b": 0}); math.Abs(got-sigmoid(trueB)) > 0.03 {
		t.Errorf("Score at 0 = %.3f, want %.3f ± 0.03", got, sigmoid(trueB))
	}
	// Same data, same model.
	again, err := Fit([]string{"a", "b"}, rows, labels, FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Weights[0] != m.Weights[0] || again.Bias != m.Bias {
		t.Error("Fit is not deterministic")
	}
}

func TestScoreMissingInputIsMean(t *testing.T) {
	m := &Logistic{Inputs: []string{"a"}, Mean: []float64{10}, Scale: []float64{2}, Weights: []float64{3}, Bias: 0.2}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := m.Score(feats{}), sigmoid(0.2); got != want {
		t.Errorf("Score without input = %v, want %v", got, want)
	}
	if got, want := m.Score(feats{"a": 12}), sigmoid(0.2+3); math.Abs(got-want) > 1e-12 {
		t.Errorf("Score(a=12) = %v, want %v", got, want)
	}
	f := feats{"a": 1}
	if allocs := testing.AllocsPerRun(100, func() { m.Score(f) }); allocs != 0 {
		t.Errorf("Score allocates %v times", allocs)
	}
}

func TestValidateAndFitErrors(t *testing.T) {
	bad := []*Logistic{
		{},
		{Inputs: []string{"a"}, Mean: []float64{0}, Scale: []float64{0}, Weights: []float64{1}},
		{Inputs: []string{"a"}, Mean: []float64{0}, Scale: []float64{1}, Weights: []float64{math.NaN()}},
		{Inputs: []string{"a", "b"}, Mean: []float64{0}, Scale: []float64{1}, Weights: []float64{1}},
	}
	for i, m := range bad {
		if m.Validate() == nil {
			t.Errorf("bad model %d validated", i)
		}
	}
	if _, err := Fit([]string{"a"}, nil, nil, FitOptions{}); err == nil {
		t.Error("Fit with no rows succeeded")
	}
	if _, err := Fit([]string{"a"}, [][]float64{{1, 2}}, []bool{true}, FitOptions{}); err == nil {
		t.Error("Fit with a row of the wrong width succeeded")
	}
}
