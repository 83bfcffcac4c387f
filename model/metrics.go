package model

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Evaluation is how well scores rank and calibrate against 0/1 outcomes.
type Evaluation struct {
	N, Positives int
	// ROCAUC is the area under the ROC curve (ties count half).
	ROCAUC float64
	// PRAUC is the average precision (area under the precision-recall
	// curve, step-wise, as scikit-learn's average_precision_score).
	PRAUC float64
	// LogLoss is the mean negative log-likelihood (scores clipped to
	// [1e-15, 1-1e-15]); Brier the mean squared error.
	LogLoss, Brier float64
	// Deciles are the rows ranked by score in ten groups, best first.
	Deciles []Group
	// TopK and TopKHits: of the TopK best-scored rows, how many were
	// positive.
	TopK, TopKHits int
	// Calibration is the rows in ten equal-width score bins.
	Calibration []Group
}

// Group is a set of rows: their count, mean score, positive rate and lift
// (positive rate over the overall rate).
type Group struct {
	Lo, Hi    float64 // score range
	N         int
	MeanScore float64
	Rate      float64
	Lift      float64
}

// Evaluate measures scores against labels. topK of 0 means 10% of rows.
func Evaluate(scores []float64, labels []bool, topK int) (Evaluation, error) {
	n := len(scores)
	if n == 0 || len(labels) != n {
		return Evaluation{}, fmt.Errorf("evaluate: %d scores, %d labels", n, len(labels))
	}
	e := Evaluation{N: n}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
		if labels[i] {
			e.Positives++
		}
		s := scores[i]
		if math.IsNaN(s) || s < 0 || s > 1 {
			return Evaluation{}, fmt.Errorf("evaluate: score %d is %v, not in 0..1", i, s)
		}
		y := 0.0
		if labels[i] {
			y = 1
		}
		p := math.Min(math.Max(s, 1e-15), 1-1e-15)
		e.LogLoss -= y*math.Log(p) + (1-y)*math.Log(1-p)
		e.Brier += (s - y) * (s - y)
	}
	e.LogLoss /= float64(n)
	e.Brier /= float64(n)
	neg := n - e.Positives
	if e.Positives == 0 || neg == 0 {
		return Evaluation{}, errors.New("evaluate: labels have one value only; AUC is undefined")
	}
	// Best first; stable so that ties keep input order.
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(scores[b], scores[a]) })

	// ROC AUC by ranks, ties averaged; PR AUC over distinct thresholds.
	var rankSumPos float64
	var tp, fp int
	prevRecall := 0.0
	for i := 0; i < n; {
		j := i
		for j < n && scores[idx[j]] == scores[idx[i]] {
			j++
		}
		// Ranks counted from the worst: rows i..j-1 share ranks n-j+1..n-i.
		avgRank := float64((n-j+1)+(n-i)) / 2
		for k := i; k < j; k++ {
			if labels[idx[k]] {
				rankSumPos += avgRank
				tp++
			} else {
				fp++
			}
		}
		recall := float64(tp) / float64(e.Positives)
		precision := float64(tp) / float64(tp+fp)
		e.PRAUC += (recall - prevRecall) * precision
		prevRecall = recall
		i = j
	}
	p := float64(e.Positives)
	e.ROCAUC = (rankSumPos - p*(p+1)/2) / (p * float64(neg))

	base := p / float64(n)
	group := func(rows []int) Group {
		g := Group{N: len(rows), Lo: math.Inf(1), Hi: math.Inf(-1)}
		if g.N == 0 {
			return Group{}
		}
		var pos int
		for _, r := range rows {
			g.MeanScore += scores[r]
			g.Lo, g.Hi = math.Min(g.Lo, scores[r]), math.Max(g.Hi, scores[r])
			if labels[r] {
				pos++
			}
		}
		g.MeanScore /= float64(g.N)
		g.Rate = float64(pos) / float64(g.N)
		g.Lift = g.Rate / base
		return g
	}
	for d := range 10 {
		e.Deciles = append(e.Deciles, group(idx[d*n/10:(d+1)*n/10]))
	}
	if topK <= 0 {
		topK = max(n/10, 1)
	}
	e.TopK = min(topK, n)
	for _, r := range idx[:e.TopK] {
		if labels[r] {
			e.TopKHits++
		}
	}
	bins := make([][]int, 10)
	for i, s := range scores {
		b := min(int(s*10), 9)
		bins[b] = append(bins[b], i)
	}
	for b := range bins {
		g := group(bins[b])
		g.Lo, g.Hi = float64(b)/10, float64(b+1)/10
		e.Calibration = append(e.Calibration, g)
	}
	return e, nil
}
