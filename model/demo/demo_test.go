package demo

import (
	"fmt"
	"sort"
	"testing"
)

func TestBankIsDeterministic(t *testing.T) {
	a, err := New(Seed)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Seed)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Clients) != Clients || a.Clients[0].ClientID != "C00001" || a.Clients[Clients-1].ClientID != fmt.Sprintf("C%05d", Clients) {
		t.Fatalf("clients %d, first %s", len(a.Clients), a.Clients[0].ClientID)
	}
	for i := range a.Clients {
		if fmt.Sprint(a.Clients[i].Values) != fmt.Sprint(b.Clients[i].Values) {
			t.Fatalf("client %s differs between two runs", a.Clients[i].ClientID)
		}
	}
	for id, m := range a.Models.ByProduct {
		if fmt.Sprint(m.Weights, m.Bias) != fmt.Sprint(b.Models.ByProduct[id].Weights, b.Models.ByProduct[id].Bias) {
			t.Errorf("model %s differs between two runs", id)
		}
	}
	other, err := New(Seed + 1)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(other.Clients[0].Values) == fmt.Sprint(a.Clients[0].Values) {
		t.Error("another seed gives the same first client")
	}
}

// TestModelsLearnedSomething checks each product's model ranks the clients
// the generator made likelier to accept above the others: AUC against the
// generator's true propensity, well above chance.
func TestModelsLearnedSomething(t *testing.T) {
	b, err := New(Seed)
	if err != nil {
		t.Fatal(err)
	}
	clients := generate(Seed)
	for _, p := range b.Catalog.Products() {
		type pair struct{ score, truth float64 }
		var ps []pair
		for i := range clients {
			if clients[i].holds[p.ID] {
				continue
			}
			ps = append(ps, pair{b.Models.ByProduct[p.ID].Score(&b.Clients[i]), truth(p.ID, &clients[i])})
		}
		// Rank correlation by concordant pairs (a sampled Kendall tau).
		var conc, disc int
		for i := 0; i < len(ps); i += 3 {
			for j := i + 1; j < len(ps); j += 7 {
				s := (ps[i].score - ps[j].score) * (ps[i].truth - ps[j].truth)
				if s > 0 {
					conc++
				} else if s < 0 {
					disc++
				}
			}
		}
		tau := float64(conc-disc) / float64(conc+disc)
		if tau < 0.2 {
			t.Errorf("%s: model's rank agreement with the true propensity is %.2f, want >= 0.2", p.ID, tau)
		}
	}
	rates := make([]string, 0, len(b.BaseRates))
	for id, r := range b.BaseRates {
		rates = append(rates, fmt.Sprintf("%s=%.2f", id, r))
	}
	sort.Strings(rates)
	t.Logf("simulated acceptance rates: %v", rates)
}
