package decision

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model"
	"github.com/tact-nba/tact/model/catalog"
)

// FeatureReader reads one client's features; it returns features.ErrNotFound
// for an unknown client.
type FeatureReader interface {
	Get(ctx context.Context, clientID string) (features.Record, error)
}

// DecisionRecorder takes decision records without blocking; false means the
// record was dropped.
type DecisionRecorder interface {
	Append(rec features.DecisionRecord) bool
	Flush(ctx context.Context) error
}

// OutcomeStore looks up logged decisions and stores outcomes durably.
type OutcomeStore interface {
	GetDecision(ctx context.Context, id string) (features.DecisionRecord, error)
	PutOutcome(ctx context.Context, o *features.OutcomeRecord) (duplicate bool, err error)
}

// Config tunes the engine.
type Config struct {
	// FeatureBudget bounds the feature read; past it the answer is a
	// degraded NO_OFFER. 0 means 50 ms.
	FeatureBudget time.Duration
	// Tiers, from the highest; nil means DefaultTiers.
	Tiers []Tier
}

// Deps are what the engine works with. All are required.
type Deps struct {
	Catalog *catalog.Catalog
	// Bundle scores the products; SetBundle replaces it while serving.
	Bundle   *model.Bundle
	Features FeatureReader
	Log      DecisionRecorder
	Outcomes OutcomeStore
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Engine makes decisions. It is safe for concurrent use.
type Engine struct {
	cfg     Config
	deps    Deps
	scoring atomic.Pointer[scoring]
}

// scoring is a bundle with each catalog product's position in it, swapped
// as one.
type scoring struct {
	bundle *model.Bundle
	pos    []int // per catalog product (catalog order)
}

// New checks the configuration and dependencies and returns an engine.
func New(cfg Config, deps Deps) (*Engine, error) {
	if cfg.FeatureBudget == 0 {
		cfg.FeatureBudget = 50 * time.Millisecond
	}
	if cfg.FeatureBudget < 0 {
		return nil, errors.New("decision: feature budget must be positive")
	}
	if cfg.Tiers == nil {
		cfg.Tiers = DefaultTiers()
	}
	if err := ValidateTiers(cfg.Tiers); err != nil {
		return nil, fmt.Errorf("decision: %w", err)
	}
	switch {
	case deps.Catalog == nil:
		return nil, errors.New("decision: no catalog")
	case deps.Bundle == nil:
		return nil, errors.New("decision: no model bundle")
	case deps.Features == nil:
		return nil, errors.New("decision: no feature reader")
	case deps.Log == nil:
		return nil, errors.New("decision: no decision log")
	case deps.Outcomes == nil:
		return nil, errors.New("decision: no outcome store")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	e := &Engine{cfg: cfg, deps: deps}
	if err := e.SetBundle(deps.Bundle); err != nil {
		return nil, err
	}
	return e, nil
}

// SetBundle makes b the bundle that scores from the next decision on, once
// it has checked that b has a model for every catalog product. Decisions
// under way finish with the bundle they started with.
func (e *Engine) SetBundle(b *model.Bundle) error {
	if b == nil {
		return errors.New("decision: no model bundle")
	}
	products := e.deps.Catalog.Products()
	sc := &scoring{bundle: b, pos: make([]int, len(products))}
	var missing []string
	for i := range products {
		j, ok := b.Index(products[i].ID)
		if !ok {
			missing = append(missing, products[i].ID)
		}
		sc.pos[i] = j
	}
	if len(missing) > 0 {
		return fmt.Errorf("decision: bundle %s has no model for %s", b.Version(), strings.Join(missing, ", "))
	}
	e.scoring.Store(sc)
	return nil
}

// Bundle returns the bundle in use.
func (e *Engine) Bundle() *model.Bundle { return e.scoring.Load().bundle }

// Catalog returns the catalog the engine offers from.
func (e *Engine) Catalog() *catalog.Catalog { return e.deps.Catalog }

// candidate is a product that passed eligibility, with its score.
type candidate struct {
	p          *catalog.Product
	propensity float64
	priority   float64
	window     *Window // set when the need moment is not reached yet
}

// Decide makes one decision and queues it for the decision log. It never
// fails: an unknown client or unreadable features give NO_OFFER with a
// reason. ctx bounds the feature read together with the feature budget.
func (e *Engine) Decide(ctx context.Context, req Request) Decision {
	now := e.deps.Now().UTC()
	sc := e.scoring.Load()
	d := Decision{ID: newID(), At: now, ModelVersion: sc.bundle.Version()}
	defer e.record(&d, &req)

	fctx, cancel := context.WithTimeout(ctx, e.cfg.FeatureBudget)
	rec, err := e.deps.Features.Get(fctx, req.ClientID)
	cancel()
	switch {
	case errors.Is(err, features.ErrNotFound):
		d.Action = NoOffer
		d.Reasons = []Reason{{Code: ClientUnknown, Message: "The client is not known to Tact; no offer."}}
		return d
	case err != nil:
		d.Action = NoOffer
		d.Degraded = true
		d.Reasons = []Reason{{Code: FeaturesUnavailable, Message: "The client's data could not be read in time; no offer is made blind."}}
		return d
	}

	// Features served stale (the store failed) still decide, but the
	// answer says it was made without fresh data.
	d.Degraded = rec.Stale
	tier := tierOf(e.cfg.Tiers, &rec)
	d.Tier = tier.Name

	// The contact comes first: no pitch in a complaint or before a
	// service problem is solved.
	if r, blocked := contextBlock(&req, tier); blocked {
		d.Action = NoOffer
		d.Reasons = []Reason{r}
		return d
	}
	if !rec.Flag("consent_offers") {
		d.Action = NoOffer
		d.Reasons = []Reason{{Code: NoConsent, Message: "The client has not consented to receive offers."}}
		return d
	}
	if req.Channel.Outbound() && !rec.Flag("consent_outbound") {
		d.Action = NoOffer
		d.Reasons = []Reason{{Code: NoConsent, Message: fmt.Sprintf("The client has not consented to offers by %s.", channelWords(req.Channel))}}
		return d
	}

	var explained []Reason
	explain := func(r Reason) {
		if req.Explain {
			explained = append(explained, r)
		}
	}
	// Every product is scored in one pass over the client's features;
	// the buffer is on the stack for catalogs of up to 32 products.
	n := len(sc.bundle.Products())
	var buf [64]float64
	scores := buf[:0]
	if 2*n <= len(buf) {
		scores = buf[:2*n]
	} else {
		scores = make([]float64, 2*n)
	}
	sc.bundle.ScoreAll(&rec, scores[:n], scores[n:])

	var cands []candidate
	eligible := 0
	for i := range e.deps.Catalog.Products() {
		p := &e.deps.Catalog.Products()[i]
		if rec.Flag(p.HeldFeature) {
			explain(Reason{Code: AlreadyHeld, ProductID: p.ID, Message: "The client already holds " + p.Name + "."})
			continue
		}
		if !p.SoldOn(req.Channel) {
			explain(Reason{Code: ChannelNotSold, ProductID: p.ID, Message: p.Name + " is not sold by " + channelWords(req.Channel) + "."})
			continue
		}
		if why, ok := eligibleFor(p, &rec); !ok {
			explain(Reason{Code: NotEligible, ProductID: p.ID, Message: p.Name + ": " + why + "."})
			continue
		}
		eligible++
		prop := scores[sc.pos[i]]
		if prop < tier.MinPropensity {
			explain(Reason{Code: BelowTierBar, ProductID: p.ID, Message: fmt.Sprintf("%s: propensity %.2f is below the %s bar of %.2f.", p.Name, prop, tier.Name, tier.MinPropensity)})
			continue
		}
		cands = append(cands, candidate{p: p, propensity: prop, priority: prop * p.Value, window: needWindow(p, &rec, now, req.Channel)})
	}
	if len(cands) == 0 {
		d.Action = NoOffer
		if eligible == 0 {
			d.Reasons = []Reason{{Code: NoEligibleProduct, Message: "No product is eligible for the client on this channel."}}
		} else {
			d.Reasons = []Reason{{Code: BelowTierBar, Message: fmt.Sprintf("No eligible product is likely enough to be welcome (the %s bar is %.2f).", tier.Name, tier.MinPropensity)}}
		}
		d.Reasons = append(d.Reasons, explained...)
		return d
	}
	// Best first; ties broken by product id so that the order is stable.
	slices.SortFunc(cands, func(a, b candidate) int {
		if c := cmp.Compare(b.priority, a.priority); c != 0 {
			return c
		}
		return strings.Compare(a.p.ID, b.p.ID)
	})
	maxOffers := max(req.MaxOffers, 1)

	// Timing follows the best candidate: if its moment of need has not
	// come, the answer is "later, around then" rather than a lesser pitch.
	if best := cands[0]; best.window != nil {
		d.Action = OfferLater
		d.Later = best.window
		d.Offers = []Offer{e.offer(&best, 1, &rec)}
		days, _ := rec.Num(best.p.Need.DaysFeature)
		d.Reasons = []Reason{{Code: NeedNotYet, ProductID: best.p.ID, Message: fmt.Sprintf(
			"%s fits best (propensity %.2f), but %s in %d days; offer it from %s.",
			best.p.Name, best.propensity, best.p.Need.What, int(days), best.window.NotBefore.Format(time.DateOnly))}}
		for _, c := range cands[1:] {
			explain(Reason{Code: NeedNotYet, ProductID: c.p.ID, Message: c.p.Name + " ranks below " + best.p.Name + ", which is best offered later."})
		}
		d.Reasons = append(d.Reasons, explained...)
		return d
	}
	d.Action = OfferNow
	for i := range cands {
		c := &cands[i]
		if c.window != nil {
			explain(Reason{Code: NeedNotYet, ProductID: c.p.ID, Message: fmt.Sprintf("%s: %s later; not now.", c.p.Name, c.p.Need.What)})
			continue
		}
		if len(d.Offers) == maxOffers {
			explain(Reason{Code: HighPropensity, ProductID: c.p.ID, Message: fmt.Sprintf("%s clears the bar (propensity %.2f) but ranks below the offers made.", c.p.Name, c.propensity)})
			continue
		}
		d.Offers = append(d.Offers, e.offer(c, len(d.Offers)+1, &rec))
		d.Reasons = append(d.Reasons, Reason{Code: HighPropensity, ProductID: c.p.ID, Message: fmt.Sprintf(
			"%s: propensity %.2f clears the %s bar of %.2f; rank %d of %d eligible.",
			c.p.Name, c.propensity, tier.Name, tier.MinPropensity, len(d.Offers), eligible)})
	}
	d.Reasons = append(d.Reasons, explained...)
	return d
}

func (e *Engine) offer(c *candidate, rank int, rec *features.Record) Offer {
	return Offer{
		ProductID:     c.p.ID,
		Name:          c.p.Name,
		Propensity:    round(c.propensity, 6),
		Score:         round(c.priority, 4),
		Rank:          rank,
		TalkingPoints: talkingPoints(c.p.TalkingPoints, rec),
	}
}

func (e *Engine) record(d *Decision, req *Request) {
	rec := features.DecisionRecord{
		ID:           d.ID,
		ClientID:     req.ClientID,
		Channel:      string(req.Channel),
		Action:       d.Action.String(),
		Tier:         d.Tier,
		ModelVersion: d.ModelVersion,
		Degraded:     d.Degraded,
		At:           d.At,
	}
	for _, o := range d.Offers {
		rec.Products = append(rec.Products, o.ProductID)
	}
	e.deps.Log.Append(rec)
}

// contextBlock says whether the interaction itself rules out an offer.
func contextBlock(req *Request, tier *Tier) (Reason, bool) {
	resolved := req.Stage == StageResolved || req.Stage == StageWrapUp
	switch req.Reason {
	case ReasonComplaint:
		return Reason{Code: Complaint, Message: "The client is complaining: serve the complaint, make no offer."}, true
	case ReasonService:
		if resolved {
			return Reason{}, false
		}
		if tier.Protected {
			return Reason{Code: ProtectedTierServiceCall, Message: fmt.Sprintf("A %s client with a service need: solve the problem first; ask again once it is resolved.", tier.Name)}, true
		}
		return Reason{Code: CallStage, Message: "The client's problem is not solved yet; ask again once it is resolved."}, true
	}
	return Reason{}, false
}

// eligibleFor checks a product's rules against the client's features.
func eligibleFor(p *catalog.Product, rec *features.Record) (string, bool) {
	for _, r := range p.Requires {
		v, ok := rec.Num(r.Feature)
		if !ok || (r.Min != nil && v < *r.Min) || (r.Max != nil && v > *r.Max) {
			return r.Why, false
		}
	}
	return "", true
}

// needWindow returns when to offer a product whose need moment is still
// ahead, or nil when it may be offered now.
func needWindow(p *catalog.Product, rec *features.Record, now time.Time, ch catalog.Channel) *Window {
	if p.Need == nil {
		return nil
	}
	days, ok := rec.Num(p.Need.DaysFeature)
	if !ok || days <= float64(p.Need.LeadDays) {
		return nil
	}
	moment := now.Add(time.Duration(days * float64(24*time.Hour)))
	w := &Window{
		NotBefore: startOfDay(moment.AddDate(0, 0, -p.Need.LeadDays)),
		NotAfter:  startOfDay(moment.AddDate(0, 0, p.Need.LagDays+1)),
		Channel:   ch,
	}
	// A contact the client started cannot be repeated at will: suggest an
	// outbound call when the client allows it and the product sells there.
	if !ch.Outbound() && rec.Flag("consent_outbound") && p.SoldOn(catalog.PhoneOutbound) {
		w.Channel = catalog.PhoneOutbound
	}
	return w
}

func startOfDay(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// talkingPoints fills {feature} placeholders; a sentence that names a
// missing feature is skipped.
func talkingPoints(templates []string, rec *features.Record) []string {
	var out []string
next:
	for _, t := range templates {
		var b strings.Builder
		for {
			i := strings.IndexByte(t, '{')
			if i < 0 {
				b.WriteString(t)
				break
			}
			j := strings.IndexByte(t[i:], '}')
			if j < 0 {
				b.WriteString(t)
				break
			}
			v, ok := rec.Values[t[i+1:i+j]]
			if !ok {
				continue next
			}
			b.WriteString(t[:i])
			b.WriteString(v.Format())
			t = t[i+j+1:]
		}
		out = append(out, b.String())
	}
	return out
}

func channelWords(ch catalog.Channel) string {
	return strings.ReplaceAll(string(ch), "_", " ")
}

func round(x float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(x*p) / p
}

func newID() string {
	// uuid.NewV7 fails only when the system's random source fails.
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}
