package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model"
	"github.com/tact-nba/tact/model/adaptive"
	"github.com/tact-nba/tact/model/catalog"
	"github.com/tact-nba/tact/model/decision"
	"github.com/tact-nba/tact/model/demo"
	"github.com/tact-nba/tact/model/load"
	"github.com/tact-nba/tact/model/policy"
)

// The first stages of New: the stores, then the engine on them.

// wiring carries what one stage of New hands to the next.
type wiring struct {
	schema *features.Schema
	bundle *model.Bundle
	dc     *decisionConfig
}

// seedRedisDemo writes the demo clients into Redis when it holds none of
// them (demo: true with feature_store redis), so that replicas started
// together, or again, seed them at most once and never overwrite a demo
// client's features changed since.
func (s *Server) seedRedisDemo(ctx context.Context, bank *demo.Bank) error {
	ids := make([]string, len(bank.Clients))
	for i := range bank.Clients {
		ids[i] = bank.Clients[i].ClientID
	}
	have, err := s.redis.GetMany(ctx, ids)
	if err != nil {
		return fmt.Errorf("demo: look for the demo clients in Redis: %w", err)
	}
	for i := range have {
		if have[i].Len() > 0 {
			s.logger.Info("demo clients already in Redis: not seeded", "store", "redis")
			return nil
		}
	}
	if err := bank.Seed(ctx, s.redis); err != nil {
		return err
	}
	s.logger.Info("seeded demo clients", "clients", len(bank.Clients), "store", "redis")
	return nil
}

// openStores opens the embedded store, Redis when it is the feature
// store (seeding the demo clients into whichever holds the features, when
// asked), the decision log and the feature cache, and loads the schema,
// model bundle, catalog, policy and experiments.
func (s *Server) openStores(ctx context.Context, deps Deps) (*wiring, error) {
	var err error
	s.store, err = features.OpenBolt(filepath.Join(s.cfg.DataDir, "tact.db"))
	if err != nil {
		return nil, err
	}
	bank, err := demo.New(demo.Seed)
	if err != nil {
		return nil, err
	}
	if s.cfg.SeedDemo() && s.cfg.FeatureStore == "bolt" {
		n, err := s.store.CountClients(ctx)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			if err := bank.Seed(ctx, s.store); err != nil {
				return nil, err
			}
			s.logger.Info("seeded demo clients", "clients", len(bank.Clients), "store", s.store.Path())
		}
	}
	schema, err := loadSchema(s.cfg.FeatureSchema)
	if err != nil {
		return nil, err
	}
	bundle := bank.Bundle
	if s.cfg.ModelDir != "" {
		if bundle, err = loadBundle(s.cfg.ModelDir); err != nil {
			return nil, fmt.Errorf("model_dir: %w", err)
		}
	}
	s.files = &policyFiles{catalogPath: s.cfg.CatalogFile, policyPath: s.cfg.PolicyFile, experimentsPath: s.cfg.ExperimentsFile,
		schema: schema, bundle: bundleByVersion(s.cfg.ModelDir)}
	dc, sum, err := s.files.load()
	if err != nil {
		return nil, err
	}
	s.polSum = sum
	s.setPolicyVersion(sum)
	var src features.Source = s.store
	var sink features.DecisionSink = s.store
	s.history, s.log = s.store, s.store
	if s.cfg.FeatureStore == "redis" || s.cfg.FeatureStore == "feast" {
		rc := s.cfg.Redis
		rc.Retention = s.cfg.Retention
		s.redis, err = features.OpenRedis(ctx, rc, s.logger)
		if err != nil {
			return nil, fmt.Errorf("feature_store redis: %w", err)
		}
		// Every replica sharing the Redis shares the contact history (so
		// that the caps hold across them), the decision log and the
		// outcomes.
		src, sink = s.redis, s.redis
		s.history, s.log = s.redis, s.redis
		// A features read (a cache miss) brings the client's contact
		// history in the same round trip, for the decision's history
		// read that follows.
		s.redis.PrefetchContacts(s.cfg.FeatureStore == "redis")
		if s.cfg.FeatureStore == "feast" {
			// The features are Feast's, in the same Redis; the shared
			// state is Tact's own.
			if src, err = features.NewFeast(s.redis, s.cfg.Feast, schema, s.feastMismatch()); err != nil {
				return nil, err
			}
			if s.cfg.Demo == "true" {
				s.logger.Warn("demo: the demo clients are not seeded with feature_store feast (the features are Feast's); the demo catalog and models are served")
			}
		}
		if s.cfg.FeatureStore == "redis" && s.cfg.Demo == "true" {
			if err := s.seedRedisDemo(ctx, bank); err != nil {
				return nil, err
			}
		}
	}
	if s.redis == nil {
		// An offer is answered once its decision is in the journal (see
		// decision.Config.DurableOffers); what a crash left there is
		// written to the file first.
		j, err := features.OpenJournal(filepath.Join(s.cfg.DataDir, "journal"))
		if err != nil {
			return nil, err
		}
		if s.cfg.JournalSync == "everysec" {
			j.SyncEvery(time.Second)
		}
		var restored int
		s.dlog, restored, err = features.NewJournaledDecisionLog(ctx, s.store, j, s.cfg.DecisionLogBuffer, s.logger)
		if err != nil {
			return nil, err
		}
		if restored > 0 {
			s.logger.Warn("decision log: decisions restored from the journal after an unclean stop", "decisions", restored)
		}
	} else {
		s.dlog = features.NewDecisionLog(sink, s.cfg.DecisionLogBuffer, s.logger)
	}
	storeAttr := attribute.String("store", s.cfg.FeatureStore)
	src = &timedSource{Source: src, t: s.tel, store: storeAttr}
	s.tel.storeErrors.Add(ctx, 0, metric.WithAttributes(storeAttr)) // the series exists from the start
	if deps.WrapFeatures != nil {
		src = deps.WrapFeatures(src)
	}
	// Decisions read features only through the cache.
	s.cache, err = features.NewCache(src, s.cfg.Cache, deps.Now)
	if err != nil {
		return nil, err
	}
	return &wiring{schema: schema, bundle: bundle, dc: dc}, nil
}

// outcomeStore is where outcomes find their decisions and are stored: the
// embedded store, and with Redis the decisions any replica recorded there
// with their offers first.
func (s *Server) outcomeStore() decision.OutcomeStore {
	if s.redis == nil {
		return s.store
	}
	return &sharedOutcomes{shared: s.redis, local: s.store}
}

// sharedOutcomes finds a decision in Redis, where every replica records
// its offer decisions, and else in this replica's embedded store
// (decisions made before they were shared). Outcomes are stored in Redis.
type sharedOutcomes struct {
	shared *features.Redis
	local  *features.Bolt
}

var _ decision.OutcomeStore = (*sharedOutcomes)(nil)

func (o *sharedOutcomes) GetDecision(ctx context.Context, id string) (features.DecisionRecord, error) {
	d, err := o.shared.GetDecision(ctx, id)
	if errors.Is(err, features.ErrNotFound) {
		return o.local.GetDecision(ctx, id)
	}
	return d, err
}

func (o *sharedOutcomes) PutOutcome(ctx context.Context, rec *features.OutcomeRecord) (bool, error) {
	return o.shared.PutOutcome(ctx, rec)
}

// buildEngine builds the decision engine on the stores, and the services
// on the engine.
func (s *Server) buildEngine(deps Deps, w *wiring) (*services, error) {
	// With Redis, the load board is shared by every replica (Run
	// refreshes this replica's copy).
	board := load.NewBoard()
	if s.redis != nil {
		board = load.NewSharedBoard(s.redis)
	}
	s.board = board
	var err error
	var learner decision.Learner
	if s.cfg.Learning == "adaptive" {
		if s.learner, err = s.openLearning(w.schema); err != nil {
			return nil, err
		}
		learner = s.learner
		if s.redis != nil {
			// Every replica adds its outcomes to the state in Redis and
			// reads the sum back (refreshLearning).
			learner = &sharedLearner{set: s.learner, redis: s.redis, logger: s.logger}
		}
		if err := s.restoreSnapshot(context.Background(), w.bundle); err != nil {
			return nil, err
		}
		s.warnUnofferable(w.dc.cat, w.dc.pol, w.bundle)
	}
	s.engine, err = decision.New(s.decisionConfig(deps), decision.Deps{
		Catalog:  w.dc.cat,
		Policy:   w.dc.pol,
		Bundle:   w.bundle,
		Features: s.cache,
		History:  s.history,
		Load:     board,
		Log:      s.dlog,
		Outcomes: s.outcomeStore(),
		Learner:  learner,
		Now:      deps.Now,
		Tracer:   s.tel.tracer,
	})
	if err != nil {
		return nil, err
	}
	if err := s.engine.SetExperiments(w.dc.exps); err != nil {
		return nil, fmt.Errorf("%s: %w", s.cfg.ExperimentsFile, err)
	}
	logLoaded(s.logger, w.dc)

	logger := s.logger
	return &services{
		decision: &decisionService{engine: s.engine, logger: logger, tel: s.tel},
		catalog:  &catalogService{engine: s.engine},
		load:     &loadService{board: board, engine: s.engine, now: deps.Now, logger: logger},
		export:   &exportService{store: s.log, log: s.dlog, logger: logger},
		features: &featureService{cache: s.cache, schema: w.schema, now: deps.Now, logger: logger},
		exps:     &experimentService{engine: s.engine, store: s.log, log: s.dlog, logger: logger},
		models:   &modelService{engine: s.engine, learner: s.learner, cfg: &s.cfg, restored: s.learningRestored, logger: logger},
	}, nil
}

// feastMismatch logs, once per feature, a Feast value whose type does not
// fit the feature schema (the feature is then left out of the record).
func (s *Server) feastMismatch() func(string) {
	var mu sync.Mutex
	seen := map[string]bool{}
	return func(feature string) {
		mu.Lock()
		first := !seen[feature]
		seen[feature] = true
		mu.Unlock()
		if first {
			s.logger.Warn("feast: a value of another type than the feature schema's is left out", "feature", feature)
		}
	}
}

// openLearning makes the adaptive models (one per product, learning from
// the feature schema's numbers, booleans and strings) and restores what
// they learned before from the embedded store.
func (s *Server) openLearning(schema *features.Schema) (*adaptive.Set, error) {
	var preds []adaptive.Predictor
	for _, f := range schema.Fields {
		switch f.Kind() {
		case features.KindNumber, features.KindBool:
			preds = append(preds, adaptive.Predictor{Name: f.Name, Numeric: true})
		case features.KindString:
			preds = append(preds, adaptive.Predictor{Name: f.Name})
		}
	}
	set := adaptive.NewSet(adaptive.Config{Predictors: preds})
	if s.redis != nil {
		if err := s.refreshLearning(context.Background(), set); err != nil {
			return nil, fmt.Errorf("learning: %w", err)
		}
		s.logger.Info("learning: adaptive, shared in redis", "predictors", len(preds))
		return set, nil
	}
	raws, err := s.store.LoadLearning(context.Background())
	if err != nil {
		return nil, fmt.Errorf("learning: %w", err)
	}
	states := make(map[string]adaptive.State, len(raws))
	for product, raw := range raws {
		var st adaptive.State
		if err := json.Unmarshal(raw, &st); err != nil {
			return nil, fmt.Errorf("learning: the stored state of %s: %w", product, err)
		}
		states[product] = st
	}
	set.Restore(states)
	s.logger.Info("learning: adaptive", "products_with_evidence", len(states), "predictors", len(preds))
	return set, nil
}

// saveLearning writes what the adaptive models learned, when they learned
// anything since the last save.
func (s *Server) saveLearning(ctx context.Context) {
	if !s.learner.Changed() {
		return
	}
	raws, err := encodeStates(s.learner.States())
	if err != nil {
		// Saving the others would forget this product (a save replaces
		// the stored state): keep what is stored.
		s.learner.MarkChanged()
		s.logger.Error("learning: state not saved", "err", err)
		return
	}
	if err := s.store.SaveLearning(ctx, raws); err != nil {
		s.learner.MarkChanged() // try again at the next save
		s.logger.Warn("learning: state not saved; will retry", "err", err)
	}
}

// encodeStates is the learned state as the embedded store keeps it: JSON
// per product.
func encodeStates(states map[string]adaptive.State) (map[string][]byte, error) {
	raws := make(map[string][]byte, len(states))
	for p, st := range states {
		raw, err := json.Marshal(st)
		if err != nil {
			return nil, fmt.Errorf("learning: encode the state of %s: %w", p, err)
		}
		raws[p] = raw
	}
	return raws, nil
}

// syncLearning keeps the learned state: saved to the embedded store, or
// with Redis (where every outcome went as it was learned) read back.
func (s *Server) syncLearning(ctx context.Context) {
	if s.redis == nil {
		s.saveLearning(ctx)
		return
	}
	if err := s.refreshLearning(ctx, s.learner); err != nil && ctx.Err() == nil {
		s.logger.Warn("learning: reading the shared state failed; scoring from the last one read", "err", err)
	}
}

// refreshLearning replaces set's state with the replicas' shared one.
func (s *Server) refreshLearning(ctx context.Context, set *adaptive.Set) error {
	shared, err := s.redis.LoadLearning(ctx)
	if err != nil {
		return err
	}
	states := make(map[string]adaptive.State, len(shared))
	for product, st := range shared {
		coords := make(map[string]adaptive.Coord, len(st.Coords))
		for label, c := range st.Coords {
			coords[label] = adaptive.Coord{Z: c[0], N: c[1], Seen: c[2]}
		}
		states[product] = adaptive.State{Accepted: st.Accepted, Refused: st.Refused, Coords: coords}
	}
	set.Restore(states)
	return nil
}

// warnUnofferable warns of the catalog products the bundle has no model
// for whose learning prior is below every tier's bar: they are never
// offered, so never learn (exploration keeps to the bars too).
func (s *Server) warnUnofferable(cat *catalog.Catalog, pol *policy.Policy, b *model.Bundle) {
	lowest := math.Inf(1)
	for i := range pol.Tiers {
		lowest = min(lowest, pol.Tiers[i].MinPropensity)
	}
	var never []string
	for _, p := range cat.Products() {
		if _, ok := b.Index(p.ID); !ok && s.cfg.LearningPrior < lowest {
			never = append(never, p.ID)
		}
	}
	if len(never) > 0 {
		s.logger.Warn("learning: products without a model start from learning_prior, below every tier's bar: they are never offered, so never learn; raise learning_prior to a bar",
			"products", never, "learning_prior", s.cfg.LearningPrior, "lowest_bar", lowest)
	}
}

// learningRestored returns the snapshot version whose learned state was
// last restored.
func (s *Server) learningRestored(ctx context.Context) (string, error) {
	if s.redis != nil {
		return s.redis.LearningRestored(ctx)
	}
	return s.store.LearningRestored(ctx)
}

// restoreSnapshot makes learning resume from the state a snapshot bundle
// carries (tact models snapshot), the first time that version is served:
// a rollback to it, or a new data dir started on it. The version restored
// is kept (in the embedded store, or in Redis for every replica), so that
// a restart or another replica serving it does not restore it again over
// what was learned since.
func (s *Server) restoreSnapshot(ctx context.Context, b *model.Bundle) error {
	raw := b.Learning()
	if s.learner == nil || raw == nil {
		return nil
	}
	last, err := s.learningRestored(ctx)
	if err != nil {
		return fmt.Errorf("learning: %w", err)
	}
	if last == b.Version() {
		return nil
	}
	var states map[string]adaptive.State
	if err := json.Unmarshal(raw, &states); err != nil {
		return fmt.Errorf("learning: bundle %s: its learning file: %w", b.Version(), err)
	}
	// In memory first: a periodic save meanwhile then saves the restored
	// state, not the one it replaces.
	s.learner.Restore(states)
	if s.redis != nil {
		shared := make(map[string]features.LearnedState, len(states))
		for p, st := range states {
			ls := features.LearnedState{Accepted: st.Accepted, Refused: st.Refused, Coords: make(map[string][3]float64, len(st.Coords))}
			for label, c := range st.Coords {
				ls.Coords[label] = [3]float64{c.Z, c.N, c.Seen}
			}
			shared[p] = ls
		}
		if err := s.redis.RestoreLearning(ctx, b.Version(), shared); err != nil {
			return fmt.Errorf("learning: %w", err)
		}
	} else {
		raws, err := encodeStates(states)
		if err != nil {
			return err
		}
		if err := s.store.RestoreLearning(ctx, b.Version(), raws); err != nil {
			return fmt.Errorf("learning: %w", err)
		}
	}
	s.logger.Info("learning: resumed from the snapshot's state", "version", b.Version(), "products", len(states))
	return nil
}

// decisionConfig is the engine's configuration.
func (s *Server) decisionConfig(deps Deps) decision.Config {
	dc := decision.Config{FeatureBudget: s.cfg.FeatureBudget, DurableOffers: s.redis == nil, LearningPrior: s.cfg.LearningPrior, Rand: deps.Rand,
		NoDetail: !s.cfg.KeepsDetail(), DetailShare: s.cfg.DecisionDetailShare}
	if s.cfg.Exploring() {
		dc.Exploration, dc.ExplorationMaturity = s.cfg.ExplorationRate, float64(s.cfg.ExplorationMaturity)
		if s.cfg.Learning == "adaptive" {
			dc.ExplorationRamp = s.cfg.ExplorationRamp
		}
	}
	return dc
}

// sharedLearner learns locally and adds each outcome's deltas to the
// state the replicas share in Redis; refreshLearning reads the sum back.
type sharedLearner struct {
	set    *adaptive.Set
	redis  *features.Redis
	logger *slog.Logger
}

func (l *sharedLearner) Score(product string, f model.Features, prior float64) float64 {
	return l.set.Score(product, f, prior)
}

func (l *sharedLearner) Evidence(product string) float64 { return l.set.Evidence(product) }

func (l *sharedLearner) Learn(product string, f model.Features, prior float64, accepted bool) {
	deltas := l.set.LearnDeltas(product, f, prior, accepted)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := l.redis.AddLearning(ctx, product, deltas, accepted); err != nil {
		// The outcome itself is stored; this replica learned it, the
		// others will not.
		l.logger.Warn("learning: an outcome was not shared", "product", product, "err", err)
	}
}
