package server

import (
	"context"
	"fmt"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// services are tactd's own gRPC services.
type services struct {
	decision *decisionService
	catalog  *catalogService
	load     *loadService
	features *featureService
	export   *exportService
	exps     *experimentService
	models   *modelService
}

// serviceEntry is one service as tactd serves it: its gRPC description and
// implementation, and how the REST gateway reaches it in-process through
// the interceptor chain (nil: gRPC only).
type serviceEntry struct {
	desc    *grpc.ServiceDesc
	impl    any
	gateway func(ctx context.Context, mux *runtime.ServeMux, ic grpc.UnaryServerInterceptor) error
}

// table lists every service once: gRPC registration, the health service's
// names and the gateway are all driven from it, so none can miss one.
func (svc *services) table() []serviceEntry {
	return []serviceEntry{
		{&tactv1.DecisionService_ServiceDesc, tactv1.DecisionServiceServer(svc.decision), func(ctx context.Context, mux *runtime.ServeMux, ic grpc.UnaryServerInterceptor) error {
			return tactv1.RegisterDecisionServiceHandlerServer(ctx, mux, &decisionInProcess{s: svc.decision, ic: ic})
		}},
		{&tactv1.CatalogService_ServiceDesc, tactv1.CatalogServiceServer(svc.catalog), func(ctx context.Context, mux *runtime.ServeMux, ic grpc.UnaryServerInterceptor) error {
			return tactv1.RegisterCatalogServiceHandlerServer(ctx, mux, &catalogInProcess{s: svc.catalog, ic: ic})
		}},
		{&tactv1.LoadService_ServiceDesc, tactv1.LoadServiceServer(svc.load), func(ctx context.Context, mux *runtime.ServeMux, ic grpc.UnaryServerInterceptor) error {
			return tactv1.RegisterLoadServiceHandlerServer(ctx, mux, &loadInProcess{s: svc.load, ic: ic})
		}},
		{&tactv1.FeatureService_ServiceDesc, tactv1.FeatureServiceServer(svc.features), func(ctx context.Context, mux *runtime.ServeMux, ic grpc.UnaryServerInterceptor) error {
			return tactv1.RegisterFeatureServiceHandlerServer(ctx, mux, &featureInProcess{s: svc.features, ic: ic})
		}},
		{&tactv1.ExperimentService_ServiceDesc, tactv1.ExperimentServiceServer(svc.exps), func(ctx context.Context, mux *runtime.ServeMux, ic grpc.UnaryServerInterceptor) error {
			return tactv1.RegisterExperimentServiceHandlerServer(ctx, mux, &experimentInProcess{s: svc.exps, ic: ic})
		}},
		{&tactv1.ModelService_ServiceDesc, tactv1.ModelServiceServer(svc.models), func(ctx context.Context, mux *runtime.ServeMux, ic grpc.UnaryServerInterceptor) error {
			return tactv1.RegisterModelServiceHandlerServer(ctx, mux, &modelInProcess{s: svc.models, ic: ic})
		}},
		{&tactv1.ExportService_ServiceDesc, tactv1.ExportServiceServer(svc.export), nil}, // server streams: gRPC only
	}
}

// registerGateway registers every service the gateway reaches.
func registerGateway(ctx context.Context, mux *runtime.ServeMux, table []serviceEntry, ic grpc.UnaryServerInterceptor) error {
	for _, e := range table {
		if e.gateway == nil {
			continue
		}
		if err := e.gateway(ctx, mux, ic); err != nil {
			return fmt.Errorf("server: register %s gateway: %w", e.desc.ServiceName, err)
		}
	}
	return nil
}

// healthNames are the names the health service answers for: the server as
// a whole ("") and each service.
func healthNames(table []serviceEntry) []string {
	names := []string{""}
	for _, e := range table {
		names = append(names, e.desc.ServiceName)
	}
	return names
}
