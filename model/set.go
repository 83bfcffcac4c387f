package model

import (
	"errors"
	"fmt"
	"math"
	"sync"
)

// Set is a group of logistic models (one per product) compiled to score
// together: each feature is read once per client and transformed once,
// standardisation is folded into the weights, and categories are looked up
// once in a table shared by every model. ScoreAll does not allocate. A Set
// is immutable and safe for concurrent use.
type Set struct {
	names  []string
	slots  []slot
	models []setModel
	// numSlots are the slots read as plain numbers (not bucketised);
	// numPos maps a slot to its position there, or -1.
	numSlots []int32
	numPos   []int32
	// catSlots are the categorical slots; catOff[k] is where slot
	// catSlots[k]'s section starts in a model's catW: one entry per known
	// category, then the unknown bucket, then the missing value.
	catSlots []int32
	catOff   []int32
	catWidth int
	pool     sync.Pool // *resolved, for features without a Memo
}

// slot is one distinct (feature, kind, transform) read once per client.
type slot struct {
	name      string
	kind      Kind
	transform string // "", TransformLog1p or TransformBucketize (raw value)
	catID     map[string]int32
}

type setModel struct {
	bias float64
	// wNum and missNum are dense over the numeric slots (numSlots order):
	// the weight of the slot's value, and the contribution when it is
	// missing; both 0 for a slot the model does not read.
	wNum    []float64
	missNum []float64
	// catW holds, per categorical slot, the weight of each category (see
	// Set.catOff); 0 for a slot the model does not read.
	catW  []float64
	other []term // bucketised inputs
}

// term is a bucketised input of one model: bucketW is indexed by bucket;
// missing is the contribution when the value is absent.
type term struct {
	slot    int32
	missing float64
	edges   []float64
	bucketW []float64
}

// NewSet compiles models; names[i] names models[i] (e.g. the product).
func NewSet(names []string, models []*Logistic) (*Set, error) {
	if len(names) != len(models) {
		return nil, fmt.Errorf("model: set: %d names for %d models", len(names), len(models))
	}
	if len(models) == 0 {
		return nil, errors.New("model: set: no models")
	}
	s := &Set{names: names}
	slotOf := map[string]int32{}
	getSlot := func(in *Input) int32 {
		key := slotKey(in)
		if i, ok := slotOf[key]; ok {
			return i
		}
		i := int32(len(s.slots))
		tr := in.Transform
		if tr == TransformStandardize {
			tr = ""
		}
		s.slots = append(s.slots, slot{name: in.Name, kind: in.Kind, transform: tr})
		if in.Kind == Categorical {
			s.slots[i].catID = map[string]int32{}
		}
		slotOf[key] = i
		return i
	}
	// First pass: slots and the union of categories.
	for _, m := range models {
		if m == nil || m.offsets == nil {
			return nil, errors.New("model: set: a model is nil or was not built by NewLogistic")
		}
		for i := range m.Inputs {
			in := &m.Inputs[i]
			sl := &s.slots[getSlot(in)]
			for _, c := range in.Categories {
				if _, ok := sl.catID[c]; !ok {
					sl.catID[c] = int32(len(sl.catID))
				}
			}
		}
	}
	s.numPos = make([]int32, len(s.slots))
	catPos := make([]int32, len(s.slots))
	for i, sl := range s.slots {
		s.numPos[i] = -1
		if sl.kind == Numeric && sl.transform != TransformBucketize {
			s.numPos[i] = int32(len(s.numSlots))
			s.numSlots = append(s.numSlots, int32(i))
		}
		if sl.kind == Categorical {
			catPos[i] = int32(len(s.catSlots))
			s.catSlots = append(s.catSlots, int32(i))
			s.catOff = append(s.catOff, int32(s.catWidth))
			s.catWidth += len(sl.catID) + 2
		}
	}
	for _, m := range models {
		sm := setModel{bias: m.Bias, wNum: make([]float64, len(s.numSlots)), missNum: make([]float64, len(s.numSlots)), catW: make([]float64, s.catWidth)}
		for i := range m.Inputs {
			in := &m.Inputs[i]
			si := slotOf[slotKey(in)]
			w := m.Weights[m.offsets[i]:]
			t := term{slot: si}
			switch {
			case in.Kind == Categorical:
				sl := &s.slots[si]
				sec := sm.catW[s.catOff[catPos[si]]:][:len(sl.catID)+2]
				unknown := w[len(in.Categories)]
				for c, id := range sl.catID {
					sec[id] = unknown
					if j, ok := m.catIdx[i][c]; ok {
						sec[id] = w[j]
					}
				}
				sec[len(sl.catID)] = unknown
				// A missing category is "", scored like the value "".
				sec[len(sl.catID)+1] = unknown
				if j, ok := m.catIdx[i][""]; ok {
					sec[len(sl.catID)+1] = w[j]
				}
			case in.Transform == TransformBucketize:
				t.edges = in.Edges
				t.bucketW = w[:len(in.Edges)+1]
				t.missing = w[0]
				if in.Missing != nil {
					t.missing = w[bucket(in.Edges, *in.Missing)]
				}
				sm.other = append(sm.other, t)
			default:
				// w*(x-mean)/std = (w/std)*x - w*mean/std.
				p := s.numPos[si]
				wx := w[0] / in.Std
				sm.wNum[p] = wx
				sm.bias -= w[0] * in.Mean / in.Std
				if in.Missing != nil {
					x := *in.Missing
					if in.Transform == TransformLog1p {
						x = math.Log1p(math.Max(x, 0))
					}
					sm.missNum[p] = wx * x
				} else {
					sm.missNum[p] = wx * in.Mean // the mean: 0 with the folded bias
				}
			}
		}
		s.models = append(s.models, sm)
	}
	s.pool.New = func() any { return &resolved{} }
	return s, nil
}

func slotKey(in *Input) string {
	tr := in.Transform
	if tr == TransformStandardize {
		tr = ""
	}
	return in.Name + "\x00" + string(in.Kind) + "\x00" + tr
}

// Names returns the model names, in ScoreAll's order.
func (s *Set) Names() []string { return s.names }

// Len returns the number of models.
func (s *Set) Len() int { return len(s.models) }

// Memo is implemented by feature sets that can keep what a Set read from
// them, so that the next ScoreAll by the same Set skips the reads (the
// feature cache's records do: the reads happen once per client and
// bundle). Both methods must be safe for concurrent use.
type Memo interface {
	Memo(key any) (any, bool)
	Memoize(key, v any)
}

// resolved is what ScoreAll reads from a client's features: per slot the
// value and presence, the numeric values in numSlots order (0 when
// missing), the missing numeric positions and each categorical slot's
// index into a model's catW. It is immutable once built.
type resolved struct {
	val     []float64
	present []bool
	num     []float64
	missing []int32
	catAt   []int32
}

// ScoreAll writes each model's propensity for f into out (len Len()).
func (s *Set) ScoreAll(f Features, out []float64) {
	if m, ok := f.(Memo); ok {
		if v, ok := m.Memo(s); ok {
			s.score(v.(*resolved), out)
			return
		}
		r := &resolved{}
		s.resolve(f, r)
		m.Memoize(s, r)
		s.score(r, out)
		return
	}
	r := s.pool.Get().(*resolved)
	s.resolve(f, r)
	s.score(r, out)
	s.pool.Put(r)
}

// resolve reads f into r, reusing r's slices.
func (s *Set) resolve(f Features, r *resolved) {
	n := len(s.slots)
	if len(r.val) != n {
		r.val, r.present = make([]float64, n), make([]bool, n)
		r.num, r.catAt = make([]float64, len(s.numSlots)), make([]int32, len(s.catSlots))
		r.missing = make([]int32, 0, len(s.numSlots))
	}
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.kind == Categorical {
			c, ok := f.Cat(sl.name)
			r.present[i] = ok
			id, known := sl.catID[c]
			if !known {
				id = int32(len(sl.catID))
			}
			r.val[i] = float64(id)
			continue
		}
		x, ok := f.Num(sl.name)
		ok = ok && !math.IsNaN(x)
		r.present[i] = ok
		if ok && sl.transform == TransformLog1p {
			x = math.Log1p(math.Max(x, 0))
		}
		r.val[i] = x
	}
	r.missing = r.missing[:0]
	for p, si := range s.numSlots {
		if r.present[si] {
			r.num[p] = r.val[si]
		} else {
			r.num[p] = 0
			r.missing = append(r.missing, int32(p))
		}
	}
	for k, si := range s.catSlots {
		at := s.catOff[k] + int32(r.val[si])
		if !r.present[si] {
			at = s.catOff[k] + int32(len(s.slots[si].catID)) + 1
		}
		r.catAt[k] = at
	}
}

// score writes each model's propensity from resolved features.
func (s *Set) score(sc *resolved, out []float64) {
	for mi := range s.models {
		m := &s.models[mi]
		z := m.bias + dot(m.wNum, sc.num)
		for _, p := range sc.missing {
			z += m.missNum[p]
		}
		z += gather(m.catW, sc.catAt)
		for ti := range m.other {
			t := &m.other[ti]
			if sc.present[t.slot] {
				z += t.bucketW[bucket(t.edges, sc.val[t.slot])]
			} else {
				z += t.missing
			}
		}
		out[mi] = z
	}
	// The logistic in a second pass: the exponentials are independent
	// of each other there, which measured faster than one per model above.
	for mi, z := range out[:len(s.models)] {
		out[mi] = sigmoid(z)
	}
}

// dot returns the dot product of two slices of equal length, with
// independent partial sums.
func dot(a, b []float64) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float64
	i := 0
	for ; i+8 <= len(a); i += 8 {
		aa, bb := a[i:i+8:i+8], b[i:i+8:i+8]
		s0 += aa[0] * bb[0]
		s1 += aa[1] * bb[1]
		s2 += aa[2] * bb[2]
		s3 += aa[3] * bb[3]
		s4 += aa[4] * bb[4]
		s5 += aa[5] * bb[5]
		s6 += aa[6] * bb[6]
		s7 += aa[7] * bb[7]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3) + (s4 + s5) + (s6 + s7)
}

// gather returns the sum of w at the positions idx, with independent
// partial sums so that the additions do not wait on each other.
func gather(w []float64, idx []int32) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(idx); i += 4 {
		s0 += w[idx[i]]
		s1 += w[idx[i+1]]
		s2 += w[idx[i+2]]
		s3 += w[idx[i+3]]
	}
	for ; i < len(idx); i++ {
		s0 += w[idx[i]]
	}
	return s0 + s1 + s2 + s3
}
