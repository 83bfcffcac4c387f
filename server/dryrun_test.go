package server

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// TestDryRunLeavesCapsUntouched: a dry run answers what the decision would
// be, but reserves no cap slot and logs nothing: ten dry runs leave the
// client's web cap as it was, the real decision after them matches, and
// a dry run's decision id takes no outcome.
func TestDryRunLeavesCapsUntouched(t *testing.T) {
	ts := startServer(t, Deps{})
	dc := tactv1.NewDecisionServiceClient(ts.conn)
	req := &tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_WEB, Explain: true}
	var dry *tactv1.DecideResponse
	for range 10 {
		req.DryRun = true
		d, err := dc.Decide(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		if !d.GetDryRun() || d.GetAction() != tactv1.Action_ACTION_OFFER_NOW {
			t.Fatalf("dry run: %v dry_run=%v, want an offer marked dry_run", d.GetAction(), d.GetDryRun())
		}
		dry = d
	}
	req.DryRun = false
	real, err := dc.Decide(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if real.GetDryRun() || real.GetAction() != dry.GetAction() || len(real.GetOffers()) != 1 || real.GetOffers()[0].GetProductId() != dry.GetOffers()[0].GetProductId() {
		t.Errorf("after ten dry runs the real decision is %v %v; the dry runs said %v %v (caps used up by the dry runs?)",
			real.GetAction(), real.GetOffers(), dry.GetAction(), dry.GetOffers())
	}
	_, err = dc.RecordOutcome(t.Context(), &tactv1.RecordOutcomeRequest{DecisionId: dry.GetDecisionId(), ProductId: dry.GetOffers()[0].GetProductId(), Outcome: tactv1.Outcome_OUTCOME_PRESENTED})
	if status.Code(err) != codes.NotFound {
		t.Errorf("an outcome for a dry run's decision: %v, want NotFound (it was not logged)", err)
	}
	if _, err := dc.RecordOutcome(t.Context(), &tactv1.RecordOutcomeRequest{DecisionId: real.GetDecisionId(), ProductId: real.GetOffers()[0].GetProductId(), Outcome: tactv1.Outcome_OUTCOME_PRESENTED}); err != nil {
		t.Errorf("the real decision's outcome: %v", err)
	}
}
