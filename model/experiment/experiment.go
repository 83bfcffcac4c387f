// Package experiment reads A/B experiment configs in GrowthBook's features
// JSON format (what a GrowthBook server's SDK endpoint serves, or a file
// written by hand) and assigns clients to variants with GrowthBook's own Go
// SDK, so that a client gets the same variant on the bank's website and in
// Tact.
//
// Every feature in the file is a set of Tact overrides: its values (the
// default, a forced value, each experiment variation) are JSON objects
//
//	{"model_version": "demo-2-challenger",
//	 "tiers": {"standard": {"min_propensity": 0.1, "cool_down_days": 20,
//	           "pitch_when_busy": true, "caps": {"web": {"per_7_days": 3, "per_30_days": 6}}}},
//	 "load": {"busy_when": {"calls_waiting": 15}, "calm_when": {"calls_waiting": 8}},
//	 "levers": {"mortgage": 1.2},
//	 "weaken_protection": false}
//
// each checked at load against the policy, the catalog and the model
// versions on hand. A value that would protect a protected tier (platinum,
// gold) less than the policy does is rejected unless it says
// "weaken_protection": true, and then listed as a warning.
//
// Clients are assigned by the attributes id (the client id), tier,
// channel, queue, reason and stage. Assignment is a hash of the experiment
// seed and the client id: the same client gets the same variant on every
// call and every replica while the config is unchanged.
package experiment

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	growthbook "github.com/growthbook/growthbook-golang"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model"
	"github.com/tact-nba/tact/model/catalog"
	"github.com/tact-nba/tact/model/policy"
)

// Env is what a config is checked against.
type Env struct {
	Policy  *policy.Policy
	Catalog *catalog.Catalog
	Schema  *features.Schema
	// Bundle returns the model bundle of a version, or an error saying
	// why there is none.
	Bundle func(version string) (*model.Bundle, error)
}

// Value is what a feature's value asks of a decision.
type Value struct {
	// ModelVersion names the model bundle to score with; empty keeps the
	// one in use.
	ModelVersion string `json:"model_version,omitempty"`
	// WeakenProtection allows the value to protect a protected tier less
	// than the policy does (listed as a warning at load).
	WeakenProtection bool `json:"weaken_protection,omitempty"`
	policy.Overrides
}

func (v *Value) hasPolicy() bool {
	return len(v.Tiers) > 0 || v.Load != nil || len(v.Levers) > 0
}

// Info describes one experiment of the config, for results.
type Info struct {
	Key     string
	Feature string
	// Variations in order; the first is the control.
	Variations []VariationInfo
}

// VariationInfo is one arm of an experiment.
type VariationInfo struct {
	ID   int
	Key  string
	Name string
	// Weight is the share of the covered clients it should get.
	Weight float64
}

// Exposure is a client's assignment to one variation, recorded with the
// decision it shaped.
type Exposure = features.Exposure

// Set is a loaded, checked config. It is safe for concurrent use.
type Set struct {
	gb       *growthbook.Client
	version  string
	keys     []string          // the features, in order of application
	values   map[string]*Value // by canonical JSON
	combos   map[string]*Resolved
	infos    map[string]*Info
	warnings []string
	bundles  map[string]*model.Bundle
}

// Resolved is what a combination of values comes to.
type Resolved struct {
	// Policy is the policy with the overrides applied; nil keeps the
	// policy in use.
	Policy *policy.Policy
	// Bundle is the model bundle named; nil keeps the one in use.
	Bundle *model.Bundle
}

// MaxCombinations bounds the policies compiled for a config: one per
// combination of the values of the features that override the policy.
const MaxCombinations = 256

type file struct {
	Features          map[string]json.RawMessage `json:"features"`
	EncryptedFeatures string                     `json:"encryptedFeatures"`
}

// Parse reads and checks a config, reporting every problem with its path.
func Parse(data []byte, env Env) (*Set, error) {
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("experiments: %w", err)
	}
	if f.EncryptedFeatures != "" {
		return nil, errors.New("experiments: encryptedFeatures: encrypted payloads are not supported; serve the features in clear to Tact")
	}
	if f.Features == nil {
		return nil, errors.New(`experiments: "features": missing`)
	}
	var fm growthbook.FeatureMap
	if err := json.Unmarshal(data, &struct {
		Features *growthbook.FeatureMap `json:"features"`
	}{&fm}); err != nil {
		return nil, fmt.Errorf("experiments: features: %w", err)
	}
	s := &Set{values: map[string]*Value{}, combos: map[string]*Resolved{}, infos: map[string]*Info{}, bundles: map[string]*model.Bundle{}}
	sum := sha256.Sum256(data)
	s.version = hex.EncodeToString(sum[:6])
	s.keys = slices.Sorted(maps.Keys(fm))
	var errs []error
	// policyValues lists, per feature, the distinct values that change
	// the policy or the model (canonical JSON), for the combinations.
	policyValues := map[string][]string{}
	for _, key := range s.keys {
		ft := fm[key]
		at := "features." + key
		if ft == nil {
			errs = append(errs, fmt.Errorf("%s: null", at))
			continue
		}
		add := func(path string, v growthbook.FeatureValue) {
			canon, val, err := s.value(v, env)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", path, err))
				return
			}
			if val != nil && !slices.Contains(policyValues[key], canon) {
				policyValues[key] = append(policyValues[key], canon)
			}
		}
		add(at+".defaultValue", ft.DefaultValue)
		for i, r := range ft.Rules {
			rat := fmt.Sprintf("%s.rules[%d]", at, i)
			if r.Force != nil {
				add(rat+".force", r.Force)
			}
			for j, v := range r.Variations {
				add(fmt.Sprintf("%s.variations[%d]", rat, j), v)
			}
			if len(r.Variations) == 0 {
				continue
			}
			if len(r.Variations) < 2 {
				errs = append(errs, fmt.Errorf("%s.variations: an experiment needs two variations at least", rat))
				continue
			}
			info := &Info{Key: r.Key, Feature: key}
			if info.Key == "" {
				info.Key = key // as the SDK names it
			}
			if prev, ok := s.infos[info.Key]; ok {
				errs = append(errs, fmt.Errorf("%s.key: experiment %q is also run by feature %q", rat, info.Key, prev.Feature))
				continue
			}
			w := r.Weights
			var total float64
			for _, x := range w {
				total += x
			}
			switch {
			case w != nil && len(w) != len(r.Variations):
				errs = append(errs, fmt.Errorf("%s.weights: %d weights for %d variations", rat, len(w), len(r.Variations)))
				continue
			case w != nil && (math.Abs(total-1) > 0.001 || slices.ContainsFunc(w, func(x float64) bool { return !(x >= 0) })):
				errs = append(errs, fmt.Errorf("%s.weights: %v must be at least 0 each and add up to 1", rat, w))
				continue
			case r.Coverage != nil && !(*r.Coverage >= 0 && *r.Coverage <= 1):
				errs = append(errs, fmt.Errorf("%s.coverage: %v not in 0..1", rat, *r.Coverage))
				continue
			}
			for j := range r.Variations {
				vi := VariationInfo{ID: j, Key: strconv.Itoa(j), Weight: 1 / float64(len(r.Variations))}
				if j < len(r.Meta) {
					if r.Meta[j].Key != "" {
						vi.Key = r.Meta[j].Key
					}
					vi.Name = r.Meta[j].Name
				}
				if w != nil && total > 0 {
					vi.Weight = w[j] / total
				}
				info.Variations = append(info.Variations, vi)
			}
			s.infos[info.Key] = info
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := s.combine(policyValues, env); err != nil {
		return nil, err
	}
	// The SDK logs nothing of a decision: the config is checked here.
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	gb, err := growthbook.NewClient(context.Background(), growthbook.WithFeatures(fm), growthbook.WithLogger(quiet))
	if err != nil {
		return nil, fmt.Errorf("experiments: %w", err)
	}
	s.gb = gb
	slices.Sort(s.warnings)
	s.warnings = slices.Compact(s.warnings)
	return s, nil
}

// value checks one feature value and returns its canonical JSON, and the
// value when it changes the policy or the model (nil when it does not).
func (s *Set) value(v growthbook.FeatureValue, env Env) (string, *Value, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return "", nil, err
	}
	if string(raw) == "null" {
		return "null", nil, nil
	}
	var val Value
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&val); err != nil {
		return "", nil, fmt.Errorf("not a Tact override object: %w", err)
	}
	canon := string(raw)
	if v, ok := s.values[canon]; ok {
		return canon, v, nil
	}
	if val.ModelVersion != "" {
		if _, ok := s.bundles[val.ModelVersion]; !ok {
			b, err := env.Bundle(val.ModelVersion)
			if err != nil {
				return "", nil, fmt.Errorf("model_version: %w", err)
			}
			s.bundles[val.ModelVersion] = b
		}
	}
	if val.hasPolicy() {
		_, weaker, err := env.Policy.With(&val.Overrides, env.Catalog, env.Schema)
		if err != nil {
			return "", nil, err
		}
		if len(weaker) > 0 {
			if !val.WeakenProtection {
				return "", nil, fmt.Errorf("weakens the protection of protected tiers (set \"weaken_protection\": true to allow): %v", weaker)
			}
			for _, w := range weaker {
				s.warnings = append(s.warnings, fmt.Sprintf("a variant weakens protection: %s", w))
			}
		}
	}
	if val.ModelVersion == "" && !val.hasPolicy() {
		s.values[canon] = nil
		return canon, nil, nil
	}
	s.values[canon] = &val
	return canon, &val, nil
}

// combine compiles a policy for every combination of the features' values
// that change it, applied in feature order (a later feature wins).
func (s *Set) combine(policyValues map[string][]string, env Env) error {
	combos := []string{""}
	for _, key := range s.keys {
		vals := policyValues[key]
		if len(vals) == 0 {
			continue
		}
		var next []string
		for _, c := range combos {
			next = append(next, c) // this feature's value leaves things be
			for _, v := range vals {
				next = append(next, c+"\x00"+v)
			}
		}
		combos = next
		if len(combos) > MaxCombinations {
			return fmt.Errorf("experiments: more than %d combinations of values that change the policy; split the experiments over time", MaxCombinations)
		}
	}
	var errs []error
	for _, c := range combos {
		if c == "" {
			continue
		}
		// The values apply one after the other, each over the policy the
		// ones before it made (a later feature wins on a shared key).
		r := &Resolved{}
		for _, canon := range strings.Split(c, "\x00")[1:] {
			v := s.values[canon]
			if v.ModelVersion != "" {
				r.Bundle = s.bundles[v.ModelVersion]
			}
			if !v.hasPolicy() {
				continue
			}
			base := r.Policy
			if base == nil {
				base = env.Policy
			}
			p, _, err := base.With(&v.Overrides, env.Catalog, env.Schema)
			if err != nil {
				errs = append(errs, fmt.Errorf("experiments: a client in several experiments at once: %w", err))
				break
			}
			r.Policy = p
		}
		s.combos[c] = r
	}
	return errors.Join(errs...)
}

// Version identifies the config (a hash of the file).
func (s *Set) Version() string { return s.version }

// Bundles returns the model bundles the variants name.
func (s *Set) Bundles() []*model.Bundle {
	out := make([]*model.Bundle, 0, len(s.bundles))
	for _, v := range slices.Sorted(maps.Keys(s.bundles)) {
		out = append(out, s.bundles[v])
	}
	return out
}

// Warnings lists what the config allows that weakens protection.
func (s *Set) Warnings() []string { return s.warnings }

// Experiments returns the experiments of the config by key.
func (s *Set) Experiments() map[string]*Info { return s.infos }

// Close releases the SDK client.
func (s *Set) Close() {
	if s.gb != nil {
		_ = s.gb.Close()
	}
}

// Attributes are what a client is assigned by.
type Attributes struct {
	ClientID, Tier, Channel, Queue, Reason, Stage string
}

// Assign evaluates every feature for a client: the exposures (the
// experiments the client is in, with the variation) and what the values
// come to.
func (s *Set) Assign(ctx context.Context, a Attributes) ([]Exposure, *Resolved, error) {
	if len(s.keys) == 0 {
		return nil, nil, nil
	}
	c, err := s.gb.WithAttributes(growthbook.Attributes{
		"id": a.ClientID, "tier": a.Tier, "channel": a.Channel, "queue": a.Queue, "reason": a.Reason, "stage": a.Stage,
	})
	if err != nil {
		return nil, nil, err
	}
	var exps []Exposure
	var combo []byte
	for _, key := range s.keys {
		res := c.EvalFeature(ctx, key)
		if res.Source == growthbook.ExperimentResultSource && res.ExperimentResult != nil && res.ExperimentResult.InExperiment {
			er := res.ExperimentResult
			e := Exposure{Experiment: key, Feature: key, VariationID: er.VariationId, Variation: er.Key, Name: er.Name}
			if res.Experiment != nil && res.Experiment.Key != "" {
				e.Experiment = res.Experiment.Key
			}
			exps = append(exps, e)
		}
		raw, err := json.Marshal(res.Value)
		if err != nil {
			return nil, nil, err
		}
		if v, ok := s.values[string(raw)]; ok && v != nil {
			combo = append(append(combo, 0), raw...)
		}
	}
	if len(combo) == 0 {
		return exps, nil, nil
	}
	r, ok := s.combos[string(combo)]
	if !ok {
		return nil, nil, fmt.Errorf("experiments: no compiled combination for %q", combo)
	}
	return exps, r, nil
}
