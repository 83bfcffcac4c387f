package server

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tact-nba/tact/features"
)

// TestCentreCountsAnsweredOffersAsPresented: the Centre's "today by tier"
// counts an offer presented once whatever says so (presented, accepted or
// declined: a client answers only an offer put to them), as the
// experiments' results do. It showed 0 presented and "-" for acceptance
// beside 24 accepted when the desktop recorded only the answers.
func TestCentreCountsAnsweredOffersAsPresented(t *testing.T) {
	now := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	at := now.Add(-time.Minute)
	log, err := features.OpenBolt(filepath.Join(t.TempDir(), "tact.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	if err := log.SaveDecisions(t.Context(), []features.DecisionRecord{
		{ID: "d1", ClientID: "C1", Action: "offer_now", Tier: "gold", Products: []string{"card", "loan"}, At: at},
		{ID: "d2", ClientID: "C2", Action: "offer_now", Tier: "gold", Products: []string{"card"}, At: at},
		{ID: "d3", ClientID: "C3", Action: "offer_now", Tier: "gold", Products: []string{"card"}, At: at},
		{ID: "d4", ClientID: "C4", Action: "offer_now", Tier: "gold", Products: []string{"card"}, At: at},
	}); err != nil {
		t.Fatal(err)
	}
	for _, o := range [][3]string{
		{"d1", "card", "presented"}, {"d1", "card", "accepted"}, // one offer, two outcomes
		{"d1", "loan", "declined"},
		{"d2", "card", "accepted"}, // accepted, never said presented
		{"d3", "card", "not_presented"},
		{"d4", "card", "presented"},
	} {
		if _, err := log.PutOutcome(t.Context(), &features.OutcomeRecord{DecisionID: o[0], ProductID: o[1], Outcome: o[2], OccurredAt: at, RecordedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	a := readActivity(t.Context(), log, now)
	if len(a.Tiers) != 1 {
		t.Fatalf("tiers %+v, want gold alone", a.Tiers)
	}
	g := a.Tiers[0]
	if g.Offers != 5 || g.Presented != 4 || g.Accepted != 2 || g.Rate != 0.5 {
		t.Errorf("gold: %d offers, %d presented, %d accepted, rate %v; want 5, 4, 2, 0.5", g.Offers, g.Presented, g.Accepted, g.Rate)
	}
}
