package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"testing"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model"
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
	other, err := New(Seed + 1)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(other.Clients[0].Values) == fmt.Sprint(a.Clients[0].Values) {
		t.Error("another seed gives the same first client")
	}
	for _, p := range a.Catalog.Products() {
		if _, ok := a.Bundle.Index(p.ID); !ok {
			t.Errorf("the demo bundle has no model for %s", p.ID)
		}
	}
}

// TestBundleIsCurrent retrains every product's model the way
// make_bundle.sh does (its CSV, tact train's input inference, L2 0.001
// for the bundle served and 1 for the challenger) and checks each
// committed bundle scores every client the same: the bundles are what the
// generator and the trainer make today.
func TestBundleIsCurrent(t *testing.T) {
	bank, err := New(Seed)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := Histories(Seed)
	if err != nil {
		t.Fatal(err)
	}
	challenger, err := model.LoadBundle(bundleFS, "challenger")
	if err != nil {
		t.Fatal(err)
	}
	if challenger.Version() != ChallengerVersion {
		t.Errorf("challenger version %q, want %q", challenger.Version(), ChallengerVersion)
	}
	for _, b := range []struct {
		bundle *model.Bundle
		l2     float64
	}{{bank.Bundle, 0.001}, {challenger, 1}} {
		n := len(b.bundle.Products())
		out, scratch := make([]float64, n), make([]float64, n)
		for _, h := range hs {
			var buf bytes.Buffer
			if err := h.WriteCSV(&buf); err != nil {
				t.Fatal(err)
			}
			ds, err := model.ReadCSV(&buf, ',')
			if err != nil {
				t.Fatal(err)
			}
			labels, _, err := ds.Labels(Label, "")
			if err != nil {
				t.Fatal(err)
			}
			specs, err := ds.InferInputs([]string{Label}, nil)
			if err != nil {
				t.Fatal(err)
			}
			rows := make([]model.Features, len(ds.Rows))
			for i := range rows {
				rows[i] = ds.Row(i)
			}
			m, err := model.Train(specs, rows, labels, model.TrainOptions{L2: b.l2})
			if err != nil {
				t.Fatal(err)
			}
			j, _ := b.bundle.Index(h.Product)
			for i := range bank.Clients {
				b.bundle.ScoreAll(&bank.Clients[i], out, scratch)
				if want := m.Score(&bank.Clients[i]); math.Abs(out[j]-want) > 1e-9 {
					t.Fatalf("%s %s, client %s: bundle %.12f, retrained %.12f: run bash model/demo/make_bundle.sh", b.bundle.Version(), h.Product, bank.Clients[i].ClientID, out[j], want)
				}
			}
		}
	}
}

// TestModelsLearnedSomething checks each product's model ranks the clients
// the generator made likelier to accept above the others (rank agreement
// with the true propensity, sampled Kendall tau).
func TestModelsLearnedSomething(t *testing.T) {
	b, err := New(Seed)
	if err != nil {
		t.Fatal(err)
	}
	clients := generate(Seed)
	n := len(b.Bundle.Products())
	out, scratch := make([]float64, n), make([]float64, n)
	for _, p := range b.Catalog.Products() {
		j, _ := b.Bundle.Index(p.ID)
		type pair struct{ score, truth float64 }
		var ps []pair
		for i := range clients {
			if clients[i].holds[p.ID] {
				continue
			}
			b.Bundle.ScoreAll(&b.Clients[i], out, scratch)
			ps = append(ps, pair{out[j], truth(p.ID, &clients[i])})
		}
		var conc, disc int
		for i := 0; i < len(ps); i += 3 {
			for k := i + 1; k < len(ps); k += 7 {
				s := (ps[i].score - ps[k].score) * (ps[i].truth - ps[k].truth)
				if s > 0 {
					conc++
				} else if s < 0 {
					disc++
				}
			}
		}
		if tau := float64(conc-disc) / float64(conc+disc); tau < 0.2 {
			t.Errorf("%s: rank agreement with the true propensity %.2f, want >= 0.2", p.ID, tau)
		}
	}
}

func TestClientsMatchTheSchema(t *testing.T) {
	s, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Seed)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b.Clients {
		r := b.Clients[i]
		if err := s.Check(&r); err != nil {
			t.Fatalf("client %s: %v", r.ClientID, err)
		}
	}
}

// memSink keeps imported records by client id.
type memSink map[string]features.Record

func (m memSink) PutBatch(_ context.Context, recs []features.Record) error {
	for _, r := range recs {
		m[r.ClientID] = r
	}
	return nil
}

func TestWriteClientsCSVImportsAsTheDemoBank(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteClientsCSV(&buf, Seed, 1200); err != nil {
		t.Fatal(err)
	}
	schema, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	sink := memSink{}
	res, err := features.Import(t.Context(), func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil }, schema, sink, features.ImportOptions{})
	if err != nil || res.Imported != 1200 {
		t.Fatalf("import: %+v, %v", res, err)
	}
	bank, err := New(Seed)
	if err != nil {
		t.Fatal(err)
	}
	// The first 1,000 are the demo bank's clients, feature for feature
	// (the file leaves out only what the schema would default anyway).
	for _, want := range bank.Clients {
		got := sink[want.ClientID]
		for name, v := range want.Values {
			if g, ok := got.Values[name]; !ok || g != v {
				t.Fatalf("%s.%s = %+v, want %+v", want.ClientID, name, g, v)
			}
		}
	}
	if _, ok := sink["C01200"]; !ok {
		t.Error("client C01200 missing: more clients than the bank's follow")
	}
}
