// Package catalog describes the products Tact may offer: what each is worth,
// where it may be sold, who is eligible and when a client needs it.
//
// A Catalog is immutable once built and safe for concurrent use.
package catalog

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Channel is where a contact takes place. The names are those of the API
// without the CHANNEL_ prefix, in lower case.
type Channel string

// The channels Tact knows.
const (
	PhoneInbound  Channel = "phone_inbound"
	PhoneOutbound Channel = "phone_outbound"
	Branch        Channel = "branch"
	Web           Channel = "web"
	MobileApp     Channel = "mobile_app"
	Chat          Channel = "chat"
	Email         Channel = "email"
)

// Channels lists every channel, in API order.
var Channels = []Channel{PhoneInbound, PhoneOutbound, Branch, Web, MobileApp, Chat, Email}

// Outbound reports whether the bank starts the contact on this channel, so
// that the client's consent to outbound offers is needed.
func (c Channel) Outbound() bool { return c == PhoneOutbound || c == Email }

// Rule is one eligibility condition: the numeric feature must be present and
// within [Min, Max] (a nil bound is open).
type Rule struct {
	Feature string
	Min     *float64
	Max     *float64
	// Why is the sentence shown when the rule fails, e.g. "income below 3,500".
	Why string
}

// Need is a product's moment of need, e.g. a deposit maturing. DaysFeature
// holds the days until the moment; the product is best offered from
// LeadDays before it to LagDays after it. A client without the feature has
// no such moment and may be offered the product at any time.
type Need struct {
	DaysFeature string
	LeadDays    int
	LagDays     int
	// What names the moment for people, e.g. "their term deposit matures".
	What string
}

// Product is one entry of the catalog.
type Product struct {
	ID          string
	Name        string
	Category    string
	Description string
	// Value is the margin of one sale, in Currency units per year.
	Value    float64
	Currency string
	Channels []Channel
	// HeldFeature is the boolean feature that is true when the client holds
	// the product (default "holds_<ID>").
	HeldFeature string
	Requires    []Rule
	Need        *Need
	// TalkingPoints are sentences with {feature} placeholders filled from
	// the client's features; a sentence whose feature is missing is skipped.
	TalkingPoints []string
}

// SoldOn reports whether the product may be sold on the channel.
func (p *Product) SoldOn(ch Channel) bool { return slices.Contains(p.Channels, ch) }

// Catalog is a validated set of products, ordered by id.
type Catalog struct {
	products []Product
	byID     map[string]int
}

// New validates the products and builds a catalog. Every problem is
// reported, naming the product and field.
func New(products []Product) (*Catalog, error) {
	var errs []error
	c := &Catalog{products: slices.Clone(products), byID: make(map[string]int, len(products))}
	slices.SortFunc(c.products, func(a, b Product) int { return strings.Compare(a.ID, b.ID) })
	for i := range c.products {
		p := &c.products[i]
		at := fmt.Sprintf("products[%s]", p.ID)
		if p.ID == "" {
			errs = append(errs, fmt.Errorf("products[%d].id: empty", i))
		} else if _, dup := c.byID[p.ID]; dup {
			errs = append(errs, fmt.Errorf("%s.id: duplicate", at))
		}
		c.byID[p.ID] = i
		if p.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name: empty", at))
		}
		if !(p.Value >= 0) || math.IsInf(p.Value, 0) {
			errs = append(errs, fmt.Errorf("%s.value: %v is not a non-negative number", at, p.Value))
		}
		if len(p.Channels) == 0 {
			errs = append(errs, fmt.Errorf("%s.channels: empty", at))
		}
		for _, ch := range p.Channels {
			if !slices.Contains(Channels, ch) {
				errs = append(errs, fmt.Errorf("%s.channels: unknown channel %q", at, ch))
			}
		}
		if p.HeldFeature == "" {
			p.HeldFeature = "holds_" + p.ID
		}
		for j, r := range p.Requires {
			if r.Feature == "" {
				errs = append(errs, fmt.Errorf("%s.requires[%d].feature: empty", at, j))
			}
			if r.Min != nil && r.Max != nil && *r.Min > *r.Max {
				errs = append(errs, fmt.Errorf("%s.requires[%d]: min %v above max %v", at, j, *r.Min, *r.Max))
			}
		}
		if n := p.Need; n != nil && (n.DaysFeature == "" || n.LeadDays < 0 || n.LagDays < 0) {
			errs = append(errs, fmt.Errorf("%s.need: days_feature must be set and lead/lag days non-negative", at))
		}
	}
	if len(c.products) == 0 {
		errs = append(errs, errors.New("products: empty catalog"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("catalog: %w", errors.Join(errs...))
	}
	return c, nil
}

// Products returns the products ordered by id. The slice must not be
// modified.
func (c *Catalog) Products() []Product { return c.products }

// Product returns the product with the id.
func (c *Catalog) Product(id string) (*Product, bool) {
	i, ok := c.byID[id]
	if !ok {
		return nil, false
	}
	return &c.products[i], true
}
