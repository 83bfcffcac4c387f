// Package decision is Tact's decision engine: for one client in one contact
// it reads the client's features and contact history, tiers the client,
// checks the contact (sentiment, complaint, stage), consent and the queue's
// load, runs every product through the policy's gates (held, channel,
// eligibility, acceptance, cool-down, the tier's bar, the pitch's cost at
// the current load), ranks the rest by priority, places the timing (now,
// or later in a window around the moment of need), and reserves the offers
// against the client's frequency caps in one atomic step. Every gate that
// removes or delays an offer gives a reason a person can read. It also
// records what happened to each offer.
//
// The catalog (model/catalog) and the policy (model/policy) are swapped
// while serving with SetPolicy, the model bundle with SetBundle; a decision
// under way finishes with the ones it started with. The engine speaks plain
// Go types; the server converts them to and from the API. An Engine is safe
// for concurrent use.
package decision

import (
	"time"

	"github.com/tact-nba/tact/features"

	"github.com/tact-nba/tact/model/catalog"
)

// Action is the timing decision.
type Action uint8

// The actions.
const (
	NoOffer Action = iota + 1
	OfferNow
	OfferLater
)

// String returns the action's name.
func (a Action) String() string {
	switch a {
	case OfferNow:
		return "offer_now"
	case OfferLater:
		return "offer_later"
	case NoOffer:
		return "no_offer"
	default:
		return "unknown"
	}
}

// ReasonCode says why a decision or product came out as it did. The values
// match the API's ReasonCode enum.
type ReasonCode uint8

// The reason codes.
const (
	HighPropensity ReasonCode = iota + 1
	ClientUnknown
	FeaturesUnavailable
	NoConsent
	AlreadyHeld
	NotEligible
	ChannelNotSold
	BelowTierBar
	Complaint
	ProtectedTierServiceCall
	CallStage
	BusyPeriod
	NeedNotYet
	CapReached
	CoolDown
	NoEligibleProduct
	NegativeSentiment
	RecentlyAccepted
	NotWorthCost
	HistoryUnavailable
)

// Reason is a code with a sentence for the agent. ProductID is empty when
// the reason is about the whole decision.
type Reason struct {
	Code      ReasonCode
	Message   string
	ProductID string
}

// InteractionReason is why the contact takes place.
type InteractionReason uint8

// The interaction reasons. Unspecified is treated as Other.
const (
	ReasonUnspecified InteractionReason = iota
	ReasonService
	ReasonComplaint
	ReasonSalesEnquiry
	ReasonOther
)

// String returns the reason's name as the policy's contexts use it.
func (r InteractionReason) String() string {
	switch r {
	case ReasonService:
		return "service"
	case ReasonComplaint:
		return "complaint"
	case ReasonSalesEnquiry:
		return "sales_enquiry"
	default:
		return "other"
	}
}

// Sentiment is how the client seems to feel, as the desktop judges it.
type Sentiment uint8

// The sentiments. Unspecified is treated as neutral.
const (
	SentimentUnspecified Sentiment = iota
	SentimentNegative
	SentimentNeutral
	SentimentPositive
)

// String returns the sentiment's name.
func (s Sentiment) String() string {
	switch s {
	case SentimentNegative:
		return "negative"
	case SentimentPositive:
		return "positive"
	default:
		return "neutral"
	}
}

// Stage is how far the contact has gone.
type Stage uint8

// The stages. Unspecified is treated as not yet resolved in service and
// complaint contacts.
const (
	StageUnspecified Stage = iota
	StageOpening
	StageInProgress
	StageResolved
	StageWrapUp
)

// String returns the stage's name as the policy uses it.
func (s Stage) String() string {
	switch s {
	case StageOpening:
		return "opening"
	case StageInProgress:
		return "in_progress"
	case StageResolved:
		return "resolved"
	case StageWrapUp:
		return "wrap_up"
	default:
		return "unspecified"
	}
}

// Request asks for one decision.
type Request struct {
	ClientID  string
	Channel   catalog.Channel
	Queue     string
	Reason    InteractionReason
	Stage     Stage
	Sentiment Sentiment
	AgentID   string
	// MaxOffers is how many offers to return at most; 0 means 1.
	MaxOffers int
	// Explain asks for a reason for every product not offered.
	Explain bool
	// DryRun makes the decision without reserving cap slots or logging
	// it (a tester's question); the caps are counted from the history
	// read.
	DryRun bool
}

// Offer is one product to offer.
type Offer struct {
	ProductID     string
	Name          string
	Propensity    float64 // 0..1
	Score         float64 // priority, currency units
	Rank          int     // 1 is best
	TalkingPoints []string
}

// Window is when and where to make an offer later.
type Window struct {
	NotBefore time.Time
	NotAfter  time.Time
	Channel   catalog.Channel
	// PreferredHours are the client's preferred contact hours on Channel,
	// "HH:MM-HH:MM" in TimeZone, when known.
	PreferredHours string
	TimeZone       string
}

// Gate is one check a candidate product went through.
type Gate struct {
	Name   string // e.g. "eligibility", "cool_down", "tier_bar"
	Passed bool
	Reason Reason // set when not passed
}

// Candidate explains how one product fared (with Request.Explain).
type Candidate struct {
	ProductID  string
	Propensity float64
	Value      float64
	Priority   float64
	Gates      []Gate
}

// Decision is the engine's answer.
type Decision struct {
	ID     string
	Action Action
	Offers []Offer
	// Later is when and where to make the later offer: with OFFER_LATER
	// the offers', with OFFER_NOW LaterOffer's.
	Later *Window
	// LaterOffer, with OFFER_NOW, is a better product whose moment has
	// not come: offer it in Later as well.
	LaterOffer   *Offer
	Reasons      []Reason
	Tier         string
	ModelVersion string
	// Exposures are the experiments the client is in, with the variation.
	Exposures []features.Exposure
	Degraded  bool
	At        time.Time
	// Candidates is set with Request.Explain: every catalog product, in
	// catalog order, with the gates it passed or failed.
	Candidates []Candidate

	// logged: the decision went to the log already (committed).
	logged bool
	// detail is what the decision weighed, for the log.
	detail *features.DecisionDetail
}
