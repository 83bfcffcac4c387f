// Package catalog describes the products Tact may offer: what each is worth,
// where it may be sold, who is eligible (CEL expressions over the client's
// features, compiled once at load), how long to wait after a refusal, what
// the agent may say and when the client needs it.
//
// A catalog is read from YAML (Parse) and checked against the bank's
// feature schema: every problem is reported at once, named by its key. A
// Catalog is immutable once built and safe for concurrent use.
//
// The YAML form:
//
//	currency: EUR
//	products:
//	  - id: term_deposit                  # [a-z0-9_]+
//	    name: 12-month term deposit
//	    category: savings
//	    description: Fixed 3.0% for 12 months.
//	    value: 150                        # margin of one sale, per year
//	    channels: [all]                   # or e.g. [phone_inbound, branch]
//	    held_feature: holds_term_deposit  # default holds_<id>
//	    eligibility:                      # every rule must hold
//	      - {when: "balance >= 5000", why: "balance below the 5,000 minimum"}
//	    cool_down_days: 30                # after a refusal (the tier's may be longer)
//	    handling_seconds: 90              # extra agent time the pitch takes
//	    talking_points:
//	      - "Fixed 3.0% on part of the {balance} balance."
//	    timing:
//	      need: {days_feature: days_to_deposit_maturity, lead_days: 14, lag_days: 30,
//	             what: their term deposit matures}
//	      payday: {day_feature: payday, within_days: 5, what: payday}
package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/interpreter"
	"go.yaml.in/yaml/v3"

	"github.com/tact-nba/tact/features"
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

// Rule is one eligibility condition: a CEL expression over the client's
// features (each feature of the schema is a variable of its type: number
// as double, string, bool, time as timestamp) that must be true.
type Rule struct {
	When string `yaml:"when"`
	// Why is the sentence shown when the rule fails, e.g. "income below
	// 3,500".
	Why string `yaml:"why"`

	prg cel.Program
}

// Need is a product's moment of need, e.g. a deposit maturing: the feature
// DaysFeature holds the days until the moment (or DateFeature its date).
// The product is best offered from LeadDays before the moment to LagDays
// after it. A client without the feature has no such moment and may be
// offered the product at any time.
type Need struct {
	DaysFeature string `yaml:"days_feature"`
	DateFeature string `yaml:"date_feature"`
	LeadDays    int    `yaml:"lead_days"`
	LagDays     int    `yaml:"lag_days"`
	// What names the moment for people, e.g. "their term deposit matures".
	What string `yaml:"what"`
}

// Payday is a monthly moment: the feature DayFeature holds the day of the
// month the client is paid (1-31; past the month's end means its last
// day), and the product is best offered on that day or in the WithinDays
// after it.
type Payday struct {
	DayFeature string `yaml:"day_feature"`
	WithinDays int    `yaml:"within_days"`
	What       string `yaml:"what"`
}

// Timing holds a product's timing rules; both may be set.
type Timing struct {
	Need   *Need   `yaml:"need"`
	Payday *Payday `yaml:"payday"`
}

// Product is one entry of the catalog.
type Product struct {
	ID          string `yaml:"id"`
	Name        string `yaml:"name"`
	Category    string `yaml:"category"`
	Description string `yaml:"description"`
	// Value is the margin of one sale, in Currency units per year.
	Value    float64   `yaml:"value"`
	Currency string    `yaml:"currency"`
	Channels []Channel `yaml:"channels"`
	// HeldFeature is the boolean feature that is true when the client holds
	// the product (default "holds_<ID>").
	HeldFeature string `yaml:"held_feature"`
	Eligibility []Rule `yaml:"eligibility"`
	// CoolDownDays is how long after the client refuses the product it is
	// not offered again (the tier's cool-down applies when longer).
	CoolDownDays int `yaml:"cool_down_days"`
	// HandlingSeconds is the extra agent time a pitch takes; arbitration
	// weighs it by the current load.
	HandlingSeconds float64 `yaml:"handling_seconds"`
	// TalkingPoints are sentences with {feature} placeholders filled from
	// the client's features; a sentence whose feature is missing is skipped.
	TalkingPoints []string `yaml:"talking_points"`
	Timing        Timing   `yaml:"timing"`
}

// SoldOn reports whether the product may be sold on the channel.
func (p *Product) SoldOn(ch Channel) bool { return slices.Contains(p.Channels, ch) }

// Eligible evaluates the product's rules for a client. When a rule fails
// (or reads a feature the client lacks) it returns the rule's sentence.
func (p *Product) Eligible(rec *features.Record) (why string, ok bool) {
	act := activation{rec}
	for i := range p.Eligibility {
		r := &p.Eligibility[i]
		out, _, err := r.prg.Eval(act)
		if err != nil {
			return r.Why + " (" + missingWords(err) + ")", false
		}
		if b, isBool := out.Value().(bool); !isBool || !b {
			return r.Why, false
		}
	}
	return "", true
}

func missingWords(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "no such attribute"); i >= 0 {
		return "a feature it needs is missing"
	}
	return "could not be evaluated"
}

// Activation lets a CEL program compiled in Env read a client's features
// without copying them.
func Activation(rec *features.Record) interpreter.Activation { return activation{rec} }

type activation struct{ rec *features.Record }

func (a activation) ResolveName(name string) (any, bool) {
	v, ok := a.rec.Value(name)
	if !ok {
		return nil, false
	}
	switch v.Kind {
	case features.KindNumber:
		return v.Num, true
	case features.KindString:
		return v.Str, true
	case features.KindBool:
		return v.Bool, true
	case features.KindTime:
		return v.Time, true
	}
	return nil, false
}

func (a activation) Parent() interpreter.Activation { return nil }

// MaxCoolDownDays bounds a cool-down: the decision engine reads a year of
// contact history.
const MaxCoolDownDays = 365

// Catalog is a validated set of products, ordered by id.
type Catalog struct {
	products []Product
	byID     map[string]int
}

// File is the YAML form of a catalog.
type File struct {
	// Currency is the default currency of the products' values.
	Currency string    `yaml:"currency"`
	Products []Product `yaml:"products"`
}

// Parse reads a YAML catalog and builds it against the feature schema.
func Parse(data []byte, schema *features.Schema) (*Catalog, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	for i := range f.Products {
		if f.Products[i].Currency == "" {
			f.Products[i].Currency = f.Currency
		}
	}
	return New(f.Products, schema)
}

var (
	idPattern          = regexp.MustCompile(`^[a-z0-9][a-z0-9_]{0,63}$`)
	placeholderPattern = regexp.MustCompile(`\{([^{}]*)\}`)
)

// Env returns the CEL environment of a feature schema: one variable per
// feature, numbers compared across int and double.
func Env(schema *features.Schema) (*cel.Env, error) {
	opts := []cel.EnvOption{cel.CrossTypeNumericComparisons(true)}
	for _, f := range schema.Fields {
		var t *cel.Type
		switch f.Kind() {
		case features.KindNumber:
			t = cel.DoubleType
		case features.KindString:
			t = cel.StringType
		case features.KindBool:
			t = cel.BoolType
		case features.KindTime:
			t = cel.TimestampType
		default:
			continue
		}
		opts = append(opts, cel.Variable(f.Name, t))
	}
	return cel.NewEnv(opts...)
}

// Compile compiles a boolean CEL expression in env.
func Compile(env *cel.Env, expr string) (cel.Program, error) {
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, errors.New(strings.ReplaceAll(iss.Err().Error(), "\n", " "))
	}
	if ast.OutputType() != cel.BoolType {
		return nil, fmt.Errorf("is %s, not bool", ast.OutputType())
	}
	return env.Program(ast, cel.EvalOptions(cel.OptOptimize))
}

// New validates the products against the feature schema, compiles their
// rules and builds a catalog. Every problem is reported, naming the
// product and field.
func New(products []Product, schema *features.Schema) (*Catalog, error) {
	if schema == nil {
		return nil, errors.New("catalog: no feature schema")
	}
	env, err := Env(schema)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	var errs []error
	bad := func(at, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", at, fmt.Sprintf(format, args...)))
	}
	feature := func(at, name string, kinds ...features.Kind) {
		f, ok := schema.Field(name)
		switch {
		case name == "":
			bad(at, "empty")
		case !ok:
			bad(at, "feature %q is not in the feature schema", name)
		case !slices.Contains(kinds, f.Kind()):
			bad(at, "feature %q is a %s", name, f.Kind())
		}
	}
	c := &Catalog{products: slices.Clone(products), byID: make(map[string]int, len(products))}
	slices.SortStableFunc(c.products, func(a, b Product) int { return strings.Compare(a.ID, b.ID) })
	for i := range c.products {
		p := &c.products[i]
		at := fmt.Sprintf("products[%s]", p.ID)
		if !idPattern.MatchString(p.ID) {
			bad(fmt.Sprintf("products[%d].id", i), "%q is not an id (lower-case letters, digits, _; at most 64)", p.ID)
		} else if _, dup := c.byID[p.ID]; dup {
			bad(at+".id", "duplicate")
		}
		c.byID[p.ID] = i
		if p.Name == "" {
			bad(at+".name", "empty")
		}
		if !(p.Value >= 0) || math.IsInf(p.Value, 0) {
			bad(at+".value", "%v is not a non-negative number", p.Value)
		}
		if slices.Contains(p.Channels, "all") {
			p.Channels = slices.Clone(Channels)
		}
		if len(p.Channels) == 0 {
			bad(at+".channels", "empty")
		}
		for _, ch := range p.Channels {
			if !slices.Contains(Channels, ch) {
				bad(at+".channels", "unknown channel %q", ch)
			}
		}
		if p.HeldFeature == "" {
			p.HeldFeature = "holds_" + p.ID
		}
		feature(at+".held_feature", p.HeldFeature, features.KindBool)
		p.Eligibility = slices.Clone(p.Eligibility)
		for j := range p.Eligibility {
			r := &p.Eligibility[j]
			rat := fmt.Sprintf("%s.eligibility[%d]", at, j)
			if r.Why == "" {
				bad(rat+".why", "empty: the agent must be told why")
			}
			prg, err := Compile(env, r.When)
			if err != nil {
				bad(rat+".when", "%v", err)
				continue
			}
			r.prg = prg
		}
		if p.CoolDownDays < 0 || p.CoolDownDays > MaxCoolDownDays {
			bad(at+".cool_down_days", "%d not in 0..%d", p.CoolDownDays, MaxCoolDownDays)
		}
		if !(p.HandlingSeconds >= 0) || p.HandlingSeconds > 3600 {
			bad(at+".handling_seconds", "%v not in 0..3600", p.HandlingSeconds)
		}
		for j, tp := range p.TalkingPoints {
			for _, m := range placeholderPattern.FindAllStringSubmatch(tp, -1) {
				if _, ok := schema.Field(m[1]); !ok {
					bad(fmt.Sprintf("%s.talking_points[%d]", at, j), "{%s} is not in the feature schema", m[1])
				}
			}
		}
		if n := p.Timing.Need; n != nil {
			nat := at + ".timing.need"
			switch {
			case (n.DaysFeature == "") == (n.DateFeature == ""):
				bad(nat, "set exactly one of days_feature and date_feature")
			case n.DaysFeature != "":
				feature(nat+".days_feature", n.DaysFeature, features.KindNumber)
			default:
				feature(nat+".date_feature", n.DateFeature, features.KindTime)
			}
			if n.LeadDays < 0 || n.LagDays < 0 {
				bad(nat, "lead_days and lag_days must not be negative")
			}
			if n.What == "" {
				bad(nat+".what", "empty: name the moment for the agent")
			}
		}
		if pd := p.Timing.Payday; pd != nil {
			feature(at+".timing.payday.day_feature", pd.DayFeature, features.KindNumber)
			if pd.WithinDays < 0 || pd.WithinDays > 27 {
				bad(at+".timing.payday.within_days", "%d not in 0..27", pd.WithinDays)
			}
			if pd.What == "" {
				pd.What = "payday"
			}
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

// Verdicts returns, for each product in catalog order, "" when the client
// meets its eligibility rules, else the sentence of the first rule that
// fails. On a record from the feature cache the verdicts are kept with
// the record, so a client's rules run once per catalog, not per decision.
// The slice must not be modified.
func (c *Catalog) Verdicts(rec *features.Record) []string {
	if v, ok := rec.Memo(c); ok {
		return v.([]string)
	}
	out := make([]string, len(c.products))
	for i := range c.products {
		if why, ok := c.products[i].Eligible(rec); !ok {
			out[i] = why
		}
	}
	rec.Memoize(c, out)
	return out
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
