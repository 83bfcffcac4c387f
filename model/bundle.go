package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"slices"
	"time"
)

// FormatBundle names the manifest format of a model bundle.
const FormatBundle = "tact.bundle.v1"

// ManifestFile is the name of a bundle's manifest inside its directory.
const ManifestFile = "bundle.json"

// Manifest is a bundle's bundle.json: its version and one model per
// product. Each model file holds its own inputs (the feature schema with
// transforms) and training metadata.
type Manifest struct {
	Format      string                   `json:"format"`
	Version     string                   `json:"version"`
	CreatedAt   time.Time                `json:"created_at,omitzero"`
	Description string                   `json:"description,omitempty"`
	Models      map[string]ManifestModel `json:"models"`
	// Learning, in a snapshot (tact models snapshot), is the file holding
	// what the adaptive models had learned on top of these models; served
	// with learning adaptive, it is the state learning resumes from the
	// first time this version is served.
	Learning string `json:"learning,omitempty"`
}

// ManifestModel is one product's model in a bundle.
type ManifestModel struct {
	// Type is "logistic" (a tact.logistic.v1 file written by tact train)
	// or "xgboost" (XGBoost's JSON model, binary:logistic).
	Type string `json:"type"`
	// File is the model file, relative to the bundle directory.
	File string `json:"file"`
	// Calibration, when set, maps the raw propensity p to
	// sigmoid(A*logit(p) + B) (Platt scaling).
	Calibration *Platt `json:"calibration,omitempty"`
}

// Platt is a Platt-scaling calibration.
type Platt struct {
	A float64 `json:"a"`
	B float64 `json:"b"`
}

// Bundle is a loaded, compiled model bundle: a propensity per product.
// It is immutable and safe for concurrent use.
type Bundle struct {
	Manifest Manifest
	products []string       // sorted
	index    map[string]int // product -> position in products
	// Logistic models score together in set; setPos[i] is product i's
	// position in the set, or -1 for an XGBoost model in xgb[i].
	set    *Set
	setPos []int
	xgb    []*XGBoost
	calib  []*Platt
	meta   map[string]Meta
	// learning is the manifest's learning file, read; nil without one.
	learning []byte
}

// Learning returns the learned state a snapshot carries (the manifest's
// learning file), nil when it carries none.
func (b *Bundle) Learning() []byte { return b.learning }

// LoadBundle reads the bundle in directory dir of fsys. Every problem is
// reported, naming the product and file.
func LoadBundle(fsys fs.FS, dir string) (*Bundle, error) {
	raw, err := fs.ReadFile(fsys, path.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	var man Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&man); err != nil {
		return nil, fmt.Errorf("bundle %s: %s: %w", dir, ManifestFile, err)
	}
	var errs []error
	if man.Format != FormatBundle {
		errs = append(errs, fmt.Errorf("format: %q, want %q", man.Format, FormatBundle))
	}
	if man.Version == "" {
		errs = append(errs, errors.New("version: empty"))
	}
	if len(man.Models) == 0 {
		errs = append(errs, errors.New("models: none"))
	}
	b := &Bundle{Manifest: man, index: map[string]int{}, meta: map[string]Meta{}}
	for p := range man.Models {
		b.products = append(b.products, p)
	}
	slices.Sort(b.products)
	var setNames []string
	var setModels []*Logistic
	b.setPos = make([]int, len(b.products))
	b.xgb = make([]*XGBoost, len(b.products))
	b.calib = make([]*Platt, len(b.products))
	for i, p := range b.products {
		b.index[p] = i
		mm := man.Models[p]
		at := fmt.Sprintf("models[%s]", p)
		if c := mm.Calibration; c != nil {
			if math.IsNaN(c.A) || math.IsInf(c.A, 0) || math.IsNaN(c.B) || math.IsInf(c.B, 0) {
				errs = append(errs, fmt.Errorf("%s.calibration: a and b must be finite", at))
			}
			b.calib[i] = c
		}
		if mm.File == "" || path.IsAbs(mm.File) || !fs.ValidPath(path.Join(dir, mm.File)) {
			errs = append(errs, fmt.Errorf("%s.file: %q must be a path inside the bundle", at, mm.File))
			continue
		}
		f, err := fsys.Open(path.Join(dir, mm.File))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.file: %w", at, err))
			continue
		}
		switch mm.Type {
		case "logistic":
			m, err := ReadLogistic(f)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %s: %w", at, mm.File, err))
				break
			}
			b.setPos[i] = len(setModels)
			setNames = append(setNames, p)
			setModels = append(setModels, m)
			b.meta[p] = m.Meta
		case "xgboost":
			m, err := ReadXGBoost(f)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %s: %w", at, mm.File, err))
				break
			}
			b.setPos[i] = -1
			b.xgb[i] = m
		default:
			errs = append(errs, fmt.Errorf("%s.type: %q, want logistic or xgboost", at, mm.Type))
		}
		f.Close()
	}
	if man.Learning != "" {
		if path.IsAbs(man.Learning) || !fs.ValidPath(path.Join(dir, man.Learning)) {
			errs = append(errs, fmt.Errorf("learning: %q must be a path inside the bundle", man.Learning))
		} else if raw, err := fs.ReadFile(fsys, path.Join(dir, man.Learning)); err != nil {
			errs = append(errs, fmt.Errorf("learning: %w", err))
		} else if !json.Valid(raw) {
			errs = append(errs, fmt.Errorf("learning: %s is not JSON", man.Learning))
		} else {
			b.learning = raw
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("bundle %s: %w", dir, errors.Join(errs...))
	}
	if len(setModels) > 0 {
		if b.set, err = NewSet(setNames, setModels); err != nil {
			return nil, fmt.Errorf("bundle %s: %w", dir, err)
		}
	}
	return b, nil
}

// Version returns the bundle's version.
func (b *Bundle) Version() string { return b.Manifest.Version }

// Products returns the products the bundle scores, sorted; ScoreAll
// writes their propensities in this order.
func (b *Bundle) Products() []string { return b.products }

// Index returns a product's position in Products.
func (b *Bundle) Index(product string) (int, bool) {
	i, ok := b.index[product]
	return i, ok
}

// Meta returns the training metadata of a product's logistic model.
func (b *Bundle) Meta(product string) (Meta, bool) {
	m, ok := b.meta[product]
	return m, ok
}

// ScoreAll writes every product's propensity for f into out (len
// len(Products())) and scratch, which must have room for the logistic
// models (len Products() is enough). It does not allocate.
func (b *Bundle) ScoreAll(f Features, out, scratch []float64) {
	if b.set != nil {
		b.set.ScoreAll(f, scratch[:b.set.Len()])
	}
	for i := range b.products {
		var p float64
		if j := b.setPos[i]; j >= 0 {
			p = scratch[j]
		} else {
			p = b.xgb[i].Score(f)
		}
		if c := b.calib[i]; c != nil {
			p = min(max(p, 1e-12), 1-1e-12)
			p = sigmoid(c.A*math.Log(p/(1-p)) + c.B)
		}
		out[i] = p
	}
}
