package experiment

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/tact-nba/tact/features"
)

// SRMThreshold is the p-value under which a split is reported as a sample
// ratio mismatch (GrowthBook's default).
const SRMThreshold = 0.001

// z95 is the standard normal quantile of a two-sided 95% interval.
const z95 = 1.959963984540054

// Results of one experiment, per variation.
type Results struct {
	Experiment string
	Variations []VariationResult
	// SRMPValue is the chi-square test's p-value of the exposed clients'
	// split against the configured weights; SRM is set when it is under
	// SRMThreshold.
	SRMPValue float64
	SRM       bool
}

// VariationResult is one arm's figures.
type VariationResult struct {
	VariationInfo
	Clients   int // distinct clients exposed
	Decisions int
	OffersNow int // decisions that offered now
	Presented int // offers presented to the client
	Accepted  int // offers accepted
	Converted int // distinct clients with an accepted offer
	// AcceptanceRate is Accepted / Presented; ConversionRate is
	// Converted / Clients.
	AcceptanceRate, ConversionRate float64
	// The differences against the control (the first variation), with a
	// 95% interval; nil for the control and when a rate is undefined.
	AcceptanceDiff, ConversionDiff *Diff
}

// Diff is a difference of two proportions with its 95% interval (normal
// approximation, unpooled).
type Diff struct {
	Diff, Low, High float64
}

// Tally counts an experiment's decisions and outcomes. Feed it every
// decision first, then every outcome.
type Tally struct {
	info      *Info
	decisions map[string]exposed // decision id -> variation and client
	clients   []map[string]bool
	converted []map[string]bool
	vr        []VariationResult
	offers    map[string]*features.OfferAnswers // decision id + product
}

type exposed struct {
	variation int
	client    string
}

// NewTally starts counting for one experiment.
func NewTally(info *Info) *Tally {
	t := &Tally{info: info, decisions: map[string]exposed{}, offers: map[string]*features.OfferAnswers{}}
	for _, v := range info.Variations {
		t.vr = append(t.vr, VariationResult{VariationInfo: v})
		t.clients = append(t.clients, map[string]bool{})
		t.converted = append(t.converted, map[string]bool{})
	}
	return t
}

// Decision counts a decision if it exposed the client to the experiment,
// once: a log that holds it twice (a shared stream written before its
// batches were appended once) does not count it twice.
func (t *Tally) Decision(id, clientID string, offerNow bool, exps []Exposure) {
	if _, seen := t.decisions[id]; seen {
		return
	}
	for _, e := range exps {
		if e.Experiment != t.info.Key || e.VariationID < 0 || e.VariationID >= len(t.vr) {
			continue
		}
		t.decisions[id] = exposed{e.VariationID, clientID}
		v := &t.vr[e.VariationID]
		v.Decisions++
		if offerNow {
			v.OffersNow++
		}
		t.clients[e.VariationID][clientID] = true
		return
	}
}

// Outcome counts an outcome of a decision counted before ("presented",
// "accepted", "declined" or "not_presented").
func (t *Tally) Outcome(decisionID, productID, outcome string) {
	d, ok := t.decisions[decisionID]
	if !ok {
		return
	}
	k := decisionID + "/" + productID
	o := t.offers[k]
	if o == nil {
		o = &features.OfferAnswers{}
		t.offers[k] = o
	}
	v := &t.vr[d.variation]
	presented, accepted := o.Add(outcome)
	if presented {
		v.Presented++
	}
	if accepted {
		v.Accepted++
		t.converted[d.variation][d.client] = true
	}
}

// Results computes the rates, the differences and the split check.
func (t *Tally) Results() Results {
	r := Results{Experiment: t.info.Key, Variations: make([]VariationResult, len(t.vr))}
	total := 0
	for i := range t.vr {
		v := t.vr[i]
		v.Clients = len(t.clients[i])
		v.Converted = len(t.converted[i])
		v.AcceptanceRate = ratio(v.Accepted, v.Presented)
		v.ConversionRate = ratio(v.Converted, v.Clients)
		total += v.Clients
		r.Variations[i] = v
	}
	c := &r.Variations[0]
	for i := 1; i < len(r.Variations); i++ {
		v := &r.Variations[i]
		v.AcceptanceDiff = diff(v.Accepted, v.Presented, c.Accepted, c.Presented)
		v.ConversionDiff = diff(v.Converted, v.Clients, c.Converted, c.Clients)
	}
	r.SRMPValue = 1
	if total > 0 {
		var chi float64
		for _, v := range r.Variations {
			want := float64(total) * v.Weight
			if want > 0 {
				chi += (float64(v.Clients) - want) * (float64(v.Clients) - want) / want
			}
		}
		if df := len(r.Variations) - 1; df > 0 {
			r.SRMPValue = distuv.ChiSquared{K: float64(df)}.Survival(chi)
		}
		r.SRM = r.SRMPValue < SRMThreshold
	}
	return r
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// diff is (x1/n1 - x0/n0) with its 95% interval.
func diff(x1, n1, x0, n0 int) *Diff {
	if n1 == 0 || n0 == 0 {
		return nil
	}
	p1, p0 := float64(x1)/float64(n1), float64(x0)/float64(n0)
	se := math.Sqrt(p1*(1-p1)/float64(n1) + p0*(1-p0)/float64(n0))
	d := p1 - p0
	return &Diff{Diff: d, Low: d - z95*se, High: d + z95*se}
}
