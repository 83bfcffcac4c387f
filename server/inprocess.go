package server

import (
	"context"

	"google.golang.org/grpc"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// The REST gateway calls the services in-process (RegisterXHandlerServer),
// which skips gRPC's interceptors. These adapters run the same interceptor
// chain around each in-process call, so that REST gets the same validation
// and panic recovery as gRPC.

func chainUnary(ics ...grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		h := handler
		for i := len(ics) - 1; i >= 0; i-- {
			ic, next := ics[i], h
			h = func(ctx context.Context, req any) (any, error) { return ic(ctx, req, info, next) }
		}
		return h(ctx, req)
	}
}

func invoke[Req, Resp any](ctx context.Context, ic grpc.UnaryServerInterceptor, srv any, method string, req *Req, fn func(context.Context, *Req) (*Resp, error)) (*Resp, error) {
	out, err := ic(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: method}, func(ctx context.Context, req any) (any, error) {
		return fn(ctx, req.(*Req))
	})
	if err != nil {
		return nil, err
	}
	return out.(*Resp), nil
}

type decisionInProcess struct {
	tactv1.UnimplementedDecisionServiceServer
	s  tactv1.DecisionServiceServer
	ic grpc.UnaryServerInterceptor
}

func (w *decisionInProcess) Decide(ctx context.Context, req *tactv1.DecideRequest) (*tactv1.DecideResponse, error) {
	return invoke(ctx, w.ic, w.s, tactv1.DecisionService_Decide_FullMethodName, req, w.s.Decide)
}

func (w *decisionInProcess) RecordOutcome(ctx context.Context, req *tactv1.RecordOutcomeRequest) (*tactv1.RecordOutcomeResponse, error) {
	return invoke(ctx, w.ic, w.s, tactv1.DecisionService_RecordOutcome_FullMethodName, req, w.s.RecordOutcome)
}

type catalogInProcess struct {
	tactv1.UnimplementedCatalogServiceServer
	s  tactv1.CatalogServiceServer
	ic grpc.UnaryServerInterceptor
}

func (w *catalogInProcess) ListProducts(ctx context.Context, req *tactv1.ListProductsRequest) (*tactv1.ListProductsResponse, error) {
	return invoke(ctx, w.ic, w.s, tactv1.CatalogService_ListProducts_FullMethodName, req, w.s.ListProducts)
}

type loadInProcess struct {
	tactv1.UnimplementedLoadServiceServer
	s  tactv1.LoadServiceServer
	ic grpc.UnaryServerInterceptor
}

func (w *loadInProcess) ReportLoad(ctx context.Context, req *tactv1.ReportLoadRequest) (*tactv1.ReportLoadResponse, error) {
	return invoke(ctx, w.ic, w.s, tactv1.LoadService_ReportLoad_FullMethodName, req, w.s.ReportLoad)
}

func (w *loadInProcess) GetLoad(ctx context.Context, req *tactv1.GetLoadRequest) (*tactv1.GetLoadResponse, error) {
	return invoke(ctx, w.ic, w.s, tactv1.LoadService_GetLoad_FullMethodName, req, w.s.GetLoad)
}

type featureInProcess struct {
	tactv1.UnimplementedFeatureServiceServer
	s  tactv1.FeatureServiceServer
	ic grpc.UnaryServerInterceptor
}

func (w *featureInProcess) PutClientFeatures(ctx context.Context, req *tactv1.PutClientFeaturesRequest) (*tactv1.PutClientFeaturesResponse, error) {
	return invoke(ctx, w.ic, w.s, tactv1.FeatureService_PutClientFeatures_FullMethodName, req, w.s.PutClientFeatures)
}

func (w *featureInProcess) BatchPutClientFeatures(ctx context.Context, req *tactv1.BatchPutClientFeaturesRequest) (*tactv1.BatchPutClientFeaturesResponse, error) {
	return invoke(ctx, w.ic, w.s, tactv1.FeatureService_BatchPutClientFeatures_FullMethodName, req, w.s.BatchPutClientFeatures)
}

func (w *featureInProcess) GetClientFeatures(ctx context.Context, req *tactv1.GetClientFeaturesRequest) (*tactv1.GetClientFeaturesResponse, error) {
	return invoke(ctx, w.ic, w.s, tactv1.FeatureService_GetClientFeatures_FullMethodName, req, w.s.GetClientFeatures)
}
