package model

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Kind is the type of a model input.
type Kind string

// The input kinds.
const (
	Numeric     Kind = "numeric"
	Categorical Kind = "categorical"
)

// Transforms of numeric inputs.
const (
	// TransformStandardize (the default) scores (x - Mean) / Std.
	TransformStandardize = "standardize"
	// TransformLog1p scores (log1p(max(x, 0)) - Mean) / Std, for skewed
	// amounts such as balances.
	TransformLog1p = "log1p"
	// TransformBucketize one-hot encodes x into len(Edges)+1 buckets:
	// bucket i holds Edges[i-1] <= x < Edges[i].
	TransformBucketize = "bucketize"
)

// Features is what a model reads: a client's numeric and categorical
// values by name, and whether each is present.
type Features interface {
	Num(name string) (float64, bool)
	Cat(name string) (string, bool)
}

// Input is one model input: a named feature and how it is encoded.
// Numeric inputs take one column (standardize, log1p) or one per bucket;
// categorical inputs one column per known category plus one for any other
// value (the unknown bucket). A missing numeric value is Missing when set,
// else the training mean; a missing categorical value is "".
type Input struct {
	Name       string    `json:"name"`
	Kind       Kind      `json:"kind"`
	Transform  string    `json:"transform,omitempty"`
	Mean       float64   `json:"mean,omitempty"`
	Std        float64   `json:"std,omitempty"`
	Edges      []float64 `json:"edges,omitempty"`
	Categories []string  `json:"categories,omitempty"`
	Missing    *float64  `json:"missing,omitempty"`
}

// Width is how many encoded columns the input takes.
func (in *Input) Width() int {
	switch {
	case in.Kind == Categorical:
		return len(in.Categories) + 1
	case in.Transform == TransformBucketize:
		return len(in.Edges) + 1
	default:
		return 1
	}
}

func (in *Input) validate() error {
	switch in.Kind {
	case Numeric:
		switch in.Transform {
		case "", TransformStandardize, TransformLog1p:
			if !(in.Std > 0) || math.IsInf(in.Std, 0) || math.IsNaN(in.Mean) || math.IsInf(in.Mean, 0) {
				return fmt.Errorf("input %q: mean %v and std %v must be finite, std positive", in.Name, in.Mean, in.Std)
			}
		case TransformBucketize:
			if len(in.Edges) == 0 || !slices.IsSorted(in.Edges) {
				return fmt.Errorf("input %q: bucketize needs ascending edges", in.Name)
			}
		default:
			return fmt.Errorf("input %q: unknown transform %q", in.Name, in.Transform)
		}
		if in.Missing != nil && (math.IsNaN(*in.Missing) || math.IsInf(*in.Missing, 0)) {
			return fmt.Errorf("input %q: missing value must be finite", in.Name)
		}
	case Categorical:
		if in.Transform != "" {
			return fmt.Errorf("input %q: categorical inputs take no transform", in.Name)
		}
	default:
		return fmt.Errorf("input %q: unknown kind %q", in.Name, in.Kind)
	}
	if in.Name == "" {
		return errors.New("input with an empty name")
	}
	return nil
}

// numeric returns the input's value for f before bucketing: the
// transformed, standardised value, or the raw value for bucketize.
func (in *Input) numeric(f Features) float64 {
	x, ok := f.Num(in.Name)
	if !ok || math.IsNaN(x) {
		if in.Missing == nil {
			if in.Transform == TransformBucketize {
				return math.NaN()
			}
			return 0 // the mean, standardised
		}
		x = *in.Missing
	}
	switch in.Transform {
	case TransformBucketize:
		return x
	case TransformLog1p:
		x = math.Log1p(math.Max(x, 0))
	}
	return (x - in.Mean) / in.Std
}

// bucket returns the bucket of a raw value; NaN falls in bucket 0.
func bucket(edges []float64, x float64) int {
	i := 0
	for i < len(edges) && x >= edges[i] {
		i++
	}
	return i
}

// encode writes the input's Width() columns for f into dst.
func (in *Input) encode(f Features, idx map[string]int, dst []float64) {
	clear(dst[:in.Width()])
	switch {
	case in.Kind == Categorical:
		s, _ := f.Cat(in.Name)
		j, ok := idx[s]
		if !ok {
			j = len(in.Categories)
		}
		dst[j] = 1
	case in.Transform == TransformBucketize:
		dst[bucket(in.Edges, in.numeric(f))] = 1
	default:
		dst[0] = in.numeric(f)
	}
}
