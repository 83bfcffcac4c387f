package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model/catalog"
	"github.com/tact-nba/tact/model/load"
)

// Overrides are the policy parameters an experiment's variant may change.
// A field left out keeps the policy's value.
type Overrides struct {
	// Tiers by name.
	Tiers map[string]TierOverrides `json:"tiers,omitempty"`
	// Load: the busy and calm thresholds.
	Load *LoadOverrides `json:"load,omitempty"`
	// Levers by product id, merged into the policy's levers.
	Levers map[string]float64 `json:"levers,omitempty"`
}

// TierOverrides change one tier.
type TierOverrides struct {
	MinPropensity *float64 `json:"min_propensity,omitempty"`
	CoolDownDays  *int     `json:"cool_down_days,omitempty"`
	PitchWhenBusy *bool    `json:"pitch_when_busy,omitempty"`
	// Caps by channel ("default" too), each replacing the policy's cap
	// on that channel.
	Caps map[string]Cap `json:"caps,omitempty"`
}

// LoadOverrides change when a queue counts as busy: each threshold given
// replaces the policy's (calls_waiting, longest_wait_seconds,
// service_level); the others stay.
type LoadOverrides struct {
	BusyWhen json.RawMessage `json:"busy_when,omitempty"`
	CalmWhen json.RawMessage `json:"calm_when,omitempty"`
}

// With returns a copy of the policy with the overrides applied and checked
// like a policy file (errors name the policy's keys), and the ways in
// which the copy protects a protected tier less than p does (a lower bar,
// more offers, a shorter cool-down, a pitch when busy, a busy period
// declared later). p is not changed.
func (p *Policy) With(o *Overrides, cat *catalog.Catalog, schema *features.Schema) (*Policy, []string, error) {
	q := *p
	q.Tiers = slices.Clone(p.Tiers)
	q.Load.BusyWindows = slices.Clone(p.Load.BusyWindows)
	var errs []error
	names := slices.Sorted(maps.Keys(o.Tiers))
	for _, name := range names {
		to := o.Tiers[name]
		i := slices.IndexFunc(q.Tiers, func(t Tier) bool { return t.Name == name })
		if i < 0 {
			errs = append(errs, fmt.Errorf("tiers.%s: no such tier in the policy", name))
			continue
		}
		t := &q.Tiers[i]
		if to.MinPropensity != nil {
			t.MinPropensity = *to.MinPropensity
		}
		if to.CoolDownDays != nil {
			t.CoolDownDays = *to.CoolDownDays
		}
		if to.PitchWhenBusy != nil {
			t.PitchWhenBusy = *to.PitchWhenBusy
		}
		if to.Caps != nil {
			t.Caps = maps.Clone(t.Caps)
			maps.Copy(t.Caps, to.Caps)
		}
	}
	if o.Load != nil {
		for _, th := range []struct {
			key string
			raw json.RawMessage
			to  *load.Thresholds
		}{{"load.busy_when", o.Load.BusyWhen, &q.Load.BusyWhen}, {"load.calm_when", o.Load.CalmWhen, &q.Load.CalmWhen}} {
			if th.raw == nil {
				continue
			}
			dec := json.NewDecoder(bytes.NewReader(th.raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(th.to); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", th.key, err))
			}
		}
	}
	if o.Levers != nil {
		q.Arbitration.Levers = maps.Clone(q.Arbitration.Levers)
		if q.Arbitration.Levers == nil {
			q.Arbitration.Levers = map[string]float64{}
		}
		maps.Copy(q.Arbitration.Levers, o.Levers)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	if err := q.compile(cat, schema); err != nil {
		return nil, nil, err
	}
	return &q, p.weakerIn(&q), nil
}

// weakerIn lists how q protects p's protected tiers less than p does.
func (p *Policy) weakerIn(q *Policy) []string {
	var out []string
	for i := range p.Tiers {
		a, b := &p.Tiers[i], &q.Tiers[i]
		if !a.Protected {
			continue
		}
		at := "tiers." + a.Name
		if b.MinPropensity < a.MinPropensity {
			out = append(out, fmt.Sprintf("%s.min_propensity %v below %v", at, b.MinPropensity, a.MinPropensity))
		}
		if b.CoolDownDays < a.CoolDownDays {
			out = append(out, fmt.Sprintf("%s.cool_down_days %d below %d", at, b.CoolDownDays, a.CoolDownDays))
		}
		if b.PitchWhenBusy && !a.PitchWhenBusy {
			out = append(out, at+".pitch_when_busy allowed")
		}
		for _, ch := range catalog.Channels {
			ca, cb := a.CapsFor(ch), b.CapsFor(ch)
			for k := range min(len(ca), len(cb)) {
				if cb[k].Max > ca[k].Max {
					out = append(out, fmt.Sprintf("%s.caps.%s: %d offers per %d days, above %d", at, ch, cb[k].Max, int(cb[k].Window.Hours()/24), ca[k].Max))
				}
			}
		}
		if !a.PitchWhenBusy && laterBusy(&p.Load, &q.Load) {
			out = append(out, at+": the load thresholds declare a busy period later than the policy's")
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// laterBusy reports whether q's thresholds call a queue busy later, or
// calm sooner, than p's on any measure.
func laterBusy(p, q *load.Config) bool {
	later := func(a, b load.Thresholds) bool {
		return (a.CallsWaiting > 0 && (b.CallsWaiting == 0 || b.CallsWaiting > a.CallsWaiting)) ||
			(a.LongestWaitSeconds > 0 && (b.LongestWaitSeconds == 0 || b.LongestWaitSeconds > a.LongestWaitSeconds)) ||
			(a.ServiceLevel > 0 && b.ServiceLevel < a.ServiceLevel)
	}
	return later(p.BusyWhen, q.BusyWhen) || later(p.CalmWhen, q.CalmWhen)
}
