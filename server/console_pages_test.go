package server

import (
	"context"
	"testing"
	"time"

	"github.com/tact-nba/tact/features"
)

// fakeLog is a decision log held in memory.
type fakeLog struct {
	decisions []features.DecisionRecord
	outcomes  []features.OutcomeRecord
}

func (l *fakeLog) ExportDecisions(_ context.Context, since time.Time, fn func(*features.DecisionRecord) error) error {
	for i := range l.decisions {
		if !l.decisions[i].At.Before(since) {
			if err := fn(&l.decisions[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *fakeLog) ExportOutcomes(_ context.Context, since time.Time, fn func(*features.OutcomeRecord) error) error {
	for i := range l.outcomes {
		if !l.outcomes[i].OccurredAt.Before(since) {
			if err := fn(&l.outcomes[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// TestCentreCountsAnsweredOffersAsPresented: the Centre's "today by tier"
// counts an offer presented once whatever says so (presented, accepted or
// declined: a client answers only an offer put to them), as the
// experiments' results do. It showed 0 presented and "-" for acceptance
// beside 24 accepted when the desktop recorded only the answers.
func TestCentreCountsAnsweredOffersAsPresented(t *testing.T) {
	now := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	at := now.Add(-time.Minute)
	log := &fakeLog{decisions: []features.DecisionRecord{
		{ID: "d1", Action: "offer_now", Tier: "gold", Products: []string{"card", "loan"}, At: at},
		{ID: "d2", Action: "offer_now", Tier: "gold", Products: []string{"card"}, At: at},
		{ID: "d3", Action: "offer_now", Tier: "gold", Products: []string{"card"}, At: at},
		{ID: "d4", Action: "offer_now", Tier: "gold", Products: []string{"card"}, At: at},
	}}
	out := func(d, p, kind string) features.OutcomeRecord {
		return features.OutcomeRecord{DecisionID: d, ProductID: p, Outcome: kind, OccurredAt: at}
	}
	log.outcomes = []features.OutcomeRecord{
		out("d1", "card", "presented"), out("d1", "card", "accepted"), // one offer, two outcomes
		out("d1", "loan", "declined"),
		out("d2", "card", "accepted"), // accepted, never said presented
		out("d3", "card", "not_presented"),
		out("d4", "card", "presented"),
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
