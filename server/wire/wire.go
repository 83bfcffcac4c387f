// Package wire converts between Tact's API messages and the domain types
// of features/, for the server and for clients such as the tact CLI.
package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tact-nba/tact/features"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// ClientToProto converts one client's features to the API message.
func ClientToProto(r *features.Record) *tactv1.ClientFeatures {
	out := &tactv1.ClientFeatures{ClientId: r.ClientID, Features: make(map[string]*tactv1.FeatureValue, r.Len())}
	if !r.UpdatedAt.IsZero() {
		out.UpdatedAt = timestamppb.New(r.UpdatedAt)
	}
	for name, v := range r.All {
		fv := &tactv1.FeatureValue{}
		switch v.Kind {
		case features.KindNumber:
			fv.Kind = &tactv1.FeatureValue_Number{Number: v.Num}
		case features.KindString:
			fv.Kind = &tactv1.FeatureValue_String_{String_: v.Str}
		case features.KindBool:
			fv.Kind = &tactv1.FeatureValue_Bool{Bool: v.Bool}
		case features.KindTime:
			fv.Kind = &tactv1.FeatureValue_Time{Time: timestamppb.New(v.Time)}
		}
		out.Features[name] = fv
	}
	return out
}

// RecordFromProto converts features from the API (an export's, a
// request's) to a record, without checking them against a schema; a value
// with no kind is left out.
func RecordFromProto(clientID string, in map[string]*tactv1.FeatureValue) features.Record {
	rec := features.Record{ClientID: clientID, Values: make(map[string]features.Value, len(in))}
	for name, v := range in {
		switch k := v.GetKind().(type) {
		case *tactv1.FeatureValue_Number:
			rec.Values[name] = features.Number(k.Number)
		case *tactv1.FeatureValue_String_:
			rec.Values[name] = features.String(k.String_)
		case *tactv1.FeatureValue_Bool:
			rec.Values[name] = features.Bool(k.Bool)
		case *tactv1.FeatureValue_Time:
			rec.Values[name] = features.Time(k.Time.AsTime())
		}
	}
	return rec
}

// DecisionFromProto converts an exported decision back to the log's
// record, its detail's features packed as the log keeps them.
func DecisionFromProto(d *tactv1.ExportedDecision) features.DecisionRecord {
	rec := features.DecisionRecord{ID: d.GetDecisionId(), ClientID: d.GetClientId(), Channel: d.GetChannel(), Action: d.GetAction(),
		Products: d.GetProducts(), Tier: d.GetTier(), ModelVersion: d.GetModelVersion(), Degraded: d.GetDegraded(), Reason: d.GetReason(),
		At: d.GetDecidedAt().AsTime()}
	if dt := d.GetDetail(); dt != nil {
		out := &features.DecisionDetail{Reason: dt.GetReason(), Stage: dt.GetStage(), Sentiment: dt.GetSentiment(), Queue: dt.GetQueue(),
			QueueState: dt.GetQueueState(), Pressure: dt.GetPressure(), Candidates: make([]features.CandidateRecord, len(dt.GetCandidates()))}
		for i, c := range dt.GetCandidates() {
			out.Candidates[i] = features.CandidateRecord{Product: c.GetProductId(), Propensity: c.GetPropensity(), Value: c.GetValue(),
				Cost: c.GetCost(), Gate: c.GetGate(), Prob: c.GetProbability()}
		}
		if len(dt.GetFeatures()) > 0 {
			f := RecordFromProto(rec.ClientID, dt.GetFeatures())
			out.Features = features.PackFeatures(&f)
		}
		rec.Detail = out
	}
	return rec
}

// OutcomeFromProto converts an exported outcome back to the log's record.
func OutcomeFromProto(o *tactv1.ExportedOutcome) features.OutcomeRecord {
	return features.OutcomeRecord{DecisionID: o.GetDecisionId(), ProductID: o.GetProductId(), Outcome: o.GetOutcome(),
		NotPresentedReason: o.GetAgentReason(), ClientID: o.GetClientId(), Channel: o.GetChannel(),
		OccurredAt: o.GetOccurredAt().AsTime(), RecordedAt: o.GetRecordedAt().AsTime()}
}

// ReadLog reads, over the export API, the decisions made and the outcomes
// recorded since a time (tact evaluate, tact train --from-log).
func ReadLog(ctx context.Context, client tactv1.ExportServiceClient, since time.Time) ([]features.DecisionRecord, []features.OutcomeRecord, error) {
	ds, err := client.ExportDecisions(ctx, &tactv1.ExportDecisionsRequest{Since: timestamppb.New(since)})
	if err != nil {
		return nil, nil, fmt.Errorf("export decisions: %w", err)
	}
	decisions, err := drain(ds, func(m *tactv1.ExportDecisionsResponse) features.DecisionRecord {
		return DecisionFromProto(m.GetDecision())
	})
	if err != nil {
		return nil, nil, fmt.Errorf("export decisions (after %d): %w", len(decisions), err)
	}
	os, err := client.ExportOutcomes(ctx, &tactv1.ExportOutcomesRequest{Since: timestamppb.New(since)})
	if err != nil {
		return nil, nil, fmt.Errorf("export outcomes: %w", err)
	}
	outcomes, err := drain(os, func(m *tactv1.ExportOutcomesResponse) features.OutcomeRecord { return OutcomeFromProto(m.GetOutcome()) })
	if err != nil {
		return nil, nil, fmt.Errorf("export outcomes (after %d): %w", len(outcomes), err)
	}
	return decisions, outcomes, nil
}

// drain reads a server stream to its end.
func drain[M, T any](s grpc.ServerStreamingClient[M], conv func(*M) T) ([]T, error) {
	var out []T
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, conv(m))
	}
}
