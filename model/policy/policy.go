// Package policy is the decision policy's configuration: the client tiers
// and the protection each gets (propensity bar, frequency caps, cool-down,
// busy periods, the contexts a pitch is allowed in), the arbitration
// weights, when the contact centre is busy, and where timing reads the
// client's preferred contact hours.
//
// A policy is read from YAML (Parse, or Default for the embedded
// default.yaml) and checked against the catalog and the feature schema;
// every problem is reported at once, named by its key. A Policy is
// immutable once built and safe for concurrent use.
package policy

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"go.yaml.in/yaml/v3"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model/catalog"
	"github.com/tact-nba/tact/model/load"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the embedded default policy.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Policy is a validated decision policy.
type Policy struct {
	Tiers       []Tier      `yaml:"tiers"`
	Arbitration Arbitration `yaml:"arbitration"`
	Load        load.Config `yaml:"load"`
	Timing      Timing      `yaml:"timing"`
}

// Tier is a grade of client and the protection that goes with it.
type Tier struct {
	Name string `yaml:"name"`
	// When is a CEL expression over the client's features; the first tier
	// whose expression holds is the client's. The last tier has none and
	// takes every other client. The feature "tier", when it names a tier,
	// overrides the rules.
	When string `yaml:"when"`
	// Protected tiers get the reason code PROTECTED_TIER_SERVICE_CALL
	// when a service contact holds a pitch back, and are treated as in a
	// busy period when the load is unknown.
	Protected bool `yaml:"protected"`
	// MinPropensity is the lowest propensity worth a pitch, 0..1.
	MinPropensity float64 `yaml:"min_propensity"`
	// CoolDownDays after a refusal before the product is offered again
	// (the product's own cool-down applies when longer).
	CoolDownDays int `yaml:"cool_down_days"`
	// PitchWhenBusy allows a pitch while the client's queue is busy.
	PitchWhenBusy bool `yaml:"pitch_when_busy"`
	// Caps per channel; "default" covers the channels not listed.
	Caps map[string]Cap `yaml:"caps"`
	// Contexts lists, per interaction reason (sales_enquiry, service,
	// other), the stages in which a pitch is allowed (opening,
	// in_progress, resolved, wrap_up, unspecified, or any). A reason not
	// listed allows none. Complaints never allow one.
	Contexts map[string][]string `yaml:"contexts"`

	prg  cel.Program
	caps map[catalog.Channel][]features.Cap
}

// Cap is the most offers a client may get on one channel in 7 and in 30
// days.
type Cap struct {
	Per7Days  *int `yaml:"per_7_days" json:"per_7_days"`
	Per30Days *int `yaml:"per_30_days" json:"per_30_days"`
}

// Arbitration weighs the candidates:
//
//	priority = propensity x value x channel weight x stage weight x lever
//	           - handling seconds x cost per second x (1 + load weight x pressure)
//
// A weight not given is 1.
type Arbitration struct {
	ChannelWeights map[string]float64 `yaml:"channel_weights"`
	StageWeights   map[string]float64 `yaml:"stage_weights"`
	// Levers raise or lower a product for business priorities.
	Levers map[string]float64 `yaml:"levers"`
	// CostPerHandlingSecond is what a second of agent time costs, in the
	// catalog's currency.
	CostPerHandlingSecond float64 `yaml:"cost_per_handling_second"`
	// LoadCostWeight scales the cost with the queue's pressure (0 idle, 1
	// at the busy threshold, at most 2).
	LoadCostWeight float64 `yaml:"load_cost_weight"`
	// LaterFatigue is the share of a later offer's priority that an offer
	// made now costs it (the client's patience): when the best product's
	// moment has not come, another product is offered now as well only
	// when its priority is above that share of the later one's; at 0 any
	// product that clears every gate now is.
	LaterFatigue float64 `yaml:"later_fatigue"`
}

// Timing says where the client's preferred contact hours are read.
type Timing struct {
	// ContactHoursFeature names the string feature holding a client's
	// preferred hours on a channel, "HH:MM-HH:MM"; {channel} is replaced
	// by the channel's name.
	ContactHoursFeature string `yaml:"contact_hours_feature"`
}

// The interaction reasons and stages a tier's contexts may name.
var (
	Reasons = []string{"sales_enquiry", "service", "other"}
	Stages  = []string{"unspecified", "opening", "in_progress", "resolved", "wrap_up"}
)

// Default returns the embedded default policy, checked against the
// catalog and schema.
func Default(cat *catalog.Catalog, schema *features.Schema) (*Policy, error) {
	return Parse(defaultYAML, cat, schema)
}

// Parse reads a YAML policy and checks it against the catalog and the
// feature schema, reporting every problem.
func Parse(data []byte, cat *catalog.Catalog, schema *features.Schema) (*Policy, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	p := Policy{Load: load.DefaultConfig(), Timing: Timing{ContactHoursFeature: "contact_hours_{channel}"}}
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if err := p.compile(cat, schema); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return &p, nil
}

func (p *Policy) compile(cat *catalog.Catalog, schema *features.Schema) error {
	var errs []error
	bad := func(at, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", at, fmt.Sprintf(format, args...)))
	}
	env, err := catalog.Env(schema)
	if err != nil {
		return err
	}
	if len(p.Tiers) == 0 {
		bad("tiers", "none")
	}
	seen := map[string]bool{}
	for i := range p.Tiers {
		t := &p.Tiers[i]
		at := fmt.Sprintf("tiers[%d]", i)
		if t.Name == "" {
			bad(at+".name", "empty")
		} else if seen[t.Name] {
			bad(at+".name", "duplicate %q", t.Name)
		}
		seen[t.Name] = true
		last := i == len(p.Tiers)-1
		switch {
		case last && t.When != "":
			bad(at+".when", "the last tier takes every other client and has no rule")
		case !last && t.When == "":
			bad(at+".when", "empty: only the last tier may have no rule")
		case t.When != "":
			if t.prg, err = catalog.Compile(env, t.When); err != nil {
				bad(at+".when", "%v", err)
			}
		}
		if !(t.MinPropensity >= 0 && t.MinPropensity <= 1) {
			bad(at+".min_propensity", "%v not in 0..1", t.MinPropensity)
		}
		if t.CoolDownDays < 0 || t.CoolDownDays > catalog.MaxCoolDownDays {
			bad(at+".cool_down_days", "%d not in 0..%d", t.CoolDownDays, catalog.MaxCoolDownDays)
		}
		t.caps = map[catalog.Channel][]features.Cap{}
		if _, ok := t.Caps["default"]; !ok {
			bad(at+".caps.default", "missing")
		}
		for ch, c := range t.Caps {
			cat := at + ".caps." + ch
			if ch != "default" && !slices.Contains(catalog.Channels, catalog.Channel(ch)) {
				bad(cat, "unknown channel %q", ch)
			}
			var caps []features.Cap
			for _, w := range []struct {
				key  string
				n    *int
				days int
			}{{"per_7_days", c.Per7Days, 7}, {"per_30_days", c.Per30Days, 30}} {
				switch {
				case w.n == nil:
					bad(cat+"."+w.key, "missing")
				case *w.n < 0:
					bad(cat+"."+w.key, "%d is negative", *w.n)
				default:
					caps = append(caps, features.Cap{Window: time.Duration(w.days) * 24 * time.Hour, Max: *w.n})
				}
			}
			t.caps[catalog.Channel(ch)] = caps
		}
		for reason, stages := range t.Contexts {
			cat := at + ".contexts." + reason
			if reason == "complaint" {
				bad(cat, "a complaint never allows a pitch")
			} else if !slices.Contains(Reasons, reason) {
				bad(cat, "unknown interaction reason (one of %s)", strings.Join(Reasons, ", "))
			}
			for _, s := range stages {
				if s != "any" && !slices.Contains(Stages, s) {
					bad(cat, "unknown stage %q (one of %s, any)", s, strings.Join(Stages, ", "))
				}
			}
		}
	}
	a := &p.Arbitration
	for ch, w := range a.ChannelWeights {
		if !slices.Contains(catalog.Channels, catalog.Channel(ch)) {
			bad("arbitration.channel_weights."+ch, "unknown channel")
		}
		weight(&errs, "arbitration.channel_weights."+ch, w)
	}
	for s, w := range a.StageWeights {
		if !slices.Contains(Stages, s) {
			bad("arbitration.stage_weights."+s, "unknown stage")
		}
		weight(&errs, "arbitration.stage_weights."+s, w)
	}
	for id, w := range a.Levers {
		if _, ok := cat.Product(id); !ok {
			bad("arbitration.levers."+id, "unknown product %q", id)
		}
		weight(&errs, "arbitration.levers."+id, w)
	}
	weight(&errs, "arbitration.cost_per_handling_second", a.CostPerHandlingSecond)
	weight(&errs, "arbitration.load_cost_weight", a.LoadCostWeight)
	weight(&errs, "arbitration.later_fatigue", a.LaterFatigue)
	if err := p.Load.Validate("load"); err != nil {
		errs = append(errs, err)
	}
	// The tier feature names tiers: an enumeration of it may list only
	// this policy's tiers.
	if fl, ok := schema.Field("tier"); ok {
		for _, v := range fl.Values {
			if p.tierNamed(v) == nil {
				bad("tiers", "the feature schema lets the feature tier be %q, which names no tier here", v)
			}
		}
	}
	if f := p.Timing.ContactHoursFeature; f != "" {
		for _, ch := range catalog.Channels {
			name := strings.ReplaceAll(f, "{channel}", string(ch))
			if fl, ok := schema.Field(name); ok && fl.Kind() != features.KindString {
				bad("timing.contact_hours_feature", "feature %q is a %s, not a string", name, fl.Kind())
			}
		}
	}
	return errors.Join(errs...)
}

func weight(errs *[]error, at string, w float64) {
	if !(w >= 0) || math.IsInf(w, 0) || w > 1e6 {
		*errs = append(*errs, fmt.Errorf("%s: %v is not a weight (0..1e6)", at, w))
	}
}

// TierOf returns the client's tier: the one the feature "tier" names, else
// the first whose rule holds, else the last. A rule that reads a feature
// the client lacks does not hold. On a record from the feature cache the
// answer is kept with the record (once per client and policy).
func (p *Policy) TierOf(rec *features.Record) *Tier {
	if t, ok := rec.Memo(p); ok {
		return t.(*Tier)
	}
	t := p.tierOf(rec)
	rec.Memoize(p, t)
	return t
}

func (p *Policy) tierOf(rec *features.Record) *Tier {
	if t := p.tierNamed(rec.Str("tier")); t != nil {
		return t
	}
	act := catalog.Activation(rec)
	for i := range p.Tiers[:len(p.Tiers)-1] {
		out, _, err := p.Tiers[i].prg.Eval(act)
		if err == nil && out.Value() == true {
			return &p.Tiers[i]
		}
	}
	return &p.Tiers[len(p.Tiers)-1]
}

// Tier returns the tier of a name, or the last tier when none has it.
func (p *Policy) Tier(name string) *Tier {
	if t := p.tierNamed(name); t != nil {
		return t
	}
	return &p.Tiers[len(p.Tiers)-1]
}

// tierNamed returns the tier of a name, nil when none has it.
func (p *Policy) tierNamed(name string) *Tier {
	for i := range p.Tiers {
		if p.Tiers[i].Name == name {
			return &p.Tiers[i]
		}
	}
	return nil
}

// Caps returns the tier's caps on a channel.
func (t *Tier) CapsFor(ch catalog.Channel) []features.Cap {
	if c, ok := t.caps[ch]; ok {
		return c
	}
	return t.caps["default"]
}

// Allows reports whether the tier allows a pitch in a contact of this
// reason and stage (reason "unspecified" counts as "other").
func (t *Tier) Allows(reason, stage string) bool {
	if reason == "unspecified" {
		reason = "other"
	}
	stages, ok := t.Contexts[reason]
	return ok && (slices.Contains(stages, "any") || slices.Contains(stages, stage))
}

// Weight returns the context weight of a channel and stage.
func (a *Arbitration) Weight(ch catalog.Channel, stage string) float64 {
	w := 1.0
	if x, ok := a.ChannelWeights[string(ch)]; ok {
		w *= x
	}
	if x, ok := a.StageWeights[stage]; ok {
		w *= x
	}
	return w
}

// Lever returns the product's lever (1 when none is set).
func (a *Arbitration) Lever(productID string) float64 {
	if x, ok := a.Levers[productID]; ok {
		return x
	}
	return 1
}

// Cost is what a pitch of handlingSeconds costs at a queue pressure.
func (a *Arbitration) Cost(handlingSeconds, pressure float64) float64 {
	return handlingSeconds * a.CostPerHandlingSecond * (1 + a.LoadCostWeight*pressure)
}

// ContactHours returns the feature holding the client's preferred hours
// on a channel, or "" when none is configured.
func (p *Policy) ContactHours(ch catalog.Channel) string {
	if p.Timing.ContactHoursFeature == "" {
		return ""
	}
	return strings.ReplaceAll(p.Timing.ContactHoursFeature, "{channel}", string(ch))
}
