// Package model scores product propensity: the probability that a client
// accepts an offer of a product, from the client's features.
//
// A Logistic model is a logistic regression over encoded inputs (see
// Input: standardised, log1p, bucketised numerics and one-hot categories
// with an unknown bucket). Train fits one (L2-regularised maximum
// likelihood with gonum's L-BFGS); Score evaluates it without allocating.
// Models are immutable once built and safe for concurrent use. The
// evaluation metrics are in metrics.go, the CSV reader in dataset.go.
//
// The decision engine that turns propensities into offers lives in the
// subpackage decision; the products it may offer in catalog.
package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"gonum.org/v1/gonum/optimize"
)

// FormatLogistic names the JSON form of a Logistic model.
const FormatLogistic = "tact.logistic.v1"

// Meta describes how a model was made.
type Meta struct {
	// Label is the column the model predicts, Positive its positive value.
	Label    string `json:"label,omitempty"`
	Positive string `json:"positive,omitempty"`
	// TrainedAt is when training finished.
	TrainedAt time.Time `json:"trained_at"`
	// DataFingerprint is "sha256:" and the hex digest of the training file.
	DataFingerprint string `json:"data_fingerprint,omitempty"`
	// Rows is how many rows the model was fitted on.
	Rows int `json:"rows"`
	// L2 is the ridge penalty used.
	L2 float64 `json:"l2"`
	// Metrics are the holdout metrics measured after training (roc_auc,
	// pr_auc, log_loss, brier), when there was a holdout.
	Metrics map[string]float64 `json:"metrics,omitempty"`
}

// Logistic is a logistic-regression propensity model.
type Logistic struct {
	Inputs []Input
	// Weights has one weight per encoded column, inputs in order.
	Weights []float64
	Bias    float64
	Meta    Meta

	offsets []int
	catIdx  []map[string]int
}

// NewLogistic checks a model and prepares it for scoring.
func NewLogistic(inputs []Input, weights []float64, bias float64, meta Meta) (*Logistic, error) {
	m := &Logistic{Inputs: inputs, Weights: weights, Bias: bias, Meta: meta}
	if err := m.compile(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Logistic) compile() error {
	if len(m.Inputs) == 0 {
		return errors.New("model: no inputs")
	}
	m.offsets = make([]int, len(m.Inputs))
	m.catIdx = make([]map[string]int, len(m.Inputs))
	width := 0
	seen := map[string]bool{}
	for i := range m.Inputs {
		in := &m.Inputs[i]
		if err := in.validate(); err != nil {
			return fmt.Errorf("model: %w", err)
		}
		if seen[in.Name] {
			return fmt.Errorf("model: input %q twice", in.Name)
		}
		seen[in.Name] = true
		m.offsets[i] = width
		width += in.Width()
		if in.Kind == Categorical {
			idx := make(map[string]int, len(in.Categories))
			for j, c := range in.Categories {
				idx[c] = j
			}
			m.catIdx[i] = idx
		}
	}
	if len(m.Weights) != width {
		return fmt.Errorf("model: %d weights for %d encoded columns", len(m.Weights), width)
	}
	for j, w := range m.Weights {
		if math.IsNaN(w) || math.IsInf(w, 0) {
			return fmt.Errorf("model: weight %d is not finite", j)
		}
	}
	if math.IsNaN(m.Bias) || math.IsInf(m.Bias, 0) {
		return errors.New("model: bias is not finite")
	}
	return nil
}

// Width is the number of encoded columns.
func (m *Logistic) Width() int { return len(m.Weights) }

// Score returns the propensity, 0..1, for a client's features. It does
// not allocate.
func (m *Logistic) Score(f Features) float64 {
	z := m.Bias
	for i := range m.Inputs {
		in := &m.Inputs[i]
		off := m.offsets[i]
		switch {
		case in.Kind == Categorical:
			s, _ := f.Cat(in.Name)
			j, ok := m.catIdx[i][s]
			if !ok {
				j = len(in.Categories)
			}
			z += m.Weights[off+j]
		case in.Transform == TransformBucketize:
			z += m.Weights[off+bucket(in.Edges, in.numeric(f))]
		default:
			z += m.Weights[off] * in.numeric(f)
		}
	}
	return sigmoid(z)
}

// Encode writes the encoded columns of f into dst (length Width()).
func (m *Logistic) Encode(f Features, dst []float64) {
	for i := range m.Inputs {
		m.Inputs[i].encode(f, m.catIdx[i], dst[m.offsets[i]:])
	}
}

// sigmoid is the logistic function. 1/(1+e^-z) is exact enough for every
// z in float64 (e^-z overflowing to +Inf gives 0), and without a branch it
// measured faster in Set.ScoreAll.
func sigmoid(z float64) float64 {
	return 1 / (1 + math.Exp(-z))
}

// logisticFile is the JSON form of a Logistic.
type logisticFile struct {
	Format  string    `json:"format"`
	Inputs  []Input   `json:"inputs"`
	Weights []float64 `json:"weights"`
	Bias    float64   `json:"bias"`
	Meta    Meta      `json:"meta"`
}

// WriteJSON writes the model as JSON.
func (m *Logistic) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(logisticFile{Format: FormatLogistic, Inputs: m.Inputs, Weights: m.Weights, Bias: m.Bias, Meta: m.Meta})
}

// ReadLogistic reads a model written by WriteJSON. Unknown fields are
// errors, so that a typo is not silently a default.
func ReadLogistic(r io.Reader) (*Logistic, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var f logisticFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("model: decode: %w", err)
	}
	if f.Format != FormatLogistic {
		return nil, fmt.Errorf("model: format %q, want %q", f.Format, FormatLogistic)
	}
	return NewLogistic(f.Inputs, f.Weights, f.Bias, f.Meta)
}

// TrainOptions control Train.
type TrainOptions struct {
	// L2 is the ridge penalty on the weights (not the bias), in units of
	// the mean log-loss: 1/n matches scikit-learn's default C=1.
	L2 float64
	// MaxIterations bounds L-BFGS; 0 means 1000.
	MaxIterations int
	// MaxCategories keeps at most this many of a categorical input's most
	// frequent values (the rest go to the unknown bucket); 0 means 100.
	MaxCategories int
}

// Train fits a logistic model. specs name the inputs, their kind and
// transform (and Edges for bucketize); their statistics (mean, std,
// categories) are fitted on rows. The result is deterministic for the same
// rows and options.
func Train(specs []Input, rows []Features, labels []bool, opt TrainOptions) (*Logistic, error) {
	n := len(rows)
	if n == 0 {
		return nil, errors.New("model: train: no rows")
	}
	if len(labels) != n {
		return nil, fmt.Errorf("model: train: %d rows but %d labels", n, len(labels))
	}
	pos := 0
	for _, l := range labels {
		if l {
			pos++
		}
	}
	if pos == 0 || pos == n {
		return nil, fmt.Errorf("model: train: the label has one value only (%d positive of %d)", pos, n)
	}
	if opt.MaxCategories == 0 {
		opt.MaxCategories = 100
	}
	inputs := make([]Input, len(specs))
	for i, s := range specs {
		in, err := fitInput(s, rows, opt.MaxCategories)
		if err != nil {
			return nil, fmt.Errorf("model: train: %w", err)
		}
		inputs[i] = in
	}
	width := 0
	for i := range inputs {
		width += inputs[i].Width()
	}
	m, err := NewLogistic(inputs, make([]float64, width), 0, Meta{Rows: n, L2: opt.L2})
	if err != nil {
		return nil, err
	}
	x := make([]float64, n*width)
	for i, r := range rows {
		m.Encode(r, x[i*width:(i+1)*width])
	}
	y := make([]float64, n)
	for i, l := range labels {
		if l {
			y[i] = 1
		}
	}
	w, b, err := fitWeights(x, y, width, opt)
	if err != nil {
		return nil, fmt.Errorf("model: train: %w", err)
	}
	copy(m.Weights, w)
	m.Bias = b
	m.Meta.TrainedAt = time.Now().UTC()
	return m, m.compile()
}

// fitInput fits an input's statistics on the rows.
func fitInput(s Input, rows []Features, maxCats int) (Input, error) {
	in := Input{Name: s.Name, Kind: s.Kind, Transform: s.Transform, Edges: s.Edges, Missing: s.Missing}
	switch s.Kind {
	case Categorical:
		counts := map[string]int{}
		for _, r := range rows {
			v, _ := r.Cat(s.Name)
			counts[v]++
		}
		cats := make([]string, 0, len(counts))
		for c := range counts {
			cats = append(cats, c)
		}
		// Most frequent first, then by name, so that the cut is stable.
		sort.Slice(cats, func(i, j int) bool {
			if counts[cats[i]] != counts[cats[j]] {
				return counts[cats[i]] > counts[cats[j]]
			}
			return cats[i] < cats[j]
		})
		if len(cats) > maxCats {
			cats = cats[:maxCats]
		}
		sort.Strings(cats)
		in.Categories = cats
	case Numeric:
		if s.Transform == TransformBucketize {
			break
		}
		var sum, sq float64
		var cnt int
		for _, r := range rows {
			x, ok := r.Num(s.Name)
			if !ok || math.IsNaN(x) {
				continue
			}
			if s.Transform == TransformLog1p {
				x = math.Log1p(math.Max(x, 0))
			}
			sum += x
			sq += x * x
			cnt++
		}
		if cnt > 0 {
			in.Mean = sum / float64(cnt)
			in.Std = math.Sqrt(math.Max(sq/float64(cnt)-in.Mean*in.Mean, 0))
		}
		if in.Std < 1e-12 {
			in.Std = 1
		}
	default:
		return Input{}, fmt.Errorf("input %q: unknown kind %q", s.Name, s.Kind)
	}
	return in, nil
}

// fitWeights minimises the mean log-loss plus (l2/2)|w|^2 over the dense
// row-major matrix x (n rows of d columns).
func fitWeights(x, y []float64, d int, opt TrainOptions) ([]float64, float64, error) {
	n := len(y)
	l2 := opt.L2
	// lossGrad computes the loss and, when g is not nil, its gradient;
	// params are the weights then the bias.
	lossGrad := func(g, p []float64) float64 {
		if g != nil {
			clear(g)
		}
		var total float64
		for i := range n {
			row := x[i*d : (i+1)*d]
			z := p[d]
			for j, v := range row {
				z += p[j] * v
			}
			total += softplus(z) - y[i]*z
			if g != nil {
				r := sigmoid(z) - y[i]
				for j, v := range row {
					g[j] += r * v
				}
				g[d] += r
			}
		}
		inv := 1 / float64(n)
		total *= inv
		for j := range d {
			total += 0.5 * l2 * p[j] * p[j]
		}
		if g != nil {
			for j := range d + 1 {
				g[j] *= inv
			}
			for j := range d {
				g[j] += l2 * p[j]
			}
		}
		return total
	}
	iters := opt.MaxIterations
	if iters == 0 {
		iters = 1000
	}
	res, err := optimize.Minimize(
		optimize.Problem{
			Func: func(p []float64) float64 { return lossGrad(nil, p) },
			Grad: func(g, p []float64) { lossGrad(g, p) },
		},
		make([]float64, d+1),
		&optimize.Settings{MajorIterations: iters, GradientThreshold: 1e-7},
		&optimize.LBFGS{},
	)
	if res == nil {
		return nil, 0, fmt.Errorf("optimise: %w", err)
	}
	// An iteration limit still leaves a usable (if not optimal) model.
	return res.X[:d], res.X[d], nil
}

func softplus(z float64) float64 {
	if z > 0 {
		return z + math.Log1p(math.Exp(-z))
	}
	return math.Log1p(math.Exp(z))
}
