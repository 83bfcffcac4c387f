// Package model scores product propensity: the probability that a client
// accepts an offer of a product, from the client's features.
//
// A Logistic model is a standardised linear model over named numeric
// features. It is trained by Fit (L2-regularised maximum likelihood with
// gonum's L-BFGS) and scored by Score, which does not allocate. Models are
// immutable once built and safe for concurrent use.
//
// The decision engine that turns propensities into offers lives in the
// subpackage decision; the products it may offer in catalog.
package model

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/optimize"
)

// Features is what a model reads: a numeric value by feature name, and
// whether it is present.
type Features interface {
	Num(name string) (float64, bool)
}

// Logistic is a logistic-regression propensity model.
type Logistic struct {
	// Inputs are the feature names, in weight order.
	Inputs []string
	// Mean and Scale standardise each input: x' = (x - Mean) / Scale. A
	// missing input scores as its mean (x' = 0).
	Mean  []float64
	Scale []float64
	// Weights on the standardised inputs, and the intercept.
	Weights []float64
	Bias    float64
}

// Validate checks that the model is well formed.
func (m *Logistic) Validate() error {
	n := len(m.Inputs)
	if n == 0 {
		return errors.New("model: no inputs")
	}
	if len(m.Mean) != n || len(m.Scale) != n || len(m.Weights) != n {
		return fmt.Errorf("model: %d inputs but %d means, %d scales, %d weights", n, len(m.Mean), len(m.Scale), len(m.Weights))
	}
	for i := range n {
		if !(m.Scale[i] > 0) || math.IsInf(m.Scale[i], 0) {
			return fmt.Errorf("model: input %q: scale %v must be positive and finite", m.Inputs[i], m.Scale[i])
		}
		if math.IsNaN(m.Weights[i]) || math.IsInf(m.Weights[i], 0) || math.IsNaN(m.Mean[i]) || math.IsInf(m.Mean[i], 0) {
			return fmt.Errorf("model: input %q: weight and mean must be finite", m.Inputs[i])
		}
	}
	if math.IsNaN(m.Bias) || math.IsInf(m.Bias, 0) {
		return errors.New("model: bias must be finite")
	}
	return nil
}

// Score returns the propensity, 0..1, for a client's features.
func (m *Logistic) Score(f Features) float64 {
	z := m.Bias
	for i, name := range m.Inputs {
		if x, ok := f.Num(name); ok {
			z += m.Weights[i] * (x - m.Mean[i]) / m.Scale[i]
		}
	}
	return sigmoid(z)
}

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// FitOptions control training.
type FitOptions struct {
	// L2 is the ridge penalty on the weights (not the bias), per row.
	L2 float64
	// MaxIterations bounds L-BFGS; 0 means 500.
	MaxIterations int
}

// Fit trains a logistic model on rows of inputs (one slice per row, in
// inputs order; NaN marks a missing value) and 0/1 labels. The result is
// deterministic for the same data and options.
func Fit(inputs []string, rows [][]float64, labels []bool, opt FitOptions) (*Logistic, error) {
	n, d := len(rows), len(inputs)
	if n == 0 {
		return nil, errors.New("model: fit: no rows")
	}
	if len(labels) != n {
		return nil, fmt.Errorf("model: fit: %d rows but %d labels", n, len(labels))
	}
	m := &Logistic{Inputs: inputs, Mean: make([]float64, d), Scale: make([]float64, d), Weights: make([]float64, d)}
	// Standardise on the present values of each input.
	for j := range d {
		var sum, sq float64
		var cnt int
		for i := range n {
			if len(rows[i]) != d {
				return nil, fmt.Errorf("model: fit: row %d has %d values, want %d", i, len(rows[i]), d)
			}
			if x := rows[i][j]; !math.IsNaN(x) {
				sum += x
				sq += x * x
				cnt++
			}
		}
		if cnt > 0 {
			m.Mean[j] = sum / float64(cnt)
			m.Scale[j] = math.Sqrt(math.Max(sq/float64(cnt)-m.Mean[j]*m.Mean[j], 0))
		}
		if m.Scale[j] < 1e-12 {
			m.Scale[j] = 1
		}
	}
	x := make([][]float64, n)
	for i := range n {
		x[i] = make([]float64, d)
		for j := range d {
			if v := rows[i][j]; !math.IsNaN(v) {
				x[i][j] = (v - m.Mean[j]) / m.Scale[j]
			}
		}
	}
	y := make([]float64, n)
	for i, l := range labels {
		if l {
			y[i] = 1
		}
	}
	l2 := opt.L2
	// Mean negative log-likelihood plus (l2/2)|w|^2; params are w then bias.
	loss := func(p []float64) float64 {
		var total float64
		for i := range n {
			z := p[d]
			for j := range d {
				z += p[j] * x[i][j]
			}
			// log(1+e^z) - y z, computed stably.
			total += softplus(z) - y[i]*z
		}
		total /= float64(n)
		for j := range d {
			total += 0.5 * l2 * p[j] * p[j]
		}
		return total
	}
	grad := func(g, p []float64) {
		clear(g)
		for i := range n {
			z := p[d]
			for j := range d {
				z += p[j] * x[i][j]
			}
			r := sigmoid(z) - y[i]
			for j := range d {
				g[j] += r * x[i][j]
			}
			g[d] += r
		}
		for j := range d + 1 {
			g[j] /= float64(n)
		}
		for j := range d {
			g[j] += l2 * p[j]
		}
	}
	iters := opt.MaxIterations
	if iters == 0 {
		iters = 500
	}
	res, err := optimize.Minimize(
		optimize.Problem{Func: loss, Grad: grad},
		make([]float64, d+1),
		&optimize.Settings{MajorIterations: iters, GradientThreshold: 1e-8},
		&optimize.LBFGS{},
	)
	if err != nil && res == nil {
		return nil, fmt.Errorf("model: fit: %w", err)
	}
	copy(m.Weights, res.X[:d])
	m.Bias = res.X[d]
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("model: fit: %w", err)
	}
	return m, nil
}

func softplus(z float64) float64 {
	if z > 0 {
		return z + math.Log1p(math.Exp(-z))
	}
	return math.Log1p(math.Exp(z))
}
