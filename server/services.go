package server

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model/catalog"
	"github.com/tact-nba/tact/model/decision"
	"github.com/tact-nba/tact/model/load"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// decisionService serves DecisionService. Requests arrive validated (the
// protovalidate interceptor runs for gRPC and REST alike).
type decisionService struct {
	tactv1.UnimplementedDecisionServiceServer
	engine *decision.Engine
	logger *slog.Logger
	tel    *telemetry
}

func (s *decisionService) Decide(ctx context.Context, req *tactv1.DecideRequest) (*tactv1.DecideResponse, error) {
	ch, ok := channelFromProto[req.GetChannel()]
	if !ok {
		return nil, status.Error(codes.InvalidArgument, "channel: value is required")
	}
	start := time.Now()
	d := s.engine.Decide(ctx, decision.Request{
		ClientID:  req.GetClientId(),
		Channel:   ch,
		Queue:     req.GetQueue(),
		Reason:    decision.InteractionReason(req.GetContext().GetReason()),
		Stage:     decision.Stage(req.GetContext().GetStage()),
		Sentiment: decision.Sentiment(req.GetContext().GetSentiment()),
		AgentID:   req.GetAgentId(),
		MaxOffers: int(req.GetMaxOffers()),
		Explain:   req.GetExplain(),
		DryRun:    req.GetDryRun(),
	})
	if req.GetDryRun() {
		// A tester's question: not a decision of the centre's.
		resp := decisionToProto(&d)
		resp.DryRun = true
		return resp, nil
	}
	s.observe(ctx, &d, req.GetClientId(), ch, time.Since(start))
	return decisionToProto(&d), nil
}

// observe records a decision in the metrics and on the call's span: no
// client id but its keyed hash, no features.
func (s *decisionService) observe(ctx context.Context, d *decision.Decision, clientID string, ch catalog.Channel, took time.Duration) {
	action := d.Action.String()
	reason := d.MainReason()
	s.tel.decideDuration.Record(ctx, took.Seconds(), s.tel.attrs("channel", string(ch), "action", action).rec...)
	s.tel.decisions.of([2]string{action, reason}).Add(1)
	for _, e := range d.Exposures {
		s.tel.exposures.Add(ctx, 1, s.tel.attrs("experiment", e.Experiment, "variation", e.Variation).add...)
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attribute.String("tact.decision_id", d.ID), attribute.String("tact.client_hash", s.tel.clientHash(clientID)),
			attribute.String("tact.channel", string(ch)), attribute.String("tact.action", action), attribute.String("tact.reason", reason),
			attribute.String("tact.tier", d.Tier), attribute.String("tact.model_version", d.ModelVersion))
	}
}

func (s *decisionService) RecordOutcome(ctx context.Context, req *tactv1.RecordOutcomeRequest) (*tactv1.RecordOutcomeResponse, error) {
	in := decision.OutcomeRequest{
		DecisionID:         req.GetDecisionId(),
		ProductID:          req.GetProductId(),
		Outcome:            outcomeFromProto[req.GetOutcome()],
		NotPresentedReason: notPresentedFromProto[req.GetNotPresentedReason()],
	}
	if req.GetOccurredAt() != nil {
		in.OccurredAt = req.GetOccurredAt().AsTime()
	}
	o, dup, err := s.engine.RecordOutcome(ctx, in)
	if err != nil {
		return nil, failure(ctx, s.logger, "record outcome", err)
	}
	return &tactv1.RecordOutcomeResponse{
		DecisionId: o.DecisionID,
		ProductId:  o.ProductID,
		Outcome:    req.GetOutcome(),
		RecordedAt: timestamppb.New(o.RecordedAt),
		Duplicate:  dup,
	}, nil
}

// catalogService serves CatalogService from the engine's catalog, which
// may be reloaded while serving; the answer is built once per catalog.
type catalogService struct {
	tactv1.UnimplementedCatalogServiceServer
	engine *decision.Engine
	built  atomic.Pointer[builtCatalog]
}

type builtCatalog struct {
	from     *catalog.Catalog
	products []*tactv1.Product
}

func (s *catalogService) ListProducts(context.Context, *tactv1.ListProductsRequest) (*tactv1.ListProductsResponse, error) {
	c := s.engine.Catalog()
	b := s.built.Load()
	if b == nil || b.from != c {
		b = &builtCatalog{from: c}
		for _, p := range c.Products() {
			pp := &tactv1.Product{
				ProductId:   p.ID,
				Name:        p.Name,
				Category:    p.Category,
				Value:       p.Value,
				Currency:    p.Currency,
				Description: p.Description,
			}
			for _, ch := range p.Channels {
				pp.Channels = append(pp.Channels, channelToProto[ch])
			}
			b.products = append(b.products, pp)
		}
		s.built.Store(b)
	}
	return &tactv1.ListProductsResponse{Products: b.products}, nil
}

// loadService serves LoadService.
type loadService struct {
	tactv1.UnimplementedLoadServiceServer
	board  *load.Board
	engine *decision.Engine // for the policy's load thresholds
	now    func() time.Time
	logger *slog.Logger
}

func (s *loadService) ReportLoad(ctx context.Context, req *tactv1.ReportLoadRequest) (*tactv1.ReportLoadResponse, error) {
	now := s.now().UTC()
	r := load.Report{
		Queue:              req.GetQueue(),
		CallsWaiting:       req.GetCallsWaiting(),
		LongestWaitSeconds: req.GetLongestWaitSeconds(),
		ServiceLevel:       req.GetServiceLevel(),
		AgentsAvailable:    req.GetAgentsAvailable(),
		ReceivedAt:         now,
	}
	for _, m := range []struct {
		has bool
		m   load.Measures
	}{{req.CallsWaiting != nil, load.HasCallsWaiting}, {req.LongestWaitSeconds != nil, load.HasLongestWait},
		{req.ServiceLevel != nil, load.HasServiceLevel}, {req.AgentsAvailable != nil, load.HasAgentsAvailable}} {
		if m.has {
			r.Has |= m.m
		}
	}
	if req.GetAsOf() != nil {
		if err := req.GetAsOf().CheckValid(); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "as_of: %v", err)
		}
		r.AsOf = req.GetAsOf().AsTime()
	}
	held, stored, err := s.board.Put(ctx, r, &s.engine.Policy().Load)
	switch {
	case errors.Is(err, load.ErrFuture):
		return nil, status.Error(codes.InvalidArgument, "as_of: is more than a minute in the future")
	case errors.Is(err, load.ErrNothingJudged):
		return nil, status.Error(codes.InvalidArgument, "calls_waiting, longest_wait_seconds, service_level: none given; a report needs at least one (an absent measure is unknown, not zero)")
	case errors.Is(err, load.ErrTooManyQueues):
		return nil, status.Errorf(codes.ResourceExhausted, "queue: %v", err)
	case errors.Is(err, load.ErrContention):
		return nil, status.Error(codes.Aborted, "queue: "+err.Error())
	case err != nil:
		return nil, failure(ctx, s.logger, "report load", err)
	}
	return &tactv1.ReportLoadResponse{Load: loadToProto(&held), Stored: stored}, nil
}

func (s *loadService) GetLoad(ctx context.Context, req *tactv1.GetLoadRequest) (*tactv1.GetLoadResponse, error) {
	// A shared board is read afresh: the report may have reached another
	// replica a moment ago.
	if err := s.board.Refresh(ctx); err != nil {
		return nil, failure(ctx, s.logger, "read load", err)
	}
	r, ok := s.board.Get(req.GetQueue())
	if !ok {
		return nil, status.Errorf(codes.NotFound, "queue %q: no load reported", req.GetQueue())
	}
	return &tactv1.GetLoadResponse{Load: loadToProto(&r)}, nil
}

func loadToProto(r *load.Report) *tactv1.QueueLoad {
	l := &tactv1.QueueLoad{
		Queue:      r.Queue,
		AsOf:       timestamppb.New(r.AsOf),
		ReceivedAt: timestamppb.New(r.ReceivedAt),
	}
	if r.Has&load.HasCallsWaiting != 0 {
		l.CallsWaiting = &r.CallsWaiting
	}
	if r.Has&load.HasLongestWait != 0 {
		l.LongestWaitSeconds = &r.LongestWaitSeconds
	}
	if r.Has&load.HasServiceLevel != 0 {
		l.ServiceLevel = &r.ServiceLevel
	}
	if r.Has&load.HasAgentsAvailable != 0 {
		l.AgentsAvailable = &r.AgentsAvailable
	}
	return l
}

// failure maps err to its status (toStatus) and logs what the caller is
// not told: an internal error's detail, and which storage failed and why
// (the file or server and the cause, e.g. no space left on device).
func failure(ctx context.Context, logger *slog.Logger, what string, err error) error {
	st := toStatus(err)
	switch status.Code(st) {
	case codes.Internal, codes.Unavailable:
		logger.ErrorContext(ctx, what+" failed", "err", err)
	}
	return st
}

// unavailableMsg tells a caller that storage failed and the call may be
// retried: nothing was stored.
const unavailableMsg = "storage unavailable; nothing was stored, retry"

// toStatus maps domain errors to gRPC status errors, in one place. Errors
// already carrying a status pass through; storage that cannot be read or
// written is Unavailable (retry), never Internal; unknown errors become
// Internal with a generic message (the caller logs the detail; it is
// never sent).
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var fe *decision.FieldError
	switch {
	case errors.As(err, &fe):
		return status.Error(codes.InvalidArgument, fe.Error())
	case errors.Is(err, decision.ErrUnknownDecision):
		return status.Error(codes.NotFound, "decision_id: "+err.Error())
	case errors.Is(err, features.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, features.ErrReadOnly):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, features.ErrUnavailable):
		return status.Error(codes.Unavailable, unavailableMsg)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "canceled")
	default:
		return status.Error(codes.Internal, "internal error")
	}
}
