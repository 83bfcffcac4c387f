package decision

import (
	"errors"
	"fmt"
	"math"

	"github.com/tact-nba/tact/features"
)

// Tier is a grade of client value and the protection that goes with it.
type Tier struct {
	// Name, e.g. "platinum".
	Name string
	// MinBalance is the lowest value of the feature "balance" that puts a
	// client in this tier; tiers are tried from the highest MinBalance down.
	MinBalance float64
	// MinPropensity is the lowest propensity worth a pitch, 0..1.
	MinPropensity float64
	// Protected tiers are never pitched in a service contact.
	Protected bool
}

// DefaultTiers are the tiers used when none are configured: higher tiers
// have a higher bar and are protected in service contacts.
func DefaultTiers() []Tier {
	return []Tier{
		{Name: "platinum", MinBalance: 250_000, MinPropensity: 0.40, Protected: true},
		{Name: "gold", MinBalance: 100_000, MinPropensity: 0.30, Protected: true},
		{Name: "silver", MinBalance: 25_000, MinPropensity: 0.20},
		{Name: "standard", MinBalance: 0, MinPropensity: 0.15},
	}
}

// ValidateTiers checks a tier list: names unique and non-empty, bars in
// 0..1, ordered by MinBalance from high to low, the last one catching
// every client (MinBalance 0 or less).
func ValidateTiers(tiers []Tier) error {
	var errs []error
	seen := map[string]bool{}
	for i, t := range tiers {
		if t.Name == "" {
			errs = append(errs, fmt.Errorf("tiers[%d].name: empty", i))
		} else if seen[t.Name] {
			errs = append(errs, fmt.Errorf("tiers[%d].name: duplicate %q", i, t.Name))
		}
		seen[t.Name] = true
		if !(t.MinPropensity >= 0 && t.MinPropensity <= 1) {
			errs = append(errs, fmt.Errorf("tiers[%d].min_propensity: %v not in 0..1", i, t.MinPropensity))
		}
		if math.IsNaN(t.MinBalance) {
			errs = append(errs, fmt.Errorf("tiers[%d].min_balance: not a number", i))
		}
		if i > 0 && t.MinBalance >= tiers[i-1].MinBalance {
			errs = append(errs, fmt.Errorf("tiers[%d].min_balance: %v must be below the previous tier's %v", i, t.MinBalance, tiers[i-1].MinBalance))
		}
	}
	if len(tiers) == 0 {
		errs = append(errs, errors.New("tiers: none"))
	} else if tiers[len(tiers)-1].MinBalance > 0 {
		errs = append(errs, fmt.Errorf("tiers[%d].min_balance: the last tier must catch every client (0)", len(tiers)-1))
	}
	return errors.Join(errs...)
}

// tierOf returns the client's tier: the feature "tier" when it names a
// known tier, else the first tier whose MinBalance the client's balance
// reaches (a missing balance counts as 0).
func tierOf(tiers []Tier, rec *features.Record) *Tier {
	if name := rec.Str("tier"); name != "" {
		for i := range tiers {
			if tiers[i].Name == name {
				return &tiers[i]
			}
		}
	}
	bal, _ := rec.Num("balance")
	for i := range tiers {
		if bal >= tiers[i].MinBalance {
			return &tiers[i]
		}
	}
	return &tiers[len(tiers)-1]
}
