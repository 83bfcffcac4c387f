package offpolicy

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/tact-nba/tact/features"
)

// coverageWorld is a small copy of the server's simulated centre (its
// simulation_test.go): four products of equal value whose true acceptance
// is logistic in an age band, a digital habit and an income; a served
// policy that knows only income and explores at 40% (its best with
// probability 0.7, each other product 0.1); a challenger that knows the
// truth.
type coverageClient struct {
	truth, served [4]float64
}

func coverageWorld(n int, rng *rand.Rand) []coverageClient {
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	out := make([]coverageClient, n)
	for i := range out {
		band := rng.IntN(3) // young, middle, senior
		is := func(b int) float64 {
			if band == b {
				return 1
			}
			return 0
		}
		dig := 0.0
		if rng.Float64() < 0.35 {
			dig = 1
		}
		inc := float64(1 + rng.IntN(5))
		out[i] = coverageClient{
			truth: [4]float64{sig(-2.4 + 1.2*is(0) + 0.25*inc), sig(-2.6 + 1.3*is(1) + 0.2*inc),
				sig(-1.6 + 1.2*is(2) - 0.2*inc), sig(-3.6 + 2.6*dig + 0.9*is(0) + 0.25*inc)},
			served: [4]float64{sig(-1.7 + 0.25*inc), sig(-2.0 + 0.2*inc), sig(-0.9 - 0.2*inc), sig(-2.6 + 0.25*inc)},
		}
	}
	return out
}

func argmax(p [4]float64) int {
	b := 0
	for i, v := range p {
		if v > p[b] {
			b = i
		}
	}
	return b
}

// TestIntervalsKeepTheirPromise: over many logs of 1,500 decisions drawn
// from the same world, each estimator's 95% interval holds the
// challenger's true acceptance in the world (the mean of the truth's best
// over its clients) in 95% of them, within what chance allows (3.5
// binomial standard deviations). This is the calibration behind the
// server's TestOffPolicyEstimateMatchesRunning, which judges 20 logs made
// by tactd: an interval too narrow (the weights left out of the
// self-normalised variance, say) or one that mistook the spread fails it.
func TestIntervalsKeepTheirPromise(t *testing.T) {
	const logs = 2000
	rng := rand.New(rand.NewPCG(7, 7))
	world := coverageWorld(100000, rng)
	var truth float64
	for _, c := range world {
		truth += c.truth[argmax(c.truth)]
	}
	truth /= float64(len(world))
	const n = 1500
	samples := make([]Sample, n)
	// The challenger's choice and its propensity (the truth) by decision.
	type choice struct {
		i int
		p float64
	}
	best := make(map[string]choice, n)
	for i := range samples {
		samples[i].DecisionID = strconv.Itoa(i)
		samples[i].Candidates = make([]features.CandidateRecord, 4)
	}
	challenger := func(s *Sample) (int, float64) {
		c := best[s.DecisionID]
		return c.i, c.p
	}
	covered := map[string]int{}
	var mean float64
	for range logs {
		for i := range samples {
			c := &world[rng.IntN(len(world))]
			s := &samples[i]
			sb := argmax(c.served)
			for j := range s.Candidates {
				s.Candidates[j] = features.CandidateRecord{Product: strconv.Itoa(j), Propensity: c.served[j], Value: 1, Prob: 0.1}
			}
			s.Candidates[sb].Prob = 0.7
			s.Chosen = sb
			if u := rng.Float64(); u < 0.3 { // explore: one of the other three
				s.Chosen = (sb + 1 + int(u/0.1)) % 4
			}
			s.Prob = s.Candidates[s.Chosen].Prob
			s.Reward = 0
			if rng.Float64() < c.truth[s.Chosen] {
				s.Reward = 1
			}
			tb := argmax(c.truth)
			best[s.DecisionID] = choice{tb, c.truth[tb]}
		}
		res, err := Evaluate(samples, challenger)
		if err != nil {
			t.Fatal(err)
		}
		mean += res.SNIPS.Value
		for name, e := range map[string]Estimate{"SNIPS": res.SNIPS, "IPS": res.IPS, "DR": res.DR} {
			if e.Low <= truth && truth <= e.High {
				covered[name]++
			}
		}
	}
	mean /= float64(logs)
	sd := math.Sqrt(0.95 * 0.05 / float64(logs))
	t.Logf("challenger's acceptance %.4f, SNIPS's mean over %d logs %.4f; the 95%% intervals hold it in: SNIPS %.3f, IPS %.3f, DR %.3f (chance allows %.3f to %.3f)",
		truth, logs, mean, float64(covered["SNIPS"])/float64(logs), float64(covered["IPS"])/float64(logs), float64(covered["DR"])/float64(logs), 0.95-3.5*sd, 0.95+3.5*sd)
	for _, name := range []string{"SNIPS", "IPS", "DR"} {
		if share := float64(covered[name]) / float64(logs); math.Abs(share-0.95) > 3.5*sd {
			t.Errorf("%s's 95%% interval holds the challenger's acceptance in %.3f of %d logs", name, share, logs)
		}
	}
}
