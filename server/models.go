package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"

	"google.golang.org/grpc"

	"github.com/tact-nba/tact/model/adaptive"
	"github.com/tact-nba/tact/model/decision"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// modelService serves ModelService: the bundle served and, with learning
// adaptive, each product's learned evidence and health.
type modelService struct {
	tactv1.UnimplementedModelServiceServer
	engine  *decision.Engine
	learner *adaptive.Set // nil: learning off
	cfg     *Config
	// restored reads the snapshot version last restored.
	restored func(context.Context) (string, error)
	logger   *slog.Logger
}

func (s *modelService) ListModels(ctx context.Context, _ *tactv1.ListModelsRequest) (*tactv1.ListModelsResponse, error) {
	b := s.engine.Bundle()
	resp := &tactv1.ListModelsResponse{BundleVersion: b.Version(), Learning: s.cfg.Learning, Exploration: s.cfg.Exploring()}
	var health map[string]adaptive.Health
	if s.learner != nil {
		health = s.learner.Health()
		v, err := s.restored(ctx)
		if err != nil {
			return nil, failure(ctx, s.logger, "list models", err)
		}
		resp.RestoredSnapshot = v
	}
	for _, p := range s.engine.Catalog().Products() {
		m := &tactv1.ProductModel{ProductId: p.ID, Type: "none"}
		if mm, ok := b.Manifest.Models[p.ID]; ok {
			m.Type = mm.Type
		}
		if meta, ok := b.Meta(p.ID); ok && len(meta.Metrics) > 0 {
			m.Metrics = maps.Clone(meta.Metrics)
		}
		if h, ok := health[p.ID]; ok {
			m.Accepted, m.Declined, m.RecentOutcomes, m.RecentAuc = h.Accepted, h.Refused, int32(h.Recent), h.AUC
			for _, d := range h.Deciles {
				m.Calibration = append(m.Calibration, &tactv1.CalibrationBin{Outcomes: int32(d.N), Predicted: d.Predicted, Observed: d.Observed})
			}
		}
		resp.Models = append(resp.Models, m)
	}
	return resp, nil
}

func (s *modelService) ExportLearning(ctx context.Context, _ *tactv1.ExportLearningRequest) (*tactv1.ExportLearningResponse, error) {
	states := map[string]adaptive.State{}
	if s.learner != nil {
		states = s.learner.States()
	}
	raw, err := json.Marshal(states)
	if err != nil {
		return nil, failure(ctx, s.logger, "export learning", err)
	}
	return &tactv1.ExportLearningResponse{State: raw, BundleVersion: s.engine.Bundle().Version()}, nil
}

type modelInProcess struct {
	tactv1.UnimplementedModelServiceServer
	s  tactv1.ModelServiceServer
	ic grpc.UnaryServerInterceptor
}

func (w *modelInProcess) ListModels(ctx context.Context, req *tactv1.ListModelsRequest) (*tactv1.ListModelsResponse, error) {
	return invoke(ctx, w.ic, w.s, tactv1.ModelService_ListModels_FullMethodName, req, w.s.ListModels)
}

func (w *modelInProcess) ExportLearning(ctx context.Context, req *tactv1.ExportLearningRequest) (*tactv1.ExportLearningResponse, error) {
	return invoke(ctx, w.ic, w.s, tactv1.ModelService_ExportLearning_FullMethodName, req, w.s.ExportLearning)
}
