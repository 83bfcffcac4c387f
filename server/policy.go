package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model/catalog"
	"github.com/tact-nba/tact/model/decision"
	"github.com/tact-nba/tact/model/demo"
	"github.com/tact-nba/tact/model/policy"
)

// policyFiles are the catalog and policy tactd decides by: the files
// configured (catalog_file, policy_file) or, for either left empty, the
// demo catalog and the default policy embedded in the binary.
type policyFiles struct {
	catalogPath, policyPath string
	schema                  *features.Schema
}

// read returns the two YAML documents and a digest of both.
func (p *policyFiles) read() (cat, pol []byte, sum [32]byte, err error) {
	cat, pol = demo.CatalogYAML(), policy.DefaultYAML()
	if p.catalogPath != "" {
		if cat, err = os.ReadFile(p.catalogPath); err != nil {
			return nil, nil, sum, fmt.Errorf("catalog_file: %w", err)
		}
	}
	if p.policyPath != "" {
		if pol, err = os.ReadFile(p.policyPath); err != nil {
			return nil, nil, sum, fmt.Errorf("policy_file: %w", err)
		}
	}
	h := sha256.New()
	h.Write(cat)
	h.Write([]byte{0})
	h.Write(pol)
	copy(sum[:], h.Sum(nil))
	return cat, pol, sum, nil
}

// load reads, checks and compiles both, reporting every problem.
func (p *policyFiles) load() (*catalog.Catalog, *policy.Policy, [32]byte, error) {
	catYAML, polYAML, sum, err := p.read()
	if err != nil {
		return nil, nil, sum, err
	}
	cat, err := catalog.Parse(catYAML, p.schema)
	if err != nil {
		return nil, nil, sum, fmt.Errorf("%s: %w", p.name(p.catalogPath, "embedded demo catalog"), err)
	}
	pol, err := policy.Parse(polYAML, cat, p.schema)
	if err != nil {
		return nil, nil, sum, fmt.Errorf("%s: %w", p.name(p.policyPath, "embedded default policy"), err)
	}
	return cat, pol, sum, nil
}

func (p *policyFiles) name(path, embedded string) string {
	if path == "" {
		return embedded
	}
	return path
}

// policyWatcher polls the catalog and policy files and swaps a changed,
// valid pair into the engine. A pair with errors is logged once, with
// every error, and the pair in use keeps serving.
type policyWatcher struct {
	files  *policyFiles
	every  time.Duration
	engine *decision.Engine
	logger *slog.Logger
	inUse  [32]byte
	failed [32]byte // digest of the pair last rejected
	logged string   // the error last logged
}

func (w *policyWatcher) run(ctx context.Context) {
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.check()
		}
	}
}

func (w *policyWatcher) check() {
	_, _, sum, err := w.files.read()
	if err == nil && (sum == w.inUse || sum == w.failed) {
		return
	}
	var cat *catalog.Catalog
	var pol *policy.Policy
	if err == nil {
		cat, pol, sum, err = w.files.load()
	}
	if err == nil {
		err = w.engine.SetPolicy(cat, pol)
	}
	if err != nil {
		if err.Error() != w.logged {
			w.logger.Error("catalog or policy rejected; keeping the ones in use", "err", err.Error())
			w.logged = err.Error()
		}
		w.failed = sum
		return
	}
	w.inUse, w.failed, w.logged = sum, [32]byte{}, ""
	w.logger.Info("catalog and policy loaded", "products", len(cat.Products()), "tiers", len(pol.Tiers))
}
