package decision

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model"
	"github.com/tact-nba/tact/model/catalog"
	"github.com/tact-nba/tact/model/experiment"
	"github.com/tact-nba/tact/model/load"
	"github.com/tact-nba/tact/model/policy"
)

// FeatureReader reads one client's features; it returns features.ErrNotFound
// for an unknown client.
type FeatureReader interface {
	Get(ctx context.Context, clientID string) (features.Record, error)
}

// DecisionRecorder takes decision records: Append without blocking (false
// means the record was dropped), Commit waiting until the record is
// durable.
type DecisionRecorder interface {
	Append(rec features.DecisionRecord) bool
	Commit(ctx context.Context, rec features.DecisionRecord) error
	Flush(ctx context.Context) error
}

// OutcomeStore looks up logged decisions and stores outcomes durably.
type OutcomeStore interface {
	GetDecision(ctx context.Context, id string) (features.DecisionRecord, error)
	PutOutcome(ctx context.Context, o *features.OutcomeRecord) (duplicate bool, err error)
}

// Config tunes the engine.
type Config struct {
	// FeatureBudget bounds the feature and contact-history reads; past it
	// the answer is a degraded NO_OFFER. 0 means 50 ms.
	FeatureBudget time.Duration
	// DurableOffers makes an offer's decision durable in the decision log
	// (Commit) before it is answered, so that its outcome is taken after a
	// crash. Set it when the contact history does not keep the decision
	// itself (the embedded store); without it the decision goes with the
	// reservation (Reservation.Decision), which Redis keeps.
	DurableOffers bool
	// CommitBudget bounds that wait; past it the answer is a degraded
	// NO_OFFER. 0 means 1 s.
	CommitBudget time.Duration
	// LearningPrior is, with a Learner, the propensity a product without a
	// model in the bundle starts from. 0 means 0.05.
	LearningPrior float64
	// Exploration is the share of decisions, among those with two or more
	// products to offer now, whose first offer is drawn at random from
	// the products that passed every gate instead of being the best; 0:
	// never. ExplorationRamp is the share added for a product with no
	// evidence, falling to nothing as its evidence (the Learner's) reaches
	// ExplorationMaturity outcomes (0 means 500); without a Learner every
	// product counts as mature. Their sum is at most 1. See explore.
	Exploration, ExplorationRamp, ExplorationMaturity float64
	// Rand returns a number in [0, 1) for the explorations; nil means
	// math/rand/v2's.
	Rand func() float64
	// NoDetail leaves the decision's detail (the contact, every
	// product's propensity, gate and choice probability, the features as
	// scored) out of its log record: training from the log and off-policy
	// evaluation need it; it costs about 1 KB and a quarter of a
	// decision's CPU in the engine.
	NoDetail bool
	// DetailShare, when below 1, keeps the detail of that share of the
	// decisions only, chosen by their id (so independently of what was
	// decided: training and off-policy evaluation on the share are
	// unbiased). 0 means 1.
	DetailShare float64
}

// Learner adjusts each product's propensity by what the outcomes taught
// it (see model/adaptive), from a prior: the bundle's propensity, or the
// configured one for a product the bundle has no model for.
type Learner interface {
	Score(product string, f model.Features, prior float64) float64
	Learn(product string, f model.Features, prior float64, accepted bool)
	// Evidence is how many outcomes the product's model learned from.
	Evidence(product string) float64
}

// Deps are what the engine works with. All are required but Now.
type Deps struct {
	Catalog *catalog.Catalog
	Policy  *policy.Policy
	// Bundle scores the products; SetBundle replaces it while serving.
	Bundle   *model.Bundle
	Features FeatureReader
	History  features.ContactHistory
	Load     *load.Board
	Log      DecisionRecorder
	Outcomes OutcomeStore
	// Learner, when set, learns from each accepted or declined offer and
	// adjusts the propensities (learning: adaptive); nil: off.
	Learner Learner
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Tracer makes the decision's child spans (experiments, features,
	// history, scoring, policy, reservation); nil means none. Spans carry
	// no client id and no feature.
	Tracer trace.Tracer
}

// Engine makes decisions. It is safe for concurrent use.
type Engine struct {
	cfg   Config
	deps  Deps
	mu    sync.Mutex // serialises the setters
	state atomic.Pointer[state]
}

// state is what a decision works from, swapped as one: the catalog, the
// policy, and the bundle with each catalog product's position in it.
type state struct {
	cat    *catalog.Catalog
	pol    *policy.Policy
	bundle *model.Bundle
	pos    []int // per catalog product (catalog order); -1: no model (learning only)
	// learning: a Learner adjusts the propensities
	learning bool
	// exps are the experiments running, nil when none; variantPos holds
	// the positions for each bundle a variant names.
	exps       *experiment.Set
	variantPos map[*model.Bundle][]int
}

// New checks the configuration and dependencies and returns an engine.
func New(cfg Config, deps Deps) (*Engine, error) {
	if cfg.FeatureBudget == 0 {
		cfg.FeatureBudget = 50 * time.Millisecond
	}
	if cfg.CommitBudget == 0 {
		cfg.CommitBudget = time.Second
	}
	if cfg.LearningPrior == 0 {
		cfg.LearningPrior = 0.05
	}
	if cfg.DetailShare == 0 {
		cfg.DetailShare = 1
	}
	if cfg.DetailShare < 0 || cfg.DetailShare > 1 {
		return nil, fmt.Errorf("decision: detail share %g is not a share (0 to 1)", cfg.DetailShare)
	}
	if cfg.ExplorationMaturity == 0 {
		cfg.ExplorationMaturity = 500
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.FeatureBudget < 0 {
		return nil, errors.New("decision: feature budget must be positive")
	}
	if cfg.Exploration < 0 || cfg.ExplorationRamp < 0 || cfg.Exploration+cfg.ExplorationRamp > 1 || cfg.ExplorationMaturity < 0 {
		return nil, fmt.Errorf("decision: exploration %g and its ramp %g must be shares that sum to at most 1, over a positive maturity", cfg.Exploration, cfg.ExplorationRamp)
	}
	switch {
	case deps.Catalog == nil:
		return nil, errors.New("decision: no catalog")
	case deps.Policy == nil:
		return nil, errors.New("decision: no policy")
	case deps.Bundle == nil:
		return nil, errors.New("decision: no model bundle")
	case deps.Features == nil:
		return nil, errors.New("decision: no feature reader")
	case deps.History == nil:
		return nil, errors.New("decision: no contact history")
	case deps.Load == nil:
		return nil, errors.New("decision: no load board")
	case deps.Log == nil:
		return nil, errors.New("decision: no decision log")
	case deps.Outcomes == nil:
		return nil, errors.New("decision: no outcome store")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Tracer == nil {
		deps.Tracer = noTracer
	}
	e := &Engine{cfg: cfg, deps: deps}
	st, err := newState(deps.Catalog, deps.Policy, deps.Bundle, deps.Learner != nil)
	if err != nil {
		return nil, err
	}
	e.state.Store(st)
	return e, nil
}

func newState(cat *catalog.Catalog, pol *policy.Policy, b *model.Bundle, learning bool) (*state, error) {
	pos, err := positions(cat, b, learning)
	if err != nil {
		return nil, err
	}
	return &state{cat: cat, pol: pol, bundle: b, pos: pos, learning: learning}, nil
}

// Positions returns where each catalog product (in catalog order) is
// scored in the bundle, or an error naming the products it has no model
// for.
func Positions(cat *catalog.Catalog, b *model.Bundle) ([]int, error) { return positions(cat, b, false) }

// positions is Positions; with learning, a product without a model is -1
// (the learner scores it from its prior).
func positions(cat *catalog.Catalog, b *model.Bundle, learning bool) ([]int, error) {
	pos := make([]int, len(cat.Products()))
	var missing []string
	for i, p := range cat.Products() {
		j, ok := b.Index(p.ID)
		if !ok {
			missing = append(missing, p.ID)
			j = -1
		}
		pos[i] = j
	}
	if len(missing) > 0 && !learning {
		return nil, fmt.Errorf("decision: bundle %s has no model for %s", b.Version(), strings.Join(missing, ", "))
	}
	return pos, nil
}

// withExperiments returns st running exps (nil: none), once each bundle a
// variant names scores every catalog product.
func (st *state) withExperiments(exps *experiment.Set) (*state, error) {
	n := *st
	n.exps, n.variantPos = exps, nil
	if exps == nil {
		return &n, nil
	}
	n.variantPos = map[*model.Bundle][]int{}
	for _, b := range exps.Bundles() {
		pos, err := positions(st.cat, b, st.learning)
		if err != nil {
			return nil, err
		}
		n.variantPos[b] = pos
	}
	return &n, nil
}

// SetExperiments runs exps (nil: none) from the next decision on. The
// set must have been checked against the policy in use.
func (e *Engine) SetExperiments(exps *experiment.Set) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	st, err := e.state.Load().withExperiments(exps)
	if err != nil {
		return err
	}
	e.state.Store(st)
	return nil
}

// Experiments returns the experiments running, nil when none.
func (e *Engine) Experiments() *experiment.Set { return e.state.Load().exps }

// SetBundle makes b the bundle that scores from the next decision on, once
// it has checked that b has a model for every catalog product. Decisions
// under way finish with the bundle they started with.
func (e *Engine) SetBundle(b *model.Bundle) error {
	if b == nil {
		return errors.New("decision: no model bundle")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.state.Load()
	st, err := newState(old.cat, old.pol, b, old.learning)
	if err != nil {
		return err
	}
	if st, err = st.withExperiments(old.exps); err != nil {
		return err
	}
	e.state.Store(st)
	return nil
}

// SetPolicy makes the catalog, policy and experiments (checked against
// that policy; nil: none) those of the next decision on, once it has
// checked that the bundles scores every product.
func (e *Engine) SetPolicy(cat *catalog.Catalog, pol *policy.Policy, exps *experiment.Set) error {
	if cat == nil || pol == nil {
		return errors.New("decision: no catalog or policy")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	st, err := newState(cat, pol, e.state.Load().bundle, e.state.Load().learning)
	if err != nil {
		return err
	}
	if st, err = st.withExperiments(exps); err != nil {
		return err
	}
	e.state.Store(st)
	return nil
}

// Bundle returns the bundle in use.
func (e *Engine) Bundle() *model.Bundle { return e.state.Load().bundle }

// Catalog returns the catalog the engine offers from.
func (e *Engine) Catalog() *catalog.Catalog { return e.state.Load().cat }

// Policy returns the policy in use.
func (e *Engine) Policy() *policy.Policy { return e.state.Load().pol }

// candidate is a catalog product being weighed, with its score.
type candidate struct {
	p          *catalog.Product
	idx        int // in catalog order
	propensity float64
	priority   float64
	value      float64 // priority per unit of propensity
	cost       float64 // the pitch's handling cost
	gate       string  // the gate that stopped it (or "timing"), "" none
	window     *Window // set when the moment of need is not reached yet
	need       string  // what the window waits for
}

var noTracer = noop.NewTracerProvider().Tracer("")

// historyDays is how far back a decision reads the contact history: the
// longest cap window, cool-down (catalog.MaxCoolDownDays) or memory of an
// acceptance.
const historyDays = catalog.MaxCoolDownDays

// Decide makes one decision and queues it for the decision log. It never
// fails: an unknown client or unreadable data give NO_OFFER with a reason.
// ctx bounds the reads together with the feature budget.
func (e *Engine) Decide(ctx context.Context, req Request) Decision {
	now := e.deps.Now().UTC()
	st := e.state.Load()
	d := Decision{ID: newID(), At: now, ModelVersion: st.bundle.Version()}
	defer e.record(&d, &req)
	noOffer := func(r Reason) Decision {
		d.Action = NoOffer
		d.Reasons = append([]Reason{r}, d.Reasons...)
		return d
	}

	rctx, cancel := context.WithTimeout(ctx, e.cfg.FeatureBudget)
	defer cancel()
	// Child spans only under a span that records: a decision outside a
	// sampled trace spends nothing on them.
	tr := e.deps.Tracer
	if !trace.SpanFromContext(ctx).IsRecording() {
		tr = noTracer
	}
	_, sp := tr.Start(ctx, "features.read")
	rec, err := e.deps.Features.Get(rctx, req.ClientID)
	sp.End()
	switch {
	case errors.Is(err, features.ErrNotFound):
		return noOffer(Reason{Code: ClientUnknown, Message: "The client is not known to Tact; no offer."})
	case err != nil:
		d.Degraded = true
		return noOffer(Reason{Code: FeaturesUnavailable, Message: "The client's data could not be read in time; no offer is made blind."})
	}
	// Features served stale (the store failed) still decide, but the
	// answer says it was made without fresh data.
	d.Degraded = rec.Stale
	pol := st.pol
	tier := pol.TierOf(&rec)
	d.Tier = tier.Name
	bundle, pos := st.bundle, st.pos
	if st.exps != nil {
		// The client's variants, by the tier of the policy in use; a
		// variant may change the policy's parameters and the model.
		_, sp := tr.Start(ctx, "experiments")
		exps, res, err := st.exps.Assign(ctx, experiment.Attributes{ClientID: req.ClientID, Tier: tier.Name,
			Channel: string(req.Channel), Queue: req.Queue, Reason: req.Reason.String(), Stage: req.Stage.String()})
		sp.End()
		if err != nil {
			d.Degraded = true
			return noOffer(Reason{Code: FeaturesUnavailable, Message: "The client's experiments could not be evaluated; no offer."})
		}
		d.Exposures = exps
		if res != nil && res.Policy != nil {
			pol = res.Policy
			tier = pol.Tier(tier.Name)
		}
		if res != nil && res.Bundle != nil {
			bundle, pos = res.Bundle, st.variantPos[res.Bundle]
			d.ModelVersion = bundle.Version()
		}
	}

	// The contact comes first.
	if r, blocked := contextBlock(&req, tier); blocked {
		return noOffer(r)
	}
	if !rec.Flag("consent_offers") {
		return noOffer(Reason{Code: NoConsent, Message: "The client has not consented to receive offers."})
	}
	if req.Channel.Outbound() && !rec.Flag("consent_outbound") {
		return noOffer(Reason{Code: NoConsent, Message: fmt.Sprintf("The client has not consented to offers by %s.", channelWords(req.Channel))})
	}
	var ls load.Status
	if req.Queue != "" {
		ls = e.deps.Load.Status(req.Queue, now, &pol.Load)
		busy := ls.Busy || (ls.Source == load.Unknown && tier.Protected)
		if busy && !tier.PitchWhenBusy {
			return noOffer(Reason{Code: BusyPeriod, Message: busyWords(req.Queue, tier, &ls)})
		}
	}
	_, sp = tr.Start(ctx, "history.read")
	contacts, err := e.deps.History.Contacts(rctx, req.ClientID, now.AddDate(0, 0, -historyDays))
	sp.End()
	if err != nil {
		d.Degraded = true
		return noOffer(Reason{Code: HistoryUnavailable, Message: "The client's contact history could not be read in time; no offer is made without it."})
	}

	// Every product is scored in one pass over the client's features;
	// the buffer is on the stack for catalogs of up to 32 products.
	n := len(bundle.Products())
	var buf [64]float64
	scores := buf[:0]
	if 2*n <= len(buf) {
		scores = buf[:2*n]
	} else {
		scores = make([]float64, 2*n)
	}
	_, sp = tr.Start(ctx, "score")
	bundle.ScoreAll(&rec, scores[:n], scores[n:])
	sp.End()
	_, sp = tr.Start(ctx, "policy")

	g := gates{req: &req, rec: &rec, tier: tier, pol: pol, contacts: contacts, now: now, pressure: ls.Pressure,
		verdicts: st.cat.Verdicts(&rec)}
	products := st.cat.Products()
	// Each catalog product's propensity: the bundle's, adjusted by the
	// learner when learning.
	var propBuf [32]float64
	props := propBuf[:0]
	if len(products) > len(propBuf) {
		props = make([]float64, 0, len(products))
	}
	for i := range products {
		p := e.cfg.LearningPrior
		if pos[i] >= 0 {
			p = scores[pos[i]]
		}
		if e.deps.Learner != nil {
			p = e.deps.Learner.Score(products[i].ID, &rec, p)
		}
		props = append(props, p)
	}
	if req.Explain {
		d.Candidates = make([]Candidate, 0, len(products))
	}
	if !req.DryRun && !e.cfg.NoDetail && (e.cfg.DetailShare >= 1 || idShare(d.ID) < e.cfg.DetailShare) {
		// What the decision weighed, for training and off-policy
		// evaluation.
		d.detail = &features.DecisionDetail{Reason: req.Reason.String(), Stage: req.Stage.String(), Sentiment: req.Sentiment.String(),
			Queue: req.Queue, QueueState: queueState(req.Queue, &ls), Pressure: ls.Pressure,
			Candidates: make([]features.CandidateRecord, len(products)), Features: features.PackFeatures(&rec)}
	}
	cands := make([]candidate, 0, len(products))
	eligible := 0
	// The eligible product closest to an offer (highest propensity) that
	// failed a gate: its reason is the decision's when nothing is left.
	stopped := -1
	for i := range products {
		p := &products[i]
		c := candidate{p: p, idx: i, propensity: props[i]}
		var ex *Candidate
		if req.Explain {
			d.Candidates = append(d.Candidates, Candidate{ProductID: p.ID, Propensity: round(c.propensity, 6), Value: p.Value})
			ex = &d.Candidates[len(d.Candidates)-1]
		}
		ok, wasEligible := g.run(i, &c, ex)
		if d.detail != nil {
			d.detail.Candidates[i] = features.CandidateRecord{Product: p.ID, Propensity: c.propensity, Value: c.value, Cost: c.cost, Gate: c.gate}
		}
		if wasEligible {
			eligible++
		}
		if ok {
			cands = append(cands, c)
		} else if wasEligible && (stopped < 0 || c.propensity > props[stopped]) {
			stopped = i
		}
	}
	sp.End()
	if len(cands) == 0 {
		if eligible == 0 {
			return noOffer(Reason{Code: NoEligibleProduct, Message: "No product is eligible for the client on this channel."})
		}
		// Run the product again to have the gate's reason (not kept
		// unless explaining).
		var ex Candidate
		c := candidate{p: &products[stopped], propensity: props[stopped]}
		g.run(stopped, &c, &ex)
		return noOffer(ex.Gates[len(ex.Gates)-1].Reason)
	}
	// Best first; ties broken by product id so that the order is stable.
	slices.SortFunc(cands, func(a, b candidate) int {
		if c := cmp.Compare(b.priority, a.priority); c != 0 {
			return c
		}
		return strings.Compare(a.p.ID, b.p.ID)
	})

	// The products that can be offered now, best first.
	var nowBuf [32]*candidate
	nowCands := nowBuf[:0]
	for i := range cands {
		if cands[i].window == nil {
			nowCands = append(nowCands, &cands[i])
		}
	}
	// Timing follows the best candidate: if its moment of need has not
	// come, the answer is "later, around then", and, when another product
	// clears every gate now and is worth more than the share of the later
	// offer's value that pitching now costs it (later_fatigue), that one
	// now as well: the rice merchant sells what is needed today.
	var later Reason
	if best := cands[0]; best.window != nil {
		d.Later = best.window
		e.placeWindow(d.Later, &rec, pol)
		laterOffer := offer(&best, 1, &rec)
		later = Reason{Code: NeedNotYet, ProductID: best.p.ID, Message: fmt.Sprintf(
			"%s fits best (propensity %.2f), but %s: offer it from %s%s.",
			best.p.Name, best.propensity, best.need, d.Later.NotBefore.Format(time.DateOnly), hoursWords(d.Later))}
		d.LaterOffer = &laterOffer
		// By expected value: the offer now must be worth more than what
		// it costs the later one.
		if len(nowCands) == 0 || nowCands[0].priority <= pol.Arbitration.LaterFatigue*best.priority {
			return offerLater(&d, later)
		}
	}
	maxOffers := max(req.MaxOffers, 1)
	first, prob := e.explore(nowCands, d.detail)
	want := []*candidate{nowCands[first]}
	for i, c := range nowCands {
		if i != first && len(want) < maxOffers {
			want = append(want, c)
		}
	}
	ids := make([]string, len(want))
	for i, c := range want {
		ids[i] = c.p.ID
	}
	_, sp = tr.Start(ctx, "history.reserve")
	r := features.Reservation{
		ClientID: req.ClientID, Channel: string(req.Channel), DecisionID: d.ID,
		Products: ids, At: now, Caps: tier.CapsFor(req.Channel),
	}
	if !e.cfg.DurableOffers {
		// The decision's record goes with the reservation, so that a
		// store shared by replicas keeps it for the offers' outcomes.
		r.Decision = &features.DecisionRecord{ID: d.ID, ClientID: req.ClientID, Channel: string(req.Channel), Action: OfferNow.String(),
			Tier: d.Tier, ModelVersion: d.ModelVersion, At: d.At, Exposures: d.Exposures, Reason: reasonNames[HighPropensity]}
	}
	var res features.Reserved
	if req.DryRun {
		res = features.Preview(contacts, r)
	} else {
		res, err = e.deps.History.Reserve(rctx, r)
	}
	sp.End()
	if err != nil {
		d.Degraded = true
		return noOffer(Reason{Code: HistoryUnavailable, Message: "The client's contact history could not be updated in time; no offer is made."})
	}
	got := res.N
	if got == 0 {
		if d.LaterOffer != nil {
			// The later offer stands without the one now, and the
			// answer says why that one is not offered now: it passed
			// every gate of its own.
			dl := offerLater(&d, later)
			c := capWords(tier, req.Channel, res)
			c.ProductID, c.Message = want[0].p.ID, want[0].p.Name+" is not offered now. "+c.Message
			dl.Reasons = append(dl.Reasons, c)
			return dl
		}
		return noOffer(capWords(tier, req.Channel, res))
	}
	d.Action = OfferNow
	for i, c := range want[:got] {
		d.Offers = append(d.Offers, offer(c, i+1, &rec))
		msg := fmt.Sprintf("%s: propensity %.2f clears the %s bar of %.2f; rank %d of %d eligible.",
			c.p.Name, c.propensity, tier.Name, tier.MinPropensity, i+1, eligible)
		if i == 0 && first != 0 {
			msg = fmt.Sprintf("%s: propensity %.2f clears the %s bar of %.2f; tried ahead of %s to learn how clients take it (exploration, chance %.2f).",
				c.p.Name, c.propensity, tier.Name, tier.MinPropensity, nowCands[0].p.Name, prob)
		}
		d.Reasons = append(d.Reasons, Reason{Code: HighPropensity, ProductID: c.p.ID, Message: msg})
	}
	if d.LaterOffer != nil {
		d.Reasons = append(d.Reasons, later)
	}
	if got < len(want) {
		d.Reasons = append(d.Reasons, Reason{Code: CapReached, Message: fmt.Sprintf(
			"Only %d of %d offers fit the client's %s cap on %s.", got, len(want), tier.Name, channelWords(req.Channel))})
	}
	if e.cfg.DurableOffers && !req.DryRun {
		// The offer is given only once its decision is on disk, so that
		// its outcome is taken even after a crash.
		cctx, cancel := context.WithTimeout(ctx, e.cfg.CommitBudget)
		err := e.deps.Log.Commit(cctx, e.logRecord(&d, &req))
		cancel()
		d.logged = true
		if err != nil {
			// The log withdraws the record: it is written as a degraded
			// no-offer, and its reserved offers are dropped.
			d.Offers, d.Reasons, d.Degraded = nil, nil, true
			return noOffer(Reason{Code: HistoryUnavailable, Message: "The decision could not be recorded in time; no offer is made."})
		}
	}
	return d
}

// offerLater makes d the answer "later": its later offer, with reason r.
func offerLater(d *Decision, r Reason) Decision {
	d.Action = OfferLater
	d.Offers = []Offer{*d.LaterOffer}
	d.LaterOffer = nil
	d.Reasons = []Reason{r}
	return *d
}

// explore chooses which of the products that can be offered now (best
// first) is offered first, and records in detail the probability of each.
//
// Exploration draws the first offer at random, now and then, among the
// products that passed every gate (so it never breaks one: not the
// eligibility, consent, contact, busy, cap, cool-down or tier bar gates).
// It is an epsilon-greedy choice with a maturity ramp rather than Thompson
// sampling, because off-policy evaluation needs the exact probability of
// each choice, and Thompson sampling's has no closed form: product i (not
// the best) is chosen with probability
//
//	(Exploration + ExplorationRamp * (1 - min(1, evidence_i / maturity))) / K
//
// over the K products offerable now, and the best with what is left. A new
// product is so tried often until its model has evidence, then at the
// floor rate.
func (e *Engine) explore(now []*candidate, detail *features.DecisionDetail) (first int, prob float64) {
	k := len(now)
	if k < 2 || (e.cfg.Exploration == 0 && e.cfg.ExplorationRamp == 0) {
		// No choice to draw: the best, for sure.
		if detail != nil {
			detail.Candidates[now[0].idx].Prob = 1
		}
		return 0, 1
	}
	var buf [32]float64
	probs := buf[:0]
	if k > len(buf) {
		probs = make([]float64, 0, k)
	}
	probs = append(probs, 0)
	rest := 1.0
	for _, c := range now[1:] {
		m := 1.0
		if e.deps.Learner != nil {
			m = min(1, e.deps.Learner.Evidence(c.p.ID)/e.cfg.ExplorationMaturity)
		}
		q := (e.cfg.Exploration + e.cfg.ExplorationRamp*(1-m)) / float64(k)
		probs = append(probs, q)
		rest -= q
	}
	probs[0] = rest
	if rest < 1 {
		u := e.cfg.Rand()
		for i := k - 1; i > 0; i-- {
			if u < probs[i] {
				first = i
				break
			}
			u -= probs[i]
		}
	}
	if detail != nil {
		for i, c := range now {
			detail.Candidates[c.idx].Prob = probs[i]
		}
	}
	return first, probs[first]
}

// idShare maps a decision id to [0, 1), uniformly: FNV-1a of the id (no
// allocation: the hash stays on the stack).
func idShare(id string) float64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	return float64(h.Sum64()>>11) / (1 << 53)
}

// queueState names the queue's state for the decision's detail.
func queueState(queue string, ls *load.Status) string {
	switch {
	case queue == "":
		return ""
	case ls.Source == load.Unknown:
		return "unknown"
	case ls.Source == load.FromSchedule && ls.Busy:
		return "busy_by_schedule"
	case ls.Source == load.FromSchedule:
		return "calm_by_schedule"
	case ls.Busy:
		return "busy"
	default:
		return "calm"
	}
}

// gates runs a product through the policy's checks.
type gates struct {
	req      *Request
	rec      *features.Record
	tier     *policy.Tier
	pol      *policy.Policy
	contacts []features.Contact
	now      time.Time
	pressure float64
	verdicts []string // per product: "" when eligible, else why not
}

// run checks one product, recording each gate in ex when explaining. It
// returns whether the product passed every gate, and whether it was
// eligible (held, channel, rules) at all.
func (g *gates) run(i int, c *candidate, ex *Candidate) (passed, eligible bool) {
	p := c.p
	gate := func(name string, ok bool, r func() Reason) bool {
		if !ok {
			c.gate = name
		}
		if ex != nil {
			gt := Gate{Name: name, Passed: ok}
			if !ok {
				gt.Reason = r()
			}
			ex.Gates = append(ex.Gates, gt)
		}
		return ok
	}
	if !gate("not_held", !g.rec.Flag(p.HeldFeature), func() Reason {
		return Reason{Code: AlreadyHeld, ProductID: p.ID, Message: "The client already holds " + p.Name + "."}
	}) {
		return false, false
	}
	if !gate("channel", p.SoldOn(g.req.Channel), func() Reason {
		return Reason{Code: ChannelNotSold, ProductID: p.ID, Message: p.Name + " is not sold by " + channelWords(g.req.Channel) + "."}
	}) {
		return false, false
	}
	why := g.verdicts[i]
	if !gate("eligibility", why == "", func() Reason {
		return Reason{Code: NotEligible, ProductID: p.ID, Message: p.Name + ": " + why + "."}
	}) {
		return false, false
	}
	accepted := lastContact(g.contacts, p.ID, features.ContactAccepted)
	if !gate("not_accepted", accepted.IsZero(), func() Reason {
		return Reason{Code: RecentlyAccepted, ProductID: p.ID, Message: fmt.Sprintf("The client accepted %s on %s; it is not offered again.", p.Name, accepted.Format(time.DateOnly))}
	}) {
		return false, true
	}
	coolDays := max(p.CoolDownDays, g.tier.CoolDownDays)
	declined := lastContact(g.contacts, p.ID, features.ContactDeclined)
	until := declined.AddDate(0, 0, coolDays)
	if !gate("cool_down", declined.IsZero() || !g.now.Before(until), func() Reason {
		return Reason{Code: CoolDown, ProductID: p.ID, Message: fmt.Sprintf("The client declined %s on %s; not again before %s (%d-day cool-down).", p.Name, declined.Format(time.DateOnly), until.Format(time.DateOnly), coolDays)}
	}) {
		return false, true
	}
	if !gate("tier_bar", c.propensity >= g.tier.MinPropensity, func() Reason {
		return Reason{Code: BelowTierBar, ProductID: p.ID, Message: fmt.Sprintf("%s: propensity %.2f is below the %s bar of %.2f.", p.Name, c.propensity, g.tier.Name, g.tier.MinPropensity)}
	}) {
		return false, true
	}
	a := &g.pol.Arbitration
	stage := g.req.Stage.String()
	c.value = p.Value * a.Weight(g.req.Channel, stage) * a.Lever(p.ID)
	value := c.propensity * c.value
	cost := a.Cost(p.HandlingSeconds, g.pressure)
	c.priority, c.cost = value-cost, cost
	if ex != nil {
		ex.Priority = round(c.priority, 4)
	}
	if !gate("worth_the_time", c.priority > 0, func() Reason {
		return Reason{Code: NotWorthCost, ProductID: p.ID, Message: fmt.Sprintf("%s: expected value %.2f does not cover the %.0f s of handling time at the current load (cost %.2f).", p.Name, value, p.HandlingSeconds, cost)}
	}) {
		return false, true
	}
	c.window, c.need = timing(p, g.rec, g.now, g.req.Channel, g.pol.Load.Location())
	gate("timing", c.window == nil, func() Reason {
		return Reason{Code: NeedNotYet, ProductID: p.ID, Message: fmt.Sprintf("%s: %s; offer it from %s.", p.Name, c.need, c.window.NotBefore.Format(time.DateOnly))}
	})
	// A product waiting for its moment is still a candidate: it may make
	// the answer OFFER_LATER.
	return true, true
}

// lastContact returns the time of the client's latest contact of a kind
// for a product, or the zero time.
func lastContact(cs []features.Contact, productID, kind string) time.Time {
	var t time.Time
	for i := range cs {
		if cs[i].Kind == kind && cs[i].ProductID == productID && cs[i].At.After(t) {
			t = cs[i].At
		}
	}
	return t
}

func offer(c *candidate, rank int, rec *features.Record) Offer {
	return Offer{
		ProductID:     c.p.ID,
		Name:          c.p.Name,
		Propensity:    round(c.propensity, 6),
		Score:         round(c.priority, 4),
		Rank:          rank,
		TalkingPoints: talkingPoints(c.p.TalkingPoints, rec),
	}
}

// record appends the decision to the log, unless it was committed or is
// a dry run.
func (e *Engine) record(d *Decision, req *Request) {
	if d.logged || req.DryRun {
		return
	}
	e.deps.Log.Append(e.logRecord(d, req))
}

// logRecord is the decision as the log keeps it.
func (e *Engine) logRecord(d *Decision, req *Request) features.DecisionRecord {
	rec := features.DecisionRecord{
		ID:           d.ID,
		ClientID:     req.ClientID,
		Channel:      string(req.Channel),
		Action:       d.Action.String(),
		Tier:         d.Tier,
		ModelVersion: d.ModelVersion,
		Degraded:     d.Degraded,
		At:           d.At,
		Exposures:    d.Exposures,
		Detail:       d.detail,
	}
	for _, o := range d.Offers {
		rec.Products = append(rec.Products, o.ProductID)
	}
	rec.Reason = d.MainReason()
	return rec
}

// MainReason is the name of the decision's main reason code (the first
// not about one product, else the first), e.g. "busy_period"; "" when it
// has none.
func (d *Decision) MainReason() string {
	for _, r := range d.Reasons {
		if r.ProductID == "" {
			return reasonNames[r.Code]
		}
	}
	if len(d.Reasons) > 0 {
		return reasonNames[d.Reasons[0].Code]
	}
	return ""
}

// contextBlock says whether the interaction itself rules out an offer.
func contextBlock(req *Request, tier *policy.Tier) (Reason, bool) {
	if req.Sentiment == SentimentNegative {
		return Reason{Code: NegativeSentiment, Message: "The client is upset: serve them, make no offer."}, true
	}
	if req.Reason == ReasonComplaint {
		return Reason{Code: Complaint, Message: "The client is complaining: serve the complaint, make no offer."}, true
	}
	if tier.Allows(req.Reason.String(), req.Stage.String()) {
		return Reason{}, false
	}
	resolved := req.Stage == StageResolved || req.Stage == StageWrapUp
	if req.Reason == ReasonService && !resolved {
		if tier.Protected {
			return Reason{Code: ProtectedTierServiceCall, Message: fmt.Sprintf("A %s client with a service need: solve the problem first; ask again once it is resolved.", tier.Name)}, true
		}
		return Reason{Code: CallStage, Message: "The client's problem is not solved yet; ask again once it is resolved."}, true
	}
	return Reason{Code: CallStage, Message: fmt.Sprintf("The policy allows no pitch to a %s client in this contact (reason %s, stage %s).", tier.Name, req.Reason, req.Stage)}, true
}

func busyWords(queue string, tier *policy.Tier, ls *load.Status) string {
	who := "a " + tier.Name + " client"
	switch ls.Source {
	case load.FromFeed:
		return fmt.Sprintf("Queue %s is busy (%s): no pitch to %s now.", queue, ls.Report.Describe(), who)
	case load.FromSchedule:
		return fmt.Sprintf("Queue %s is in a scheduled busy period (no fresh load report): no pitch to %s now.", queue, who)
	default:
		return fmt.Sprintf("Queue %s has no fresh load report and no schedule: %s is protected as in a busy period.", queue, who)
	}
}

// capWords words a cap refusal from what Reserve counted.
func capWords(tier *policy.Tier, ch catalog.Channel, res features.Reserved) Reason {
	if res.Limit.Window > 0 {
		// The commonest answer for a frequent caller: built without
		// fmt (Sprintf was 2% of a decision's CPU).
		offers := " offers by "
		if res.Used == 1 {
			offers = " offer by "
		}
		return Reason{Code: CapReached, Message: "The client has had " + strconv.Itoa(res.Used) + offers + channelWords(ch) +
			" in " + strconv.Itoa(int(res.Limit.Window.Hours()/24)) + " days, the most a " + tier.Name + " client gets."}
	}
	return Reason{Code: CapReached, Message: "The client's " + tier.Name + " cap on " + channelWords(ch) + " is reached."}
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
			v, ok := rec.Value(t[i+1 : i+j])
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

// Decision ids draw their random bits from uuid's pool (crypto/rand read
// 256 bytes at a time) rather than a read per id: a read per decision was
// 1% of a decision's CPU. Enabled once, before any id is made.
func init() { uuid.EnableRandPool() }

func newID() string {
	// uuid.NewV7 fails only when the system's random source fails.
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}
