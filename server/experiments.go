package server

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model/decision"
	"github.com/tact-nba/tact/model/experiment"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// experimentService reports on the experiments running; results are
// counted from the decision log and outcomes (logReader: with Redis, every
// replica's).
type experimentService struct {
	tactv1.UnimplementedExperimentServiceServer
	engine *decision.Engine
	store  logReader
	log    *features.DecisionLog
	logger *slog.Logger
}

func (s *experimentService) ListExperiments(ctx context.Context, _ *tactv1.ListExperimentsRequest) (*tactv1.ListExperimentsResponse, error) {
	exps := s.engine.Experiments()
	resp := &tactv1.ListExperimentsResponse{}
	if exps == nil {
		return resp, nil
	}
	resp.ConfigVersion, resp.Warnings = exps.Version(), exps.Warnings()
	infos := exps.Experiments()
	for _, key := range slices.Sorted(maps.Keys(infos)) {
		resp.Experiments = append(resp.Experiments, experimentProto(infos[key]))
	}
	return resp, nil
}

func experimentProto(info *experiment.Info) *tactv1.Experiment {
	e := &tactv1.Experiment{Key: info.Key, Feature: info.Feature}
	for _, v := range info.Variations {
		e.Variations = append(e.Variations, variationProto(v))
	}
	return e
}

func variationProto(v experiment.VariationInfo) *tactv1.Variation {
	return &tactv1.Variation{VariationId: int32(v.ID), Key: v.Key, Name: v.Name, Weight: v.Weight}
}

func (s *experimentService) GetExperimentResults(ctx context.Context, req *tactv1.GetExperimentResultsRequest) (*tactv1.GetExperimentResultsResponse, error) {
	exps := s.engine.Experiments()
	var info *experiment.Info
	if exps != nil {
		info = exps.Experiments()[req.GetExperiment()]
	}
	if info == nil {
		return nil, status.Errorf(codes.NotFound, "experiment: no experiment %q in the config in use", req.GetExperiment())
	}
	// Decisions still queued in the log count too.
	if err := s.log.Flush(ctx); err != nil {
		return nil, failure(ctx, s.logger, "experiment results", err)
	}
	since := time.Time{}
	if req.GetSince() != nil {
		since = req.GetSince().AsTime()
	}
	tally := experiment.NewTally(info)
	err := s.store.ExportDecisions(ctx, since, func(d *features.DecisionRecord) error {
		tally.Decision(d.ID, d.ClientID, d.Action == decision.OfferNow.String(), d.Exposures)
		return nil
	})
	if err == nil {
		err = s.store.ExportOutcomes(ctx, since, func(o *features.OutcomeRecord) error {
			tally.Outcome(o.DecisionID, o.ProductID, o.Outcome)
			return nil
		})
	}
	if err != nil {
		return nil, failure(ctx, s.logger, "experiment results", err)
	}
	r := tally.Results()
	resp := &tactv1.GetExperimentResultsResponse{Experiment: r.Experiment, SrmPValue: r.SRMPValue, SampleRatioMismatch: r.SRM}
	if r.SRM {
		resp.Warnings = append(resp.Warnings, fmt.Sprintf(
			"sample ratio mismatch: the exposed clients' split is off the configured weights (chi-square p = %.2g < %v); find the cause before trusting the differences",
			r.SRMPValue, experiment.SRMThreshold))
	}
	for _, v := range r.Variations {
		resp.Variations = append(resp.Variations, &tactv1.VariationResult{
			Variation: variationProto(v.VariationInfo), Clients: int64(v.Clients), Decisions: int64(v.Decisions),
			OffersNow: int64(v.OffersNow), Presented: int64(v.Presented), Accepted: int64(v.Accepted),
			ConvertedClients: int64(v.Converted), AcceptanceRate: v.AcceptanceRate, ConversionRate: v.ConversionRate,
			AcceptanceDifference: diffProto(v.AcceptanceDiff), ConversionDifference: diffProto(v.ConversionDiff),
		})
	}
	return resp, nil
}

func diffProto(d *experiment.Diff) *tactv1.Difference {
	if d == nil {
		return nil
	}
	return &tactv1.Difference{Difference: d.Diff, Low: d.Low, High: d.High}
}

// ExportExposures streams a row per exposure of the decisions since.
func (s *exportService) ExportExposures(req *tactv1.ExportExposuresRequest, stream grpc.ServerStreamingServer[tactv1.ExportExposuresResponse]) error {
	ctx := stream.Context()
	if err := s.log.Flush(ctx); err != nil {
		return failure(ctx, s.logger, "experiment results", err)
	}
	err := s.store.ExportDecisions(ctx, req.GetSince().AsTime(), func(d *features.DecisionRecord) error {
		for _, e := range d.Exposures {
			if req.GetExperiment() != "" && e.Experiment != req.GetExperiment() {
				continue
			}
			err := stream.Send(&tactv1.ExportExposuresResponse{Exposure: &tactv1.ExportedExposure{
				DecisionId: d.ID, ClientId: d.ClientID, Experiment: e.Experiment, Feature: e.Feature,
				VariationId: int32(e.VariationID), Variation: e.Variation, Channel: d.Channel, Action: d.Action,
				ModelVersion: d.ModelVersion, DecidedAt: timestamppb.New(d.At),
			}})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return failure(ctx, s.logger, "experiment results", err)
}

type experimentInProcess struct {
	tactv1.UnimplementedExperimentServiceServer
	s  tactv1.ExperimentServiceServer
	ic grpc.UnaryServerInterceptor
}

func (w *experimentInProcess) ListExperiments(ctx context.Context, req *tactv1.ListExperimentsRequest) (*tactv1.ListExperimentsResponse, error) {
	return invoke(ctx, w.ic, w.s, tactv1.ExperimentService_ListExperiments_FullMethodName, req, w.s.ListExperiments)
}

func (w *experimentInProcess) GetExperimentResults(ctx context.Context, req *tactv1.GetExperimentResultsRequest) (*tactv1.GetExperimentResultsResponse, error) {
	return invoke(ctx, w.ic, w.s, tactv1.ExperimentService_GetExperimentResults_FullMethodName, req, w.s.GetExperimentResults)
}
