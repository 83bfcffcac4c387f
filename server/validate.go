package server

import (
	"context"

	"google.golang.org/grpc"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// validate runs protovalidate on every request, except a DecideRequest
// that decideRequestValid can already tell is valid: protovalidate's walk
// of the message (and its two patterns) was 6.6% of tactd's CPU per
// decision. A request the quick check is unsure of goes to protovalidate,
// which stays the only judge of what is invalid and the only writer of
// the error; TestDecideQuickCheckAgrees checks that the quick check never
// passes a request protovalidate refuses.
func validate(pv grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if r, ok := req.(*tactv1.DecideRequest); ok && decideRequestValid(r) {
			return handler(ctx, req)
		}
		return pv(ctx, req, info, handler)
	}
}

// decideRequestValid reports whether r certainly meets the rules in
// decision.proto. False means "not certain", not "invalid": ids with
// characters outside ASCII, for one, are left to protovalidate.
func decideRequestValid(r *tactv1.DecideRequest) bool {
	if !idValid(r.ClientId, true) || (r.Queue != "" && !idValid(r.Queue, false)) {
		return false
	}
	if _, ok := tactv1.Channel_name[int32(r.Channel)]; !ok || r.Channel == tactv1.Channel_CHANNEL_UNSPECIFIED {
		return false
	}
	if c := r.Context; c != nil {
		_, okR := tactv1.InteractionReason_name[int32(c.Reason)]
		_, okS := tactv1.InteractionStage_name[int32(c.Stage)]
		_, okM := tactv1.Sentiment_name[int32(c.Sentiment)]
		if !okR || !okS || !okM {
			return false
		}
	}
	// max_len counts characters; 64 bytes are at most 64 of them.
	return len(r.AgentId) <= 64 && r.MaxOffers <= 10
}

// idValid checks the pattern ^[A-Za-z0-9][A-Za-z0-9._-]*$ (with ':' and
// '@' too for client ids) and 1 to 64 characters.
func idValid(s string, client bool) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		case i > 0 && client && (c == ':' || c == '@'):
		default:
			return false
		}
	}
	return true
}
