package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tact-nba/tact/features"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
	"github.com/tact-nba/tact/server/wire"
)

// featureService serves FeatureService: writes go through the feature
// cache (write-through) after a check against the schema.
type featureService struct {
	tactv1.UnimplementedFeatureServiceServer
	cache  *features.Cache
	schema *features.Schema
	now    func() time.Time
	logger *slog.Logger
}

func (s *featureService) PutClientFeatures(ctx context.Context, req *tactv1.PutClientFeaturesRequest) (*tactv1.PutClientFeaturesResponse, error) {
	rec, err := s.record(req.GetClientId(), req.GetFeatures(), req.GetUpdatedAt(), "")
	if err != nil {
		return nil, err
	}
	if err := s.cache.PutBatch(ctx, []features.Record{rec}); err != nil {
		return nil, s.storeError(ctx, err)
	}
	return &tactv1.PutClientFeaturesResponse{Client: wire.ClientToProto(&rec)}, nil
}

func (s *featureService) BatchPutClientFeatures(ctx context.Context, req *tactv1.BatchPutClientFeaturesRequest) (*tactv1.BatchPutClientFeaturesResponse, error) {
	recs := make([]features.Record, len(req.GetClients()))
	seen := make(map[string]int, len(recs))
	for i, c := range req.GetClients() {
		at := fmt.Sprintf("clients[%d].", i)
		if j, dup := seen[c.GetClientId()]; dup {
			return nil, status.Errorf(codes.InvalidArgument, "%sclient_id: %q also at clients[%d]", at, c.GetClientId(), j)
		}
		seen[c.GetClientId()] = i
		rec, err := s.record(c.GetClientId(), c.GetFeatures(), c.GetUpdatedAt(), at)
		if err != nil {
			return nil, err
		}
		recs[i] = rec
	}
	if err := s.cache.PutBatch(ctx, recs); err != nil {
		return nil, s.storeError(ctx, err)
	}
	return &tactv1.BatchPutClientFeaturesResponse{Stored: uint32(len(recs))}, nil
}

func (s *featureService) GetClientFeatures(ctx context.Context, req *tactv1.GetClientFeaturesRequest) (*tactv1.GetClientFeaturesResponse, error) {
	rec, err := s.cache.Get(ctx, req.GetClientId())
	if errors.Is(err, features.ErrNotFound) {
		return nil, status.Errorf(codes.NotFound, "client_id: no features for %q", req.GetClientId())
	}
	if err != nil {
		return nil, s.storeError(ctx, err)
	}
	rec.ClientID = req.GetClientId()
	return &tactv1.GetClientFeaturesResponse{Client: wire.ClientToProto(&rec)}, nil
}

// record converts and checks one client's features; errors name the field
// under prefix.
func (s *featureService) record(id string, in map[string]*tactv1.FeatureValue, updated *timestamppb.Timestamp, prefix string) (features.Record, error) {
	rec := features.Record{ClientID: id, Values: make(map[string]features.Value, len(in)), UpdatedAt: s.now().UTC()}
	if updated != nil {
		if err := updated.CheckValid(); err != nil {
			return rec, status.Errorf(codes.InvalidArgument, "%supdated_at: %v", prefix, err)
		}
		rec.UpdatedAt = updated.AsTime()
	}
	for name, v := range in {
		switch k := v.GetKind().(type) {
		case *tactv1.FeatureValue_Number:
			rec.Values[name] = features.Number(k.Number)
		case *tactv1.FeatureValue_String_:
			rec.Values[name] = features.String(k.String_)
		case *tactv1.FeatureValue_Bool:
			rec.Values[name] = features.Bool(k.Bool)
		case *tactv1.FeatureValue_Time:
			if err := k.Time.CheckValid(); err != nil {
				return rec, status.Errorf(codes.InvalidArgument, "%sfeatures[%q].time: %v", prefix, name, err)
			}
			rec.Values[name] = features.Time(k.Time.AsTime())
		default:
			return rec, status.Errorf(codes.InvalidArgument, "%sfeatures[%q]: no value", prefix, name)
		}
	}
	if err := s.schema.Check(&rec); err != nil {
		return rec, status.Errorf(codes.InvalidArgument, "%sfeatures: %v", prefix, err)
	}
	return rec, nil
}

func (s *featureService) storeError(ctx context.Context, err error) error {
	return failure(ctx, s.logger, "feature store", err)
}
