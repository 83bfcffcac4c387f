package server

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model/decision"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
	"github.com/tact-nba/tact/server/wire"
)

// logReader reads the decision log and the outcomes: the embedded store's,
// or with Redis the shared ones every replica writes.
type logReader interface {
	ExportDecisions(ctx context.Context, since time.Time, fn func(*features.DecisionRecord) error) error
	ExportOutcomes(ctx context.Context, since time.Time, fn func(*features.OutcomeRecord) error) error
}

var (
	_ logReader = (*features.Bolt)(nil)
	_ logReader = (*features.Redis)(nil)
)

// exportService serves ExportService from the log (see logReader).
type exportService struct {
	tactv1.UnimplementedExportServiceServer
	store  logReader
	log    *features.DecisionLog
	logger *slog.Logger
}

func (s *exportService) ExportDecisions(req *tactv1.ExportDecisionsRequest, stream grpc.ServerStreamingServer[tactv1.ExportDecisionsResponse]) error {
	ctx := stream.Context()
	// Decisions still queued in the log are written first, so that the
	// export holds every decision made before it started.
	if err := s.log.Flush(ctx); err != nil {
		return failure(ctx, s.logger, "export", err)
	}
	err := s.store.ExportDecisions(ctx, req.GetSince().AsTime(), func(d *features.DecisionRecord) error {
		return stream.Send(&tactv1.ExportDecisionsResponse{Decision: &tactv1.ExportedDecision{
			DecisionId:   d.ID,
			ClientId:     d.ClientID,
			Channel:      d.Channel,
			Action:       d.Action,
			Products:     d.Products,
			Tier:         d.Tier,
			ModelVersion: d.ModelVersion,
			Degraded:     d.Degraded,
			Reason:       d.Reason,
			DecidedAt:    timestamppb.New(d.At),
			Experiments:  exposureNames(d.Exposures),
			Detail:       detailProto(d),
		}})
	})
	return failure(ctx, s.logger, "export", err)
}

func (s *exportService) ExportOutcomes(req *tactv1.ExportOutcomesRequest, stream grpc.ServerStreamingServer[tactv1.ExportOutcomesResponse]) error {
	ctx := stream.Context()
	err := s.store.ExportOutcomes(ctx, req.GetSince().AsTime(), func(o *features.OutcomeRecord) error {
		return stream.Send(&tactv1.ExportOutcomesResponse{Outcome: &tactv1.ExportedOutcome{
			DecisionId:  o.DecisionID,
			ProductId:   o.ProductID,
			Outcome:     o.Outcome,
			AgentVeto:   o.Outcome == decision.OutcomeNotPresented,
			AgentReason: o.NotPresentedReason,
			ClientId:    o.ClientID,
			Channel:     o.Channel,
			OccurredAt:  timestamppb.New(o.OccurredAt),
			RecordedAt:  timestamppb.New(o.RecordedAt),
		}})
	})
	return failure(ctx, s.logger, "export", err)
}

// exposureNames are "experiment:variation" per exposure.
func exposureNames(exps []features.Exposure) []string {
	if len(exps) == 0 {
		return nil
	}
	out := make([]string, len(exps))
	for i, e := range exps {
		out[i] = e.Experiment + ":" + e.Variation
	}
	return out
}

// detailProto is the decision's detail for the export; nil without one.
func detailProto(d *features.DecisionRecord) *tactv1.DecisionDetail {
	dt := d.Detail
	if dt == nil {
		return nil
	}
	out := &tactv1.DecisionDetail{Reason: dt.Reason, Stage: dt.Stage, Sentiment: dt.Sentiment, Queue: dt.Queue,
		QueueState: dt.QueueState, Pressure: dt.Pressure, Candidates: make([]*tactv1.DecisionCandidate, len(dt.Candidates))}
	for i := range dt.Candidates {
		c := &dt.Candidates[i]
		out.Candidates[i] = &tactv1.DecisionCandidate{ProductId: c.Product, Propensity: c.Propensity, Value: c.Value, Cost: c.Cost,
			Priority: c.Priority(), Gate: c.Gate, Probability: c.Prob}
	}
	if len(dt.Features) > 0 {
		// Stored by this process's own codec: a record that does not
		// unpack is exported without its features.
		if rec, err := features.UnpackFeatures(d.ClientID, dt.Features); err == nil {
			out.Features = wire.ClientToProto(&rec).GetFeatures()
		}
	}
	return out
}
