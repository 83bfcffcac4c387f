package server

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tact-nba/tact/features"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// propensityOf is a product's propensity for a client, from an explained
// dry run.
func propensityOf(t *testing.T, dc tactv1.DecisionServiceClient, client, product string) float64 {
	t.Helper()
	d, err := dc.Decide(t.Context(), &tactv1.DecideRequest{ClientId: client, Channel: tactv1.Channel_CHANNEL_WEB, Explain: true, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range d.GetCandidates() {
		if c.GetProductId() == product {
			return c.GetPropensity()
		}
	}
	t.Fatalf("%s is not among %s's candidates", product, client)
	return 0
}

// TestAdaptiveLearning: with learning adaptive, a product whose offers are
// mostly accepted rises in propensity for a client who was not in the
// outcomes, one whose offers are all declined falls; what was learned
// survives a restart; with learning off, outcomes change nothing.
func TestAdaptiveLearning(t *testing.T) {
	dir := t.TempDir()
	run := func(learning string) (*testServer, func()) {
		srv := startServer(t, Deps{}, func(c *Config, _ *io.Writer) { c.DataDir, c.Learning = dir, learning })
		return srv, func() {
			if err := srv.stop(); err != nil {
				t.Fatal(err)
			}
		}
	}
	srv, stop := run("adaptive")
	dc := tactv1.NewDecisionServiceClient(srv.conn)
	const probe = "C00003"
	before := map[string]float64{"savings_account": propensityOf(t, dc, probe, "savings_account"), "credit_card": propensityOf(t, dc, probe, "credit_card")}
	learned := map[string]int{}
	accepted := 0
	for i := 4; i <= 900; i++ {
		d, err := dc.Decide(t.Context(), &tactv1.DecideRequest{ClientId: fmt.Sprintf("C%05d", i), Channel: tactv1.Channel_CHANNEL_BRANCH, MaxOffers: 3})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range d.GetOffers() {
			var outcome tactv1.Outcome
			switch o.GetProductId() {
			case "savings_account": // three in four accept
				outcome = tactv1.Outcome_OUTCOME_ACCEPTED
				if i%4 == 0 {
					outcome = tactv1.Outcome_OUTCOME_DECLINED
				}
				if outcome == tactv1.Outcome_OUTCOME_ACCEPTED {
					accepted++
				}
			case "credit_card":
				outcome = tactv1.Outcome_OUTCOME_DECLINED
			default:
				continue
			}
			if _, err := dc.RecordOutcome(t.Context(), &tactv1.RecordOutcomeRequest{DecisionId: d.GetDecisionId(), ProductId: o.GetProductId(), Outcome: outcome}); err != nil {
				t.Fatal(err)
			}
			learned[o.GetProductId()]++
		}
	}
	after := map[string]float64{"savings_account": propensityOf(t, dc, probe, "savings_account"), "credit_card": propensityOf(t, dc, probe, "credit_card")}
	t.Logf("outcomes learned %v; %s's propensities before %v, after %v", learned, probe, before, after)
	if learned["savings_account"] < 20 || learned["credit_card"] < 10 {
		t.Fatalf("too few outcomes to learn from: %v", learned)
	}
	if after["savings_account"] <= before["savings_account"]+0.05 || after["credit_card"] >= before["credit_card"] {
		t.Errorf("after the outcomes: savings %.3f -> %.3f (all accepted), card %.3f -> %.3f (all declined)",
			before["savings_account"], after["savings_account"], before["credit_card"], after["credit_card"])
	}
	// Its health, in the metrics and on the console.
	code, metrics := srv.rest(t, http.MethodGet, "/metrics", "")
	want := fmt.Sprintf(`product="savings_account"} %d`, accepted)
	if code != http.StatusOK || !strings.Contains(grepLines(metrics, `tact_learning_outcomes_total{answer="accepted"`), want) || !strings.Contains(metrics, "tact_learning_recent_auc") {
		t.Errorf("/metrics lacks %s:\n%s", want, grepLines(metrics, "tact_learning"))
	}
	if _, page := srv.rest(t, http.MethodGet, "/console/models", ""); !strings.Contains(page, fmt.Sprintf("%d accepted, %d declined", accepted, learned["savings_account"]-accepted)) || !strings.Contains(page, "calibration over its recent outcomes") {
		t.Errorf("the console's Models page does not show what savings_account learned")
	}
	stop()

	srv, stop = run("adaptive")
	dc = tactv1.NewDecisionServiceClient(srv.conn)
	if p := propensityOf(t, dc, probe, "savings_account"); p != after["savings_account"] {
		t.Errorf("after a restart: %.6f, before it %.6f (the learning was not kept)", p, after["savings_account"])
	}
	stop()

	// With learning off the bundle's propensity is served as it is.
	srv, stop = run("off")
	defer stop()
	dc = tactv1.NewDecisionServiceClient(srv.conn)
	if p := propensityOf(t, dc, probe, "savings_account"); p != before["savings_account"] {
		t.Errorf("with learning off: %.6f, the bundle's %.6f", p, before["savings_account"])
	}
}

// TestSharedLearningAcrossReplicas: two replicas on one Redis, decisions
// made on either and outcomes recorded on the other: once both have read
// the shared state back, both give the same propensity for the same
// client, and it moved with the outcomes.
func TestSharedLearningAcrossReplicas(t *testing.T) {
	rs := startReplicas(t, "single", 2, func(c *Config) { c.Learning = "adaptive" })
	a, b := tactv1.NewDecisionServiceClient(rs[0].conn), tactv1.NewDecisionServiceClient(rs[1].conn)
	const probe = "C00003"
	before := propensityOf(t, a, probe, "savings_account")
	n := 0
	for i := 4; i <= 600; i++ {
		decider, recorder := a, b
		if i%2 == 0 {
			decider, recorder = b, a
		}
		d, err := decider.Decide(t.Context(), &tactv1.DecideRequest{ClientId: fmt.Sprintf("C%05d", i), Channel: tactv1.Channel_CHANNEL_BRANCH, MaxOffers: 3})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range d.GetOffers() {
			if o.GetProductId() != "savings_account" {
				continue
			}
			if _, err := recorder.RecordOutcome(t.Context(), &tactv1.RecordOutcomeRequest{DecisionId: d.GetDecisionId(), ProductId: o.GetProductId(), Outcome: tactv1.Outcome_OUTCOME_ACCEPTED}); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	var pa, pb float64
	waitFor(t, func() bool {
		pa, pb = propensityOf(t, a, probe, "savings_account"), propensityOf(t, b, probe, "savings_account")
		return pa == pb && pa > before+0.05
	})
	t.Logf("%d acceptances over two replicas: %s's savings propensity %.4f -> %.4f on both", n, probe, before, pa)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestSnapshotRestoredOnce: a bundle version carrying a learned state
// (a snapshot) makes learning resume from it the first time it is served;
// a restart serving the same version keeps what was learned since.
func TestSnapshotRestoredOnce(t *testing.T) {
	models := t.TempDir()
	snap := filepath.Join(models, "snap-1")
	if err := os.CopyFS(snap, os.DirFS("../model/demo/bundle")); err != nil {
		t.Fatal(err)
	}
	// The learned state: the savings account always accepted, as the
	// first server learns it.
	first := startServer(t, Deps{}, func(c *Config, _ *io.Writer) { c.Learning = "adaptive" })
	dc := tactv1.NewDecisionServiceClient(first.conn)
	for i := 4; i <= 400; i++ {
		d, err := dc.Decide(t.Context(), &tactv1.DecideRequest{ClientId: fmt.Sprintf("C%05d", i), Channel: tactv1.Channel_CHANNEL_BRANCH})
		if err != nil {
			t.Fatal(err)
		}
		if d.GetAction() == tactv1.Action_ACTION_OFFER_NOW && d.GetOffers()[0].GetProductId() == "savings_account" {
			if _, err := dc.RecordOutcome(t.Context(), &tactv1.RecordOutcomeRequest{DecisionId: d.GetDecisionId(), ProductId: "savings_account", Outcome: tactv1.Outcome_OUTCOME_ACCEPTED}); err != nil {
				t.Fatal(err)
			}
		}
	}
	learned := propensityOf(t, dc, "C00003", "savings_account")
	st, err := tactv1.NewModelServiceClient(first.conn).ExportLearning(t.Context(), &tactv1.ExportLearningRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	man, err := os.ReadFile(filepath.Join(snap, "bundle.json"))
	if err != nil {
		t.Fatal(err)
	}
	man = bytes.Replace(man, []byte(`"version": "demo-2"`), []byte(`"version": "snap-1", "learning": "learning.json"`), 1)
	if err := os.WriteFile(filepath.Join(snap, "bundle.json"), man, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(snap, "learning.json"), st.GetState(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("snap-1", filepath.Join(models, "current")); err != nil {
		t.Fatal(err)
	}

	data := t.TempDir()
	start := func() *testServer {
		return startServer(t, Deps{}, func(c *Config, _ *io.Writer) { c.Learning, c.ModelDir, c.DataDir = "adaptive", models, data })
	}
	second := start()
	dc = tactv1.NewDecisionServiceClient(second.conn)
	if got := propensityOf(t, dc, "C00003", "savings_account"); math.Abs(got-learned) > 1e-6 {
		t.Fatalf("a fresh server on the snapshot scores %.6f, want the snapshot's %.6f", got, learned)
	}
	for i := 401; i <= 700; i++ {
		d, err := dc.Decide(t.Context(), &tactv1.DecideRequest{ClientId: fmt.Sprintf("C%05d", i), Channel: tactv1.Channel_CHANNEL_BRANCH})
		if err != nil {
			t.Fatal(err)
		}
		if d.GetAction() == tactv1.Action_ACTION_OFFER_NOW {
			if _, err := dc.RecordOutcome(t.Context(), &tactv1.RecordOutcomeRequest{DecisionId: d.GetDecisionId(), ProductId: d.GetOffers()[0].GetProductId(), Outcome: tactv1.Outcome_OUTCOME_DECLINED}); err != nil {
				t.Fatal(err)
			}
		}
	}
	since := propensityOf(t, dc, "C00003", "savings_account")
	if since >= learned {
		t.Fatalf("refusals did not lower the propensity: %.4f, was %.4f", since, learned)
	}
	if err := second.stop(); err != nil {
		t.Fatal(err)
	}
	third := start()
	if got := propensityOf(t, tactv1.NewDecisionServiceClient(third.conn), "C00003", "savings_account"); math.Abs(got-since) > 1e-6 {
		t.Errorf("after a restart the savings account scores %.6f, want %.6f (what was learned since the snapshot), not the snapshot's %.6f", got, since, learned)
	}
}

// The export carries each decision's detail when it is kept (full, or
// auto with learning or exploration) and not otherwise (auto alone, off).
func TestDecisionDetailExported(t *testing.T) {
	for _, tc := range []struct {
		detail, learning string
		want             bool
	}{{"full", "off", true}, {"auto", "adaptive", true}, {"auto", "off", false}, {"off", "adaptive", false}} {
		t.Run(tc.detail+"/"+tc.learning, func(t *testing.T) {
			ts := startServer(t, Deps{}, func(c *Config, _ *io.Writer) { c.DecisionDetail, c.Learning = tc.detail, tc.learning })
			d, err := tactv1.NewDecisionServiceClient(ts.conn).Decide(t.Context(), &tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_BRANCH,
				Context: &tactv1.InteractionContext{Reason: tactv1.InteractionReason_INTERACTION_REASON_SALES_ENQUIRY}})
			if err != nil {
				t.Fatal(err)
			}
			decisions, _ := simExport(t, ts, time.Now().Add(-time.Hour))
			if len(decisions) != 1 || decisions[0].ID != d.GetDecisionId() {
				t.Fatalf("exported %+v", decisions)
			}
			dt := decisions[0].Detail
			if (dt != nil) != tc.want {
				t.Fatalf("detail %+v, want it kept: %v", dt, tc.want)
			}
			if dt == nil {
				return
			}
			rec, err := features.UnpackFeatures("C00003", dt.Features)
			if err != nil || dt.Reason != "sales_enquiry" || len(dt.Candidates) != 8 {
				t.Fatalf("detail %+v, features %v", dt, err)
			}
			if age, ok := rec.Num("age"); !ok || age <= 0 {
				t.Errorf("the exported features lack the client's age: %v", rec.Map())
			}
			// Chosen for sure without exploration; with it (auto with
			// learning), with the probability it had.
			for _, c := range dt.Candidates {
				if c.Product == d.GetOffers()[0].GetProductId() && (c.Prob <= 0 || c.Gate != "" || (tc.learning == "off" && c.Prob != 1)) {
					t.Errorf("the offer's candidate %+v, want no gate and a probability (1 without exploration)", c)
				}
			}
		})
	}
}
