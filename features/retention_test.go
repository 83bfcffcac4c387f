package features

import (
	"fmt"
	"testing"
	"time"
)

// idAt is a UUIDv7-shaped decision id made at t.
func idAt(t time.Time, n int) string {
	return fmt.Sprintf("%s-7000-8000-%012d", uuidv7Prefix(t), n)
}

// TestBoltTrim: decisions without offers go after decision_retention,
// those with offers after outcome_window, outcomes after
// outcome_retention; what is younger stays, and trimming many takes
// several transactions.
func TestBoltTrim(t *testing.T) {
	b, _ := openTemp(t)
	defer b.Close()
	ctx := t.Context()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	ret := Retention{Decisions: 48 * time.Hour, OfferDecisions: 30 * 24 * time.Hour, Outcomes: 90 * 24 * time.Hour}
	var recs []DecisionRecord
	add := func(id string, at time.Time, products ...string) {
		recs = append(recs, DecisionRecord{ID: id, ClientID: "C1", Channel: "web", Action: "no_offer", Products: products, At: at})
	}
	old := now.Add(-72 * time.Hour)
	for i := range 2*trimBatch + 10 { // more than one transaction's worth
		add(idAt(old, i), old)
	}
	add(idAt(old, 99999), old, "card")                                         // an offer, inside the outcome window: kept
	add(idAt(now.Add(-40*24*time.Hour), 1), now.Add(-40*24*time.Hour), "card") // an offer past it: gone
	add(idAt(now.Add(-time.Hour), 1), now.Add(-time.Hour))                     // recent: kept
	if err := b.SaveDecisions(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for _, o := range []OutcomeRecord{
		{DecisionID: idAt(now.Add(-100*24*time.Hour), 1), ProductID: "card", Outcome: "accepted", RecordedAt: now.Add(-100 * 24 * time.Hour)},
		{DecisionID: idAt(now.Add(-10*24*time.Hour), 1), ProductID: "card", Outcome: "accepted", RecordedAt: now.Add(-10 * 24 * time.Hour)},
	} {
		if _, err := b.PutOutcome(ctx, &o); err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.Trim(ctx, ret, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.Decisions != 2*trimBatch+10+1 || got.Outcomes != 1 {
		t.Errorf("trimmed %+v, want %d decisions and 1 outcome", got, 2*trimBatch+11)
	}
	var left []string
	if err := b.ExportDecisions(ctx, time.Time{}, func(d *DecisionRecord) error { left = append(left, d.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(left) != 2 || left[0] != idAt(old, 99999) || left[1] != idAt(now.Add(-time.Hour), 1) {
		t.Errorf("left %v, want the offer in its outcome window and the recent decision", left)
	}
	if _, err := b.GetDecision(ctx, idAt(old, 99999)); err != nil {
		t.Errorf("the offer inside its outcome window is gone: %v", err)
	}
	if again, err := b.Trim(ctx, ret, now); err != nil || again != (Trimmed{}) {
		t.Errorf("a second trim: %+v, %v; want nothing left to trim", again, err)
	}
}
