// Package offpolicy turns Tact's own decision log into labelled data: for
// training (Rows: the offered products with their answers) and for
// off-policy evaluation (Evaluate: how a challenger would have done on the
// decisions the served policy made, before it takes any traffic).
//
// Labels follow what an answer means: accepted is 1, declined 0; an
// agent's veto (not_presented) is not the client's refusal and is left
// out; an offer presented and not answered within a configured time counts
// as 0 (the client let it pass); an offer with no outcome at all is left
// out (nobody knows whether it was made).
//
// The estimators (Dudík, Langford and Li, "Doubly robust policy evaluation
// and learning", 2011) weigh each logged decision by how likely the served
// policy was to make its choice, which the log keeps (the decision
// detail's probability per product, less than 1 where it explored):
//
//   - IPS: the mean of 1[challenger's choice = logged] * reward / p.
//   - Self-normalised IPS: the same sum divided by the sum of the weights;
//     a little biased, much less variable, and bounded by 0 and 1.
//   - Doubly robust: the challenger's own propensity for its choice, plus
//     the weighted error of that reward model on the logged choice.
//
// Each comes with a 95% interval from the normal approximation (the
// delta method for the self-normalised one). A challenger that would choose
// what the served policy never could (probability 0) cannot be judged on
// that decision: Support counts the share it could be.
package offpolicy

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model"
)

// The outcome kinds, as the log keeps them.
const (
	accepted     = "accepted"
	declined     = "declined"
	presented    = "presented"
	notPresented = "not_presented"
)

// Answers holds the outcomes by decision and product.
type Answers struct {
	by map[answerKey]answer
}

type answerKey struct{ decision, product string }

type answer struct {
	accepted, declined, vetoed bool
	presentedAt                time.Time
}

// NewAnswers indexes outcomes.
func NewAnswers(outcomes []features.OutcomeRecord) *Answers {
	a := &Answers{by: make(map[answerKey]answer, len(outcomes))}
	for i := range outcomes {
		o := &outcomes[i]
		k := answerKey{o.DecisionID, o.ProductID}
		v := a.by[k]
		switch o.Outcome {
		case accepted:
			v.accepted = true
		case declined:
			v.declined = true
		case notPresented:
			v.vetoed = true
		case presented:
			if v.presentedAt.IsZero() || o.OccurredAt.Before(v.presentedAt) {
				v.presentedAt = o.OccurredAt
			}
		}
		a.by[k] = v
	}
	return a
}

// Label returns an offered product's label (1 accepted, 0 declined or
// presented and left unanswered for noAnswer by now) and whether it has
// one.
func (a *Answers) Label(decisionID, product string, noAnswer time.Duration, now time.Time) (float64, bool) {
	v, ok := a.by[answerKey{decisionID, product}]
	switch {
	case !ok:
		return 0, false
	case v.accepted:
		return 1, true
	case v.declined:
		return 0, true
	case v.vetoed:
		return 0, false
	case !v.presentedAt.IsZero() && noAnswer > 0 && !now.Before(v.presentedAt.Add(noAnswer)):
		return 0, true
	default:
		return 0, false
	}
}

// Row is one labelled offer: the client's features as scored when it was
// offered, and its answer.
type Row struct {
	DecisionID string
	Product    string
	At         time.Time
	Features   features.Record
	Label      float64
}

// Rows joins decisions and answers into labelled rows, one per offered
// product with a label, oldest first. Decisions logged without their
// features (before details were kept) are counted in skipped.
func Rows(decisions []features.DecisionRecord, a *Answers, noAnswer time.Duration, now time.Time) (rows []Row, skipped int) {
	for i := range decisions {
		d := &decisions[i]
		for _, p := range d.Products {
			y, ok := a.Label(d.ID, p, noAnswer, now)
			if !ok {
				continue
			}
			if d.Detail == nil || len(d.Detail.Features) == 0 {
				skipped++
				continue
			}
			rec, err := features.UnpackFeatures(d.ClientID, d.Detail.Features)
			if err != nil {
				skipped++
				continue
			}
			rows = append(rows, Row{DecisionID: d.ID, Product: p, At: d.At, Features: rec, Label: y})
		}
	}
	slices.SortStableFunc(rows, func(x, y Row) int { return x.At.Compare(y.At) })
	return rows, skipped
}

// Sample is one logged decision that offered a product now, with the
// answer to it.
type Sample struct {
	DecisionID string
	Candidates []features.CandidateRecord
	Features   features.Record
	// Chosen is the index in Candidates of the first offer, Prob the
	// probability with which the served policy chose it.
	Chosen int
	Prob   float64
	Reward float64
}

// Samples picks the decisions that offered a product now and have an
// answer to their first offer.
func Samples(decisions []features.DecisionRecord, a *Answers, noAnswer time.Duration, now time.Time) []Sample {
	var out []Sample
	for i := range decisions {
		d := &decisions[i]
		if d.Action != "offer_now" || len(d.Products) == 0 || d.Detail == nil {
			continue
		}
		chosen := slices.IndexFunc(d.Detail.Candidates, func(c features.CandidateRecord) bool { return c.Product == d.Products[0] })
		if chosen < 0 || d.Detail.Candidates[chosen].Prob <= 0 {
			continue
		}
		y, ok := a.Label(d.ID, d.Products[0], noAnswer, now)
		if !ok {
			continue
		}
		rec, err := features.UnpackFeatures(d.ClientID, d.Detail.Features)
		if err != nil {
			continue
		}
		out = append(out, Sample{DecisionID: d.ID, Candidates: d.Detail.Candidates, Features: rec, Chosen: chosen,
			Prob: d.Detail.Candidates[chosen].Prob, Reward: y})
	}
	return out
}

// A Policy chooses, for a logged decision, the product it would have
// offered first among those the served policy let through (the candidates
// that passed every gate), and its own estimate of that product's
// acceptance: the index in s.Candidates, and the propensity; -1 for none.
type Policy func(s *Sample) (int, float64)

// BundlePolicy chooses as Tact's engine does, by priority (propensity
// times value, less cost), with the bundle's propensities. A product the
// bundle has no model for keeps its logged propensity.
func BundlePolicy(b *model.Bundle) Policy {
	n := len(b.Products())
	return func(s *Sample) (int, float64) {
		scores := make([]float64, 2*n)
		b.ScoreAll(&s.Features, scores[:n], scores[n:])
		best, bestP, bestPri := -1, 0.0, 0.0
		for i := range s.Candidates {
			c := &s.Candidates[i]
			if c.Gate != "" {
				continue
			}
			p := c.Propensity
			if j, ok := b.Index(c.Product); ok {
				p = scores[j]
			}
			pri := p*c.Value - c.Cost
			if best < 0 || pri > bestPri || (pri == bestPri && c.Product < s.Candidates[best].Product) {
				best, bestP, bestPri = i, p, pri
			}
		}
		return best, bestP
	}
}

// Estimate is a value with its 95% interval. Value is NaN when the
// estimate is undefined (no logged decision matches the challenger's
// choices, for the self-normalised one); in JSON it is then null.
type Estimate struct {
	Value, Low, High float64
}

// MarshalJSON writes an undefined value as null (JSON has no NaN).
func (e Estimate) MarshalJSON() ([]byte, error) {
	type plain struct {
		Value     *float64
		Low, High float64
	}
	p := plain{Low: e.Low, High: e.High}
	if !math.IsNaN(e.Value) {
		p.Value = &e.Value
	}
	return json.Marshal(p)
}

// Result is an evaluation.
type Result struct {
	// N is the number of logged decisions judged; Matched how many of
	// them the challenger would have decided as the served policy did;
	// Support the share in which the served policy could have made the
	// challenger's choice.
	N, Matched int
	Support    float64
	// Logged is the served policy's own acceptance on these decisions.
	Logged Estimate
	// The challenger's estimated acceptance.
	IPS, SNIPS, DR Estimate
}

// ErrNoSamples is returned when there is nothing to evaluate on.
var ErrNoSamples = errors.New("offpolicy: no logged offers with an answer")

// z95 is the normal quantile of a two-sided 95% interval.
const z95 = 1.959963984540054

// Evaluate estimates the challenger's acceptance on the samples.
func Evaluate(samples []Sample, challenger Policy) (Result, error) {
	n := len(samples)
	if n == 0 {
		return Result{}, ErrNoSamples
	}
	w := make([]float64, n)
	r := make([]float64, n)
	dr := make([]float64, n)
	supported := 0
	res := Result{N: n}
	for i := range samples {
		s := &samples[i]
		r[i] = s.Reward
		choice, q := challenger(s)
		if choice >= 0 && s.Candidates[choice].Prob > 0 {
			supported++
		}
		if choice == s.Chosen {
			res.Matched++
			w[i] = 1 / s.Prob
		}
		// Doubly robust, with the challenger's propensities as the
		// reward model: q for its choice, corrected by the weighted error
		// on the logged one (whose propensity it would give as well).
		dr[i] = q
		if choice == s.Chosen {
			dr[i] += w[i] * (s.Reward - q)
		}
	}
	res.Support = float64(supported) / float64(n)
	res.Logged = meanCI(r)
	ips := make([]float64, n)
	var sw, swr float64
	for i := range n {
		ips[i] = w[i] * r[i]
		sw += w[i]
		swr += w[i] * r[i]
	}
	res.IPS = meanCI(ips)
	res.DR = meanCI(dr)
	if sw > 0 {
		v := swr / sw
		var ss float64
		for i := range n {
			d := w[i] * (r[i] - v)
			ss += d * d
		}
		h := z95 * math.Sqrt(ss) / sw
		res.SNIPS = Estimate{Value: v, Low: max(0, v-h), High: min(1, v+h)}
	} else {
		res.SNIPS = Estimate{Value: math.NaN(), Low: 0, High: 1}
	}
	return res, nil
}

// meanCI is the mean with its normal 95% interval.
func meanCI(x []float64) Estimate {
	var s float64
	for _, v := range x {
		s += v
	}
	m := s / float64(len(x))
	var ss float64
	for _, v := range x {
		ss += (v - m) * (v - m)
	}
	if len(x) < 2 {
		// One decision says nothing of the spread: the interval is the
		// acceptance's whole range.
		return Estimate{Value: m, Low: 0, High: 1}
	}
	h := z95 * math.Sqrt(ss/float64(len(x)-1)/float64(len(x)))
	return Estimate{Value: m, Low: m - h, High: m + h}
}
