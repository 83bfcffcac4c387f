package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
)

// XGBoost is a gradient-boosted tree model read from XGBoost's JSON model
// format (Booster.save_model("m.json")), objective binary:logistic. It
// scores as XGBoost does: feature values and thresholds in float32, x <
// threshold goes left, a missing value follows the node's default
// direction, the margin is logit(base_score) plus the leaves' values.
// Inputs are read by the model's feature names (f0, f1, ... when it has
// none). It is immutable and safe for concurrent use.
type XGBoost struct {
	// Features are the input names, in XGBoost's column order.
	Features []string
	// Trees is the number of trees.
	Trees int
	// BaseMargin is logit(base_score).
	BaseMargin float64

	// The trees, flattened: node n of the forest has children left[n] and
	// right[n] (-1 for a leaf), tests feature[n] < cond[n], or is a leaf of
	// value cond[n].
	roots   []int32
	left    []int32
	right   []int32
	feature []int32
	cond    []float32
	defLeft []bool

	scratch sync.Pool // *[]float32 of len(Features)
}

// xgbFile is the part of XGBoost's JSON model that scoring needs.
type xgbFile struct {
	Learner struct {
		FeatureNames     []string `json:"feature_names"`
		LearnerModelParm struct {
			BaseScore string `json:"base_score"`
			NumClass  string `json:"num_class"`
			NumFeat   string `json:"num_feature"`
			NumTarget string `json:"num_target"`
		} `json:"learner_model_param"`
		Objective struct {
			Name string `json:"name"`
		} `json:"objective"`
		GradientBooster struct {
			Name  string `json:"name"`
			Model struct {
				Trees []xgbTree `json:"trees"`
			} `json:"model"`
		} `json:"gradient_booster"`
	} `json:"learner"`
}

type xgbTree struct {
	LeftChildren    []int32     `json:"left_children"`
	RightChildren   []int32     `json:"right_children"`
	SplitIndices    []int32     `json:"split_indices"`
	SplitConditions []float32   `json:"split_conditions"`
	DefaultLeft     []jsonBool  `json:"default_left"`
	SplitType       []int       `json:"split_type"`
	Categories      []int       `json:"categories"`
	TreeParam       interface{} `json:"tree_param"`
}

// jsonBool reads XGBoost's booleans, written as 0/1 or true/false.
type jsonBool bool

func (b *jsonBool) UnmarshalJSON(p []byte) error {
	switch string(p) {
	case "1", "true":
		*b = true
	case "0", "false":
		*b = false
	default:
		return fmt.Errorf("not a boolean: %s", p)
	}
	return nil
}

// ReadXGBoost reads and checks an XGBoost JSON model.
func ReadXGBoost(r io.Reader) (*XGBoost, error) {
	var f xgbFile
	if err := json.NewDecoder(r).Decode(&f); err != nil {
		return nil, fmt.Errorf("xgboost: decode: %w", err)
	}
	l := &f.Learner
	if l.Objective.Name != "binary:logistic" {
		return nil, fmt.Errorf("xgboost: objective %q, want binary:logistic", l.Objective.Name)
	}
	if l.GradientBooster.Name != "gbtree" {
		return nil, fmt.Errorf("xgboost: booster %q, want gbtree", l.GradientBooster.Name)
	}
	p := &l.LearnerModelParm
	if (p.NumClass != "" && p.NumClass != "0") || (p.NumTarget != "" && p.NumTarget != "1") {
		return nil, fmt.Errorf("xgboost: num_class %s, num_target %s: only one binary target is supported", p.NumClass, p.NumTarget)
	}
	nf, err := strconv.Atoi(p.NumFeat)
	if err != nil || nf <= 0 {
		return nil, fmt.Errorf("xgboost: num_feature %q", p.NumFeat)
	}
	base, err := strconv.ParseFloat(p.BaseScore, 32)
	if err != nil || !(base > 0 && base < 1) {
		return nil, fmt.Errorf("xgboost: base_score %q: want a probability in (0,1)", p.BaseScore)
	}
	m := &XGBoost{Features: l.FeatureNames, BaseMargin: -math.Log(1/base - 1)}
	if len(m.Features) == 0 {
		for i := range nf {
			m.Features = append(m.Features, "f"+strconv.Itoa(i))
		}
	}
	if len(m.Features) != nf {
		return nil, fmt.Errorf("xgboost: %d feature names for num_feature %d", len(m.Features), nf)
	}
	trees := l.GradientBooster.Model.Trees
	if len(trees) == 0 {
		return nil, errors.New("xgboost: no trees")
	}
	for t, tr := range trees {
		n := len(tr.LeftChildren)
		if n == 0 || len(tr.RightChildren) != n || len(tr.SplitIndices) != n || len(tr.SplitConditions) != n || len(tr.DefaultLeft) != n {
			return nil, fmt.Errorf("xgboost: tree %d: node arrays of different lengths", t)
		}
		for _, st := range tr.SplitType {
			if st != 0 {
				return nil, fmt.Errorf("xgboost: tree %d: categorical splits are not supported; one-hot encode instead", t)
			}
		}
		off := int32(len(m.left))
		m.roots = append(m.roots, off)
		for i := range n {
			lc, rc, fi := tr.LeftChildren[i], tr.RightChildren[i], tr.SplitIndices[i]
			if (lc == -1) != (rc == -1) || lc >= int32(n) || rc >= int32(n) || (lc != -1 && (lc <= int32(i) || rc <= int32(i))) {
				return nil, fmt.Errorf("xgboost: tree %d node %d: bad children %d, %d", t, i, lc, rc)
			}
			if lc != -1 {
				if fi < 0 || int(fi) >= nf {
					return nil, fmt.Errorf("xgboost: tree %d node %d: split feature %d out of range", t, i, fi)
				}
				lc, rc = lc+off, rc+off
			}
			c := tr.SplitConditions[i]
			if math.IsNaN(float64(c)) || math.IsInf(float64(c), 0) {
				return nil, fmt.Errorf("xgboost: tree %d node %d: condition is not finite", t, i)
			}
			m.left = append(m.left, lc)
			m.right = append(m.right, rc)
			m.feature = append(m.feature, fi)
			m.cond = append(m.cond, c)
			m.defLeft = append(m.defLeft, bool(tr.DefaultLeft[i]))
		}
	}
	m.Trees = len(trees)
	m.scratch.New = func() any { s := make([]float32, nf); return &s }
	return m, nil
}

// Score returns the propensity, 0..1. It does not allocate in the steady
// state (the feature buffer comes from a pool).
func (m *XGBoost) Score(f Features) float64 {
	bp := m.scratch.Get().(*[]float32)
	x := *bp
	for i, name := range m.Features {
		if v, ok := f.Num(name); ok {
			x[i] = float32(v)
		} else {
			x[i] = float32(math.NaN())
		}
	}
	margin := float32(m.BaseMargin)
	for _, n := range m.roots {
		for m.left[n] != -1 {
			v := x[m.feature[n]]
			switch {
			case v != v: // NaN: missing
				if m.defLeft[n] {
					n = m.left[n]
				} else {
					n = m.right[n]
				}
			case v < m.cond[n]:
				n = m.left[n]
			default:
				n = m.right[n]
			}
		}
		margin += m.cond[n]
	}
	m.scratch.Put(bp)
	return float64(float32(1 / (1 + math.Exp(-float64(margin)))))
}
