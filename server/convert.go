package server

import (
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tact-nba/tact/model/catalog"
	"github.com/tact-nba/tact/model/decision"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// Conversions between the API's enums and the engine's types. A test checks
// that every API value has an entry.
var (
	channelFromProto = map[tactv1.Channel]catalog.Channel{
		tactv1.Channel_CHANNEL_PHONE_INBOUND:  catalog.PhoneInbound,
		tactv1.Channel_CHANNEL_PHONE_OUTBOUND: catalog.PhoneOutbound,
		tactv1.Channel_CHANNEL_BRANCH:         catalog.Branch,
		tactv1.Channel_CHANNEL_WEB:            catalog.Web,
		tactv1.Channel_CHANNEL_MOBILE_APP:     catalog.MobileApp,
		tactv1.Channel_CHANNEL_CHAT:           catalog.Chat,
		tactv1.Channel_CHANNEL_EMAIL:          catalog.Email,
	}
	channelToProto = invert(channelFromProto)

	actionToProto = map[decision.Action]tactv1.Action{
		decision.OfferNow:   tactv1.Action_ACTION_OFFER_NOW,
		decision.OfferLater: tactv1.Action_ACTION_OFFER_LATER,
		decision.NoOffer:    tactv1.Action_ACTION_NO_OFFER,
	}

	reasonToProto = map[decision.ReasonCode]tactv1.ReasonCode{
		decision.HighPropensity:           tactv1.ReasonCode_REASON_CODE_HIGH_PROPENSITY,
		decision.ClientUnknown:            tactv1.ReasonCode_REASON_CODE_CLIENT_UNKNOWN,
		decision.FeaturesUnavailable:      tactv1.ReasonCode_REASON_CODE_FEATURES_UNAVAILABLE,
		decision.NoConsent:                tactv1.ReasonCode_REASON_CODE_NO_CONSENT,
		decision.AlreadyHeld:              tactv1.ReasonCode_REASON_CODE_ALREADY_HELD,
		decision.NotEligible:              tactv1.ReasonCode_REASON_CODE_NOT_ELIGIBLE,
		decision.ChannelNotSold:           tactv1.ReasonCode_REASON_CODE_CHANNEL_NOT_SOLD,
		decision.BelowTierBar:             tactv1.ReasonCode_REASON_CODE_BELOW_TIER_BAR,
		decision.Complaint:                tactv1.ReasonCode_REASON_CODE_COMPLAINT,
		decision.ProtectedTierServiceCall: tactv1.ReasonCode_REASON_CODE_PROTECTED_TIER_SERVICE_CALL,
		decision.CallStage:                tactv1.ReasonCode_REASON_CODE_CALL_STAGE,
		decision.BusyPeriod:               tactv1.ReasonCode_REASON_CODE_BUSY_PERIOD,
		decision.NeedNotYet:               tactv1.ReasonCode_REASON_CODE_NEED_NOT_YET,
		decision.CapReached:               tactv1.ReasonCode_REASON_CODE_CAP_REACHED,
		decision.CoolDown:                 tactv1.ReasonCode_REASON_CODE_COOL_DOWN,
		decision.NoEligibleProduct:        tactv1.ReasonCode_REASON_CODE_NO_ELIGIBLE_PRODUCT,
		decision.NegativeSentiment:        tactv1.ReasonCode_REASON_CODE_NEGATIVE_SENTIMENT,
		decision.RecentlyAccepted:         tactv1.ReasonCode_REASON_CODE_RECENTLY_ACCEPTED,
		decision.NotWorthCost:             tactv1.ReasonCode_REASON_CODE_NOT_WORTH_COST,
		decision.HistoryUnavailable:       tactv1.ReasonCode_REASON_CODE_HISTORY_UNAVAILABLE,
	}

	outcomeFromProto = map[tactv1.Outcome]string{
		tactv1.Outcome_OUTCOME_PRESENTED:     decision.OutcomePresented,
		tactv1.Outcome_OUTCOME_ACCEPTED:      decision.OutcomeAccepted,
		tactv1.Outcome_OUTCOME_DECLINED:      decision.OutcomeDeclined,
		tactv1.Outcome_OUTCOME_NOT_PRESENTED: decision.OutcomeNotPresented,
	}

	notPresentedFromProto = map[tactv1.NotPresentedReason]string{
		tactv1.NotPresentedReason_NOT_PRESENTED_REASON_UNSPECIFIED:     "",
		tactv1.NotPresentedReason_NOT_PRESENTED_REASON_NOT_APPROPRIATE: "not_appropriate",
		tactv1.NotPresentedReason_NOT_PRESENTED_REASON_CLIENT_UPSET:    "client_upset",
		tactv1.NotPresentedReason_NOT_PRESENTED_REASON_NO_TIME:         "no_time",
		tactv1.NotPresentedReason_NOT_PRESENTED_REASON_OTHER:           "other",
	}
)

// The engine's interaction reasons and stages share the API's numbering.
var (
	_ = [1]struct{}{}[int(decision.ReasonOther)-int(tactv1.InteractionReason_INTERACTION_REASON_OTHER)]
	_ = [1]struct{}{}[int(decision.StageWrapUp)-int(tactv1.InteractionStage_INTERACTION_STAGE_WRAP_UP)]
	_ = [1]struct{}{}[int(decision.SentimentPositive)-int(tactv1.Sentiment_SENTIMENT_POSITIVE)]
)

func invert[K, V comparable](m map[K]V) map[V]K {
	out := make(map[V]K, len(m))
	for k, v := range m {
		out[v] = k
	}
	return out
}

func decisionToProto(d *decision.Decision) *tactv1.DecideResponse {
	resp := &tactv1.DecideResponse{
		DecisionId:   d.ID,
		Action:       actionToProto[d.Action],
		Tier:         d.Tier,
		ModelVersion: d.ModelVersion,
		Degraded:     d.Degraded,
		DecidedAt:    timestamppb.New(d.At),
	}
	if len(d.Exposures) > 0 {
		resp.Experiments = make([]*tactv1.ExperimentExposure, len(d.Exposures))
		for i, e := range d.Exposures {
			resp.Experiments[i] = &tactv1.ExperimentExposure{Experiment: e.Experiment, Feature: e.Feature,
				VariationId: int32(e.VariationID), Variation: e.Variation, Name: e.Name}
		}
		resp.ExperimentVariant = strings.Join(exposureNames(d.Exposures), ", ")
	}
	if len(d.Offers) > 0 {
		resp.Offers = make([]*tactv1.Offer, len(d.Offers))
		for i := range d.Offers {
			resp.Offers[i] = offerProto(&d.Offers[i])
		}
	}
	if d.LaterOffer != nil {
		resp.LaterOffer = offerProto(d.LaterOffer)
	}
	if d.Later != nil {
		resp.Later = &tactv1.LaterWindow{
			NotBefore:      timestamppb.New(d.Later.NotBefore),
			NotAfter:       timestamppb.New(d.Later.NotAfter),
			Channel:        channelToProto[d.Later.Channel],
			PreferredHours: d.Later.PreferredHours,
			TimeZone:       d.Later.TimeZone,
		}
	}
	resp.Reasons = make([]*tactv1.Reason, len(d.Reasons))
	for i := range d.Reasons {
		resp.Reasons[i] = reasonProto(&d.Reasons[i])
	}
	if len(d.Candidates) > 0 {
		resp.Candidates = make([]*tactv1.Candidate, len(d.Candidates))
		for i := range d.Candidates {
			c := &d.Candidates[i]
			pc := &tactv1.Candidate{ProductId: c.ProductID, Propensity: c.Propensity, Value: c.Value, Priority: c.Priority}
			for j := range c.Gates {
				g := &c.Gates[j]
				pg := &tactv1.Gate{Name: g.Name, Passed: g.Passed}
				if !g.Passed {
					pg.Reason = reasonProto(&g.Reason)
				}
				pc.Gates = append(pc.Gates, pg)
			}
			resp.Candidates[i] = pc
		}
	}
	return resp
}

func reasonProto(r *decision.Reason) *tactv1.Reason {
	return &tactv1.Reason{Code: reasonToProto[r.Code], Message: r.Message, ProductId: r.ProductID}
}

func offerProto(o *decision.Offer) *tactv1.Offer {
	return &tactv1.Offer{
		ProductId:     o.ProductID,
		Name:          o.Name,
		Propensity:    o.Propensity,
		Score:         o.Score,
		Rank:          uint32(o.Rank),
		TalkingPoints: o.TalkingPoints,
	}
}
