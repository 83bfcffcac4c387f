package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"strings"
	"time"

	"github.com/tact-nba/tact/model"
	"github.com/tact-nba/tact/model/decision"
	"github.com/tact-nba/tact/model/demo"
)

// currentBundle is the name, inside model_dir, of the bundle served: a
// directory or (usually) a symlink to one, swapped atomically with
// `ln -s v2 current.new && mv -T current.new current`.
const currentBundle = "current"

// loadBundle loads model_dir/current.
func loadBundle(dir string) (*model.Bundle, error) {
	return model.LoadBundle(os.DirFS(dir), currentBundle)
}

// bundleByVersion returns how a variant's model version is found: in
// model_dir, the directory of that name (its manifest must carry the
// version); without model_dir, among the demo's bundles.
func bundleByVersion(modelDir string) func(string) (*model.Bundle, error) {
	return func(version string) (*model.Bundle, error) {
		if modelDir == "" {
			return demo.Bundles(version)
		}
		if !fs.ValidPath(version) || strings.Contains(version, "/") {
			return nil, fmt.Errorf("%q is not a directory name in model_dir", version)
		}
		b, err := model.LoadBundle(os.DirFS(modelDir), version)
		if err != nil {
			return nil, fmt.Errorf("model_dir/%s: %w", version, err)
		}
		if b.Version() != version {
			return nil, fmt.Errorf("model_dir/%s holds version %q: a version's directory must carry its name", version, b.Version())
		}
		return b, nil
	}
}

// bundleWatcher polls model_dir/current and swaps a new bundle version into
// the engine. A bundle that fails to load (or does not cover the catalog)
// is logged once and the bundle in use keeps serving.
type bundleWatcher struct {
	dir    string
	every  time.Duration
	engine *decision.Engine
	logger *slog.Logger
	failed string // the version (or error) last reported as failing
	// loaded, when set, is told of each bundle swapped in (learning
	// resumes from a snapshot's state); an error is logged.
	loaded func(*model.Bundle) error
}

// run polls until ctx ends.
func (w *bundleWatcher) run(ctx context.Context) { every(ctx, w.every, w.check) }

// check loads the bundle when its manifest names a version other than the
// one in use.
func (w *bundleWatcher) check() {
	version, err := manifestVersion(w.dir)
	if err != nil {
		w.fail(err.Error(), "model bundle: cannot read the manifest; keeping the bundle in use", err)
		return
	}
	inUse := w.engine.Bundle().Version()
	if version == inUse {
		w.failed = ""
		return
	}
	b, err := loadBundle(w.dir)
	if err == nil {
		err = w.engine.SetBundle(b)
	}
	if err != nil {
		w.fail(version, "model bundle rejected; keeping the bundle in use", err, "rejected_version", version)
		return
	}
	w.failed = ""
	w.logger.Info("model bundle loaded", "version", version, "previous_version", inUse, "products", len(b.Products()))
	if w.loaded != nil {
		if err := w.loaded(b); err != nil {
			w.logger.Error("model bundle loaded, but its learned state was not restored; learning goes on from the state in use", "version", version, "err", err.Error())
		}
	}
}

func (w *bundleWatcher) fail(key, msg string, err error, args ...any) {
	if w.failed == key {
		return
	}
	w.failed = key
	w.logger.Error(msg, append([]any{"err", err.Error(), "in_use", w.engine.Bundle().Version()}, args...)...)
}

// manifestVersion reads only the version of model_dir/current/bundle.json.
func manifestVersion(dir string) (string, error) {
	raw, err := fs.ReadFile(os.DirFS(dir), path.Join(currentBundle, model.ManifestFile))
	if err != nil {
		return "", err
	}
	var m struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", fmt.Errorf("%s: %w", model.ManifestFile, err)
	}
	if m.Version == "" {
		return "", errors.New("bundle.json: version is empty")
	}
	return m.Version, nil
}
