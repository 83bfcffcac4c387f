package experiment

import (
	"fmt"
	"math"
	"testing"
)

// The fixture's expected figures were computed by hand (with scipy's
// chi2.sf and norm.ppf as the tables), independently of this package.
func TestResultsMatchAHandComputedFixture(t *testing.T) {
	info := &Info{Key: "model-test", Variations: []VariationInfo{{ID: 0, Key: "champion", Weight: 0.5}, {ID: 1, Key: "challenger", Weight: 0.5}}}
	tl := NewTally(info)
	// arm: clients, clients with a second decision, decisions offering
	// now, offers presented, offers accepted, clients who accepted twice.
	arms := []struct{ clients, twice, offersNow, presented, accepted, acceptedTwice int }{
		{1000, 200, 600, 400, 80, 5},
		{1050, 250, 700, 420, 105, 5},
	}
	for v, a := range arms {
		n := 0
		decide := func(client string, now bool) string {
			id := fmt.Sprintf("d%d-%d", v, n)
			n++
			exps := []Exposure{{Experiment: "other", VariationID: 1}, {Experiment: "model-test", VariationID: v}}
			tl.Decision(id, client, now, exps)
			if n%10 == 0 {
				tl.Decision(id, client, now, exps) // in the log twice: counted once
			}
			return id
		}
		var offered []string // decisions that offered now
		for c := range a.clients {
			client := fmt.Sprintf("v%d-c%d", v, c)
			rounds := 1
			if c < a.twice {
				rounds = 2
			}
			for range rounds {
				id := decide(client, len(offered) < a.offersNow)
				if len(offered) < a.offersNow {
					offered = append(offered, id)
				}
			}
		}
		if len(offered) != a.offersNow {
			t.Fatalf("fixture: %d decisions offered now, want %d", len(offered), a.offersNow)
		}
		// Outcomes: the first 2 x acceptedTwice offers went to clients
		// with two decisions (both accepted: one conversion each); the
		// rest of the accepted offers to clients with one decision (the
		// offers after the clients with two). Presented: the accepted
		// offers and others, up to the count; one presented twice.
		single := 2 * a.twice
		var acc []int
		for i := range 2 * a.acceptedTwice {
			acc = append(acc, i)
		}
		for i := range a.accepted - 2*a.acceptedTwice {
			acc = append(acc, single+i)
		}
		isAcc := map[int]bool{}
		for _, i := range acc {
			isAcc[i] = true
			tl.Outcome(offered[i], "card", "presented")
			tl.Outcome(offered[i], "card", "accepted")
		}
		for i, shown := 0, len(acc); shown < a.presented; i++ {
			if !isAcc[i] {
				tl.Outcome(offered[i], "card", "presented")
				tl.Outcome(offered[i], "card", "presented") // twice: counts once
				shown++
			}
		}
		tl.Outcome(offered[0], "card", "not_presented") // counts as nothing
		tl.Outcome("unknown-decision", "card", "accepted")
	}
	r := tl.Results()
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 0.00005 {
			t.Errorf("%s = %.6f, want %.4f", what, got, want)
		}
	}
	c, x := r.Variations[0], r.Variations[1]
	for _, chk := range []struct {
		what      string
		got, want int
	}{
		{"control clients", c.Clients, 1000}, {"challenger clients", x.Clients, 1050},
		{"control decisions", c.Decisions, 1200}, {"challenger decisions", x.Decisions, 1300},
		{"control offers now", c.OffersNow, 600}, {"challenger offers now", x.OffersNow, 700},
		{"control presented", c.Presented, 400}, {"challenger presented", x.Presented, 420},
		{"control accepted", c.Accepted, 80}, {"challenger accepted", x.Accepted, 105},
		{"control converted", c.Converted, 75}, {"challenger converted", x.Converted, 100},
	} {
		if chk.got != chk.want {
			t.Errorf("%s = %d, want %d", chk.what, chk.got, chk.want)
		}
	}
	near("control acceptance", c.AcceptanceRate, 0.2)
	near("challenger acceptance", x.AcceptanceRate, 0.25)
	near("control conversion", c.ConversionRate, 0.075)
	near("challenger conversion", x.ConversionRate, 0.0952)
	if c.AcceptanceDiff != nil || x.AcceptanceDiff == nil || x.ConversionDiff == nil {
		t.Fatalf("diffs: control %v, challenger %v %v", c.AcceptanceDiff, x.AcceptanceDiff, x.ConversionDiff)
	}
	near("acceptance diff", x.AcceptanceDiff.Diff, 0.05)
	near("acceptance diff low", x.AcceptanceDiff.Low, -0.0070)
	near("acceptance diff high", x.AcceptanceDiff.High, 0.1070)
	near("conversion diff", x.ConversionDiff.Diff, 0.0202)
	near("conversion diff low", x.ConversionDiff.Low, -0.0039)
	near("conversion diff high", x.ConversionDiff.High, 0.0444)
	near("SRM p-value", r.SRMPValue, 0.2695)
	if r.SRM {
		t.Error("1,000 / 1,050 on 50/50 flagged as a mismatch (p 0.27)")
	}
}

func TestSRMFlagsAnOffSplit(t *testing.T) {
	info := &Info{Key: "e", Variations: []VariationInfo{{ID: 0, Weight: 0.5}, {ID: 1, Weight: 0.5}}}
	tl := NewTally(info)
	for i := range 2200 {
		v := 0
		if i >= 1000 {
			v = 1
		}
		tl.Decision(fmt.Sprint(i), fmt.Sprint("c", i), false, []Exposure{{Experiment: "e", VariationID: v}})
	}
	r := tl.Results()
	if !r.SRM || math.Abs(r.SRMPValue-2.00787e-05) > 1e-9 {
		t.Errorf("1,000 / 1,200 on 50/50: p %.6g srm %v; want p 2.00787e-05 and a mismatch", r.SRMPValue, r.SRM)
	}
}
