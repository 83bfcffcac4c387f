package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model"
	"github.com/tact-nba/tact/model/catalog"
	"github.com/tact-nba/tact/model/decision"
	"github.com/tact-nba/tact/model/demo"
	"github.com/tact-nba/tact/model/experiment"
	"github.com/tact-nba/tact/model/policy"
)

// policyFiles are the catalog, policy and experiments tactd decides by:
// the files configured (catalog_file, policy_file, experiments_file) or,
// for the catalog and policy left empty, the demo catalog and the default
// policy embedded in the binary (no experiments file: no experiments).
type policyFiles struct {
	catalogPath, policyPath, experimentsPath string
	schema                                   *features.Schema
	// bundle returns the model bundle of a version, for the variants
	// that name one.
	bundle func(version string) (*model.Bundle, error)
}

// read returns the three documents (experiments nil when none) and a
// digest of all.
func (p *policyFiles) read() (cat, pol, exps []byte, sum [32]byte, err error) {
	cat, pol = demo.CatalogYAML(), policy.DefaultYAML()
	if p.catalogPath != "" {
		if cat, err = os.ReadFile(p.catalogPath); err != nil {
			return nil, nil, nil, sum, fmt.Errorf("catalog_file: %w", err)
		}
	}
	if p.policyPath != "" {
		if pol, err = os.ReadFile(p.policyPath); err != nil {
			return nil, nil, nil, sum, fmt.Errorf("policy_file: %w", err)
		}
	}
	if p.experimentsPath != "" {
		if exps, err = os.ReadFile(p.experimentsPath); err != nil {
			return nil, nil, nil, sum, fmt.Errorf("experiments_file: %w", err)
		}
	}
	h := sha256.New()
	for _, b := range [][]byte{cat, pol, exps} {
		h.Write(b)
		h.Write([]byte{0})
	}
	copy(sum[:], h.Sum(nil))
	return cat, pol, exps, sum, nil
}

// decisionConfig is what the files come to.
type decisionConfig struct {
	cat  *catalog.Catalog
	pol  *policy.Policy
	exps *experiment.Set // nil: no experiments
	sum  [32]byte
}

// load reads, checks and compiles the three, reporting every problem.
func (p *policyFiles) load() (*decisionConfig, [32]byte, error) {
	catDoc, polDoc, expDoc, sum, err := p.read()
	if err != nil {
		return nil, sum, err
	}
	cat, err := catalog.Parse(catDoc, p.schema)
	if err != nil {
		return nil, sum, fmt.Errorf("%s: %w", p.name(p.catalogPath, "embedded demo catalog"), err)
	}
	pol, err := policy.Parse(polDoc, cat, p.schema)
	if err != nil {
		return nil, sum, fmt.Errorf("%s: %w", p.name(p.policyPath, "embedded default policy"), err)
	}
	dc := &decisionConfig{cat: cat, pol: pol, sum: sum}
	if expDoc != nil {
		dc.exps, err = experiment.Parse(expDoc, experiment.Env{Policy: pol, Catalog: cat, Schema: p.schema, Bundle: p.bundle})
		if err != nil {
			return nil, sum, fmt.Errorf("%s: %w", p.experimentsPath, err)
		}
	}
	return dc, sum, nil
}

func (p *policyFiles) name(path, embedded string) string {
	if path == "" {
		return embedded
	}
	return path
}

// policyWatcher polls the catalog, policy and experiments files and swaps
// a changed, valid set into the engine. A set with errors is logged once,
// with every error, and the set in use keeps serving. A set is judged
// invalid only when two polls in a row read the same bytes: an editor or
// a copy caught mid-write is read again, not reported.
type policyWatcher struct {
	files  *policyFiles
	every  time.Duration
	engine *decision.Engine
	logger *slog.Logger
	inUse  [32]byte
	failed [32]byte // digest of the set last rejected
	doubt  [32]byte // digest of a set that failed once; rejected if read again
	doubts bool     // whether doubt is set
	logged string   // the error last logged
	// loaded, when set, is told the digest of each set swapped in.
	loaded func([32]byte)
}

func (w *policyWatcher) run(ctx context.Context) { every(ctx, w.every, w.check) }

func (w *policyWatcher) check() {
	_, _, _, sum, err := w.files.read()
	if err == nil && (sum == w.inUse || sum == w.failed) {
		return
	}
	var dc *decisionConfig
	if err == nil {
		dc, sum, err = w.files.load()
	}
	if err == nil {
		err = w.engine.SetPolicy(dc.cat, dc.pol, dc.exps)
	}
	if err != nil {
		if dc != nil && dc.exps != nil {
			dc.exps.Close()
		}
		if !w.doubts || sum != w.doubt {
			w.doubt, w.doubts = sum, true // perhaps caught mid-write: judge it at the next poll
			return
		}
		if err.Error() != w.logged {
			w.logger.Error("catalog, policy or experiments rejected; keeping the ones in use", "err", err.Error())
			w.logged = err.Error()
		}
		w.failed = sum
		return
	}
	w.inUse, w.failed, w.doubts, w.logged = sum, [32]byte{}, false, ""
	if w.loaded != nil {
		w.loaded(sum)
	}
	logLoaded(w.logger, dc)
}

// logLoaded says what was loaded, with every warning of the experiments.
func logLoaded(logger *slog.Logger, dc *decisionConfig) {
	attrs := []any{"products", len(dc.cat.Products()), "tiers", len(dc.pol.Tiers)}
	if dc.exps != nil {
		attrs = append(attrs, "experiments", len(dc.exps.Experiments()), "experiments_version", dc.exps.Version())
		for _, warn := range dc.exps.Warnings() {
			logger.Warn("experiments: "+warn, "experiments_version", dc.exps.Version())
		}
	}
	logger.Info("catalog, policy and experiments loaded", attrs...)
}
