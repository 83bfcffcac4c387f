package decision

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tact-nba/tact/features"
)

// The outcomes of an offer.
const (
	OutcomePresented    = "presented"
	OutcomeAccepted     = "accepted"
	OutcomeDeclined     = "declined"
	OutcomeNotPresented = "not_presented"
)

// ErrUnknownDecision is returned by RecordOutcome for a decision id that
// the decision log does not hold.
var ErrUnknownDecision = errors.New("unknown decision")

// FieldError is a request that cannot be carried out because of one field.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// OutcomeRequest reports what happened to one offer.
type OutcomeRequest struct {
	DecisionID string
	ProductID  string
	Outcome    string // one of the Outcome* constants
	// NotPresentedReason is the agent's reason, set only with
	// OutcomeNotPresented: no_time, not_appropriate, client_upset, other.
	NotPresentedReason string
	OccurredAt         time.Time
}

// RecordOutcome stores an outcome durably once its decision is found and
// the product was offered in it. It returns the stored record and whether
// the same outcome was recorded before.
func (e *Engine) RecordOutcome(ctx context.Context, req OutcomeRequest) (features.OutcomeRecord, bool, error) {
	d, err := e.deps.Outcomes.GetDecision(ctx, req.DecisionID)
	if errors.Is(err, features.ErrNotFound) {
		// The decision may still wait in the log's buffer.
		if ferr := e.deps.Log.Flush(ctx); ferr != nil {
			return features.OutcomeRecord{}, false, fmt.Errorf("decision: flush decision log: %w", ferr)
		}
		d, err = e.deps.Outcomes.GetDecision(ctx, req.DecisionID)
	}
	if errors.Is(err, features.ErrNotFound) {
		return features.OutcomeRecord{}, false, fmt.Errorf("decision %s: %w", req.DecisionID, ErrUnknownDecision)
	}
	if err != nil {
		return features.OutcomeRecord{}, false, fmt.Errorf("decision: read decision: %w", err)
	}
	if !d.Offered(req.ProductID) {
		return features.OutcomeRecord{}, false, &FieldError{Field: "product_id", Msg: fmt.Sprintf("%q was not offered in decision %s", req.ProductID, req.DecisionID)}
	}
	now := e.deps.Now().UTC()
	at := req.OccurredAt
	if at.IsZero() {
		at = now
	}
	if at.Before(d.At.Add(-time.Minute)) {
		return features.OutcomeRecord{}, false, &FieldError{Field: "occurred_at", Msg: "is before the decision was made"}
	}
	if at.After(now.Add(time.Minute)) {
		return features.OutcomeRecord{}, false, &FieldError{Field: "occurred_at", Msg: "is in the future"}
	}
	o := features.OutcomeRecord{
		DecisionID:         req.DecisionID,
		ProductID:          req.ProductID,
		Outcome:            req.Outcome,
		NotPresentedReason: req.NotPresentedReason,
		ClientID:           d.ClientID,
		Channel:            d.Channel,
		OccurredAt:         at.UTC(),
		RecordedAt:         now,
	}
	dup, err := e.deps.Outcomes.PutOutcome(ctx, &o)
	if err != nil {
		return features.OutcomeRecord{}, false, err
	}
	// The contact history is written after the outcome record, and again
	// on a repeat (it is idempotent), so that a caller retrying after a
	// failure here repairs it.
	err = e.deps.History.AddContact(ctx, features.Contact{
		ClientID:    o.ClientID,
		Kind:        o.Outcome,
		DecisionID:  o.DecisionID,
		ProductID:   o.ProductID,
		Channel:     o.Channel,
		AgentReason: o.NotPresentedReason,
		At:          o.OccurredAt,
	})
	if err != nil {
		return features.OutcomeRecord{}, false, fmt.Errorf("decision: contact history: %w", err)
	}
	if !dup && e.deps.Learner != nil && (o.Outcome == features.ContactAccepted || o.Outcome == features.ContactDeclined) {
		e.learn(ctx, &o, d.Detail)
	}
	return o, dup, nil
}

// learn teaches the learner an answered offer: accepted is 1, declined 0;
// an offer not presented, or presented without an answer, teaches nothing.
// It learns from the client's features as they were scored when the
// decision's detail kept them, else as they are now (a decision logged
// without its detail; on Redis, where the record an outcome finds is the
// reservation's); the prior is the bundle's propensity now.
func (e *Engine) learn(ctx context.Context, o *features.OutcomeRecord, detail *features.DecisionDetail) {
	var rec features.Record
	var err error
	if detail != nil && len(detail.Features) > 0 {
		rec, err = features.UnpackFeatures(o.ClientID, detail.Features)
	}
	if rec.Len() == 0 || err != nil {
		if rec, err = e.deps.Features.Get(ctx, o.ClientID); err != nil {
			return // nothing to learn from; the outcome itself is stored
		}
	}
	st := e.state.Load()
	prior := e.cfg.LearningPrior
	if j, ok := st.bundle.Index(o.ProductID); ok {
		n := len(st.bundle.Products())
		scores := make([]float64, 2*n)
		st.bundle.ScoreAll(&rec, scores[:n], scores[n:])
		prior = scores[j]
	}
	e.deps.Learner.Learn(o.ProductID, &rec, prior, o.Outcome == features.ContactAccepted)
}
