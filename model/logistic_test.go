package model

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// row is a Features in a map, for tests.
type row map[string]any

func (r row) Num(name string) (float64, bool) {
	v, ok := r[name].(float64)
	return v, ok
}

func (r row) Cat(name string) (string, bool) {
	v, ok := r[name].(string)
	return v, ok
}

// TestTrainRecoversKnownModel draws labels from a known logistic model and
// checks that Train finds its weights again.
func TestTrainRecoversKnownModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 20000
	const wA, wB, b0 = 1.5, -0.8, -0.5
	catW := map[string]float64{"red": 0.7, "blue": -0.7}
	rows := make([]Features, n)
	labels := make([]bool, n)
	for i := range rows {
		a, bb := rng.NormFloat64(), rng.NormFloat64()
		c := "red"
		if rng.IntN(2) == 0 {
			c = "blue"
		}
		rows[i] = row{"a": a, "b": bb, "c": c}
		labels[i] = rng.Float64() < sigmoid(b0+wA*a+wB*bb+catW[c])
	}
	specs := []Input{{Name: "a", Kind: Numeric}, {Name: "b", Kind: Numeric}, {Name: "c", Kind: Categorical}}
	m, err := Train(specs, rows, labels, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Weights are on standardised inputs; a and b are ~N(0,1) already.
	for i, w := range []float64{wA, wB} {
		if got := m.Weights[i] / m.Inputs[i].Std; math.Abs(got-w) > 0.08 {
			t.Errorf("weight of %s = %.3f, want %.3f ± 0.08", m.Inputs[i].Name, got, w)
		}
	}
	// Categories sorted: blue, red, then unknown.
	if got := m.Weights[3] - m.Weights[2]; math.Abs(got-1.4) > 0.12 {
		t.Errorf("red - blue = %.3f, want 1.4 ± 0.12", got)
	}
	again, err := Train(specs, rows, labels, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for j := range m.Weights {
		if again.Weights[j] != m.Weights[j] {
			t.Fatal("Train is not deterministic")
		}
	}
	// Round trip through JSON scores the same.
	var buf bytes.Buffer
	if err := m.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := ReadLogistic(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows[:100] {
		if back.Score(r) != m.Score(r) {
			t.Fatal("score differs after a JSON round trip")
		}
	}
}

func TestScoreEncodings(t *testing.T) {
	miss := 5.0
	inputs := []Input{
		{Name: "x", Kind: Numeric, Mean: 10, Std: 2},
		{Name: "amount", Kind: Numeric, Transform: TransformLog1p, Mean: 1, Std: 1, Missing: &miss},
		{Name: "age", Kind: Numeric, Transform: TransformBucketize, Edges: []float64{30, 60}},
		{Name: "job", Kind: Categorical, Categories: []string{"admin", "tech"}},
	}
	// x:1 | amount:1 | age: 3 buckets | job: admin, tech, unknown
	w := []float64{3, 2, 0.1, 0.2, 0.3, 1, 2, 4}
	m, err := NewLogistic(inputs, w, 0.5, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    row
		z    float64
	}{
		{"all missing", row{}, 0.5 + 0 + 2*(math.Log1p(5)-1) + 0.1 + 4},
		{"values", row{"x": 12.0, "amount": math.E - 1, "age": 45.0, "job": "tech"}, 0.5 + 3 + 0 + 0.2 + 2},
		{"edges and unknown category", row{"age": 60.0, "job": "chef"}, 0.5 + 2*(math.Log1p(5)-1) + 0.3 + 4},
		{"negative amount clamps to 0", row{"amount": -3.0, "age": 10.0, "job": "admin"}, 0.5 + 2*(0-1) + 0.1 + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := m.Score(tt.f), sigmoid(tt.z); math.Abs(got-want) > 1e-12 {
				t.Errorf("Score = %v, want %v", got, want)
			}
		})
	}
	f := row{"x": 1.0, "job": "tech"}
	if allocs := testing.AllocsPerRun(100, func() { m.Score(f) }); allocs != 0 {
		t.Errorf("Score allocates %v times", allocs)
	}
}

func TestModelErrors(t *testing.T) {
	bad := []struct {
		name    string
		inputs  []Input
		weights []float64
		want    string
	}{
		{"no inputs", nil, nil, "no inputs"},
		{"zero std", []Input{{Name: "a", Kind: Numeric}}, []float64{1}, "std"},
		{"bad kind", []Input{{Name: "a", Kind: "text"}}, []float64{1}, "kind"},
		{"unsorted edges", []Input{{Name: "a", Kind: Numeric, Transform: TransformBucketize, Edges: []float64{2, 1}}}, []float64{1, 1, 1}, "edges"},
		{"weights short", []Input{{Name: "a", Kind: Categorical, Categories: []string{"x"}}}, []float64{1}, "2 encoded columns"},
		{"duplicate input", []Input{{Name: "a", Kind: Numeric, Std: 1}, {Name: "a", Kind: Numeric, Std: 1}}, []float64{1, 1}, "twice"},
		{"nan weight", []Input{{Name: "a", Kind: Numeric, Std: 1}}, []float64{math.NaN()}, "not finite"},
	}
	for _, tt := range bad {
		if _, err := NewLogistic(tt.inputs, tt.weights, 0, Meta{}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one saying %q", tt.name, err, tt.want)
		}
	}
	if _, err := Train([]Input{{Name: "a", Kind: Numeric}}, nil, nil, TrainOptions{}); err == nil {
		t.Error("Train with no rows succeeded")
	}
	if _, err := Train([]Input{{Name: "a", Kind: Numeric}}, []Features{row{"a": 1.0}}, []bool{true}, TrainOptions{}); err == nil {
		t.Error("Train with one label value succeeded")
	}
	if _, err := ReadLogistic(strings.NewReader(`{"format":"tact.logistic.v1","inputs":[],"wieghts":[]}`)); err == nil || !strings.Contains(err.Error(), "wieghts") {
		t.Errorf("unknown field: %v", err)
	}
}
