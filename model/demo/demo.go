// Package demo is the demo bank that tactd serves with no configuration: a
// catalog of eight products, 1,000 clients made by a seeded generator, and
// one propensity model per product trained on the generator's simulated
// campaign history.
//
// The generator is deterministic: the same seed gives the same clients,
// the same history and so the same models, on every machine. How it works:
//
//   - each client C00001..C01000 gets an age (19-80), a monthly income
//     (log-normal, median about 2,400), a balance (log-normal, growing
//     with age), tenure, digital activity, consents and holdings drawn
//     with probabilities that depend on those;
//   - term-deposit holders get days_to_deposit_maturity (1-365);
//   - each client's true propensity for each product not held is a
//     logistic function of those features (see truth); one past campaign
//     offer per product is simulated as a coin flip with that propensity;
//   - a logistic regression per product is fitted by tact train on those
//     simulated answers (make_bundle.sh writes them out with tact
//     demo-data and trains each); the bundle is committed in bundle/ and
//     embedded. Tact serves the fitted models, not the truth.
package demo

import (
	"bytes"
	"context"
	"embed"
	"encoding/csv"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model"
	"github.com/tact-nba/tact/model/catalog"
)

// Seed is the generator's default seed.
const Seed = 20261123

// Clients is the number of demo clients.
const Clients = 1000

// asOf is the date the demo data describes; features are stamped with it.
var asOf = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// Inputs are the features the demo models read.
var Inputs = []string{
	"age", "income_monthly", "balance", "tenure_years", "digital_active",
	"num_products", "holds_mortgage", "holds_term_deposit", "deposit_matures_within_60d",
}

//go:embed catalog.yaml
var catalogYAML []byte

// CatalogYAML returns the demo catalog's YAML (catalog.yaml).
func CatalogYAML() []byte { return bytes.Clone(catalogYAML) }

// Catalog returns the demo catalog, checked against the demo schema.
func Catalog() (*catalog.Catalog, error) {
	schema, err := Schema()
	if err != nil {
		return nil, err
	}
	return catalog.Parse(catalogYAML, schema)
}

// truth is the simulated true log-odds of acceptance for a product.
func truth(product string, c *client) float64 {
	lg := func(x, ref float64) float64 { return math.Log(math.Max(x, 1) / ref) }
	d := b2f(c.digital)
	switch product {
	case "credit_card":
		return -1.6 + 0.9*d - 0.03*(c.age-40) + 0.4*lg(c.income, 2400)
	case "premium_card":
		return -2.2 + 1.6*lg(c.income, 4000) + 0.5*d
	case "savings_account":
		return -1.4 + 0.5*lg(c.balance, 10000) + 0.6*d
	case "term_deposit":
		return -2.0 + 0.04*(c.age-45) + 0.6*lg(c.balance, 20000)
	case "personal_loan":
		return -2.0 - 0.4*lg(c.balance, 10000) + 0.3*lg(c.income, 2400) - 0.02*(c.age-40)
	case "mortgage":
		return -2.6 - 0.006*(c.age-35)*(c.age-35) + 0.8*lg(c.income, 3000)
	case "home_insurance":
		return -2.4 + 2.2*b2f(c.holds["mortgage"]) + 0.02*(c.age-40)
	case "investment_fund":
		return -2.3 + 0.7*lg(c.balance, 50000) + 1.5*b2f(c.maturing60) + 0.02*(c.age-45)
	}
	return -10
}

type client struct {
	id                                string
	age, income, balance, tenure      float64
	digital, consent, consentOutbound bool
	holds                             map[string]bool
	maturityDays                      float64 // 0 when no term deposit
	maturing60                        bool
	payday                            float64 // day of month; 0 when unknown
	hours                             string  // preferred outbound call hours
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func generate(seed uint64) []client {
	g := newGenerator(seed)
	out := make([]client, Clients)
	for i := range out {
		g.next(&out[i])
	}
	return out
}

// generator draws clients C00001, C00002, ... in order: the first 1,000
// are the demo bank's, any number more follow the same laws.
type generator struct {
	rng, extra *rand.Rand
	n          int
}

var contactHours = []string{"09:00-12:00", "12:00-14:00", "17:00-20:00"}

func newGenerator(seed uint64) *generator {
	return &generator{
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		// Features the models do not read come from a stream of their
		// own, so that adding one leaves the clients, histories and
		// models unchanged.
		extra: rand.New(rand.NewPCG(seed^0x51ed270b, seed+7)),
	}
}

func (g *generator) next(c *client) {
	rng, extra := g.rng, g.extra
	g.n++
	*c = client{id: fmt.Sprintf("C%05d", g.n)}
	c.age = float64(19 + rng.IntN(62))
	c.income = math.Round(math.Exp(math.Log(2400)+0.55*rng.NormFloat64())/10) * 10
	c.balance = math.Round(math.Exp(math.Log(8000)+0.035*(c.age-19)+1.3*rng.NormFloat64())/10) * 10
	c.tenure = float64(rng.IntN(int(math.Min(c.age-18, 40)) + 1))
	c.digital = rng.Float64() < 0.9-0.01*(c.age-19)
	c.consent = rng.Float64() < 0.92
	c.consentOutbound = c.consent && rng.Float64() < 0.65
	c.holds = map[string]bool{
		"credit_card":     rng.Float64() < 0.35,
		"premium_card":    c.income > 3500 && rng.Float64() < 0.2,
		"savings_account": rng.Float64() < 0.3,
		"term_deposit":    c.balance > 5000 && rng.Float64() < 0.25+0.004*(c.age-19),
		"personal_loan":   rng.Float64() < 0.12,
		"mortgage":        c.age >= 25 && rng.Float64() < 0.22,
		"home_insurance":  rng.Float64() < 0.15,
		"investment_fund": c.balance > 20000 && rng.Float64() < 0.15,
	}
	if c.holds["term_deposit"] {
		c.maturityDays = float64(1 + rng.IntN(365))
		c.maturing60 = c.maturityDays <= 60
	}
	if extra.Float64() < 0.7 {
		c.payday = []float64{1, 15, 25, 28}[extra.IntN(4)]
	}
	if h := contactHours[extra.IntN(len(contactHours))]; c.consentOutbound && extra.Float64() < 0.5 {
		c.hours = h
	}
}

// WriteClientsCSV writes n demo clients (the demo bank's 1,000 first, then
// more drawn by the same laws) as a CSV for tact features import with the
// demo schema: client_id, then the schema's features in order; a feature
// the client lacks is left empty. It streams: memory does not grow with n.
func WriteClientsCSV(w io.Writer, seed uint64, n int) error {
	schema, err := Schema()
	if err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	header := []string{schema.IDColumn}
	for _, f := range schema.Fields {
		header = append(header, f.Name)
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	g := newGenerator(seed)
	row := make([]string, len(header))
	var c client
	for range n {
		g.next(&c)
		rec := c.record()
		row[0] = rec.ClientID
		for j, f := range schema.Fields {
			row[j+1] = ""
			if v, ok := rec.Value(f.Name); ok {
				switch v.Kind {
				case features.KindNumber:
					row[j+1] = strconv.FormatFloat(v.Num, 'g', -1, 64)
				case features.KindBool:
					row[j+1] = strconv.FormatBool(v.Bool)
				default:
					row[j+1] = v.Format()
				}
			}
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func (c *client) record() features.Record {
	n := 0
	for _, h := range c.holds {
		if h {
			n++
		}
	}
	v := map[string]features.Value{
		"age":                        features.Number(c.age),
		"income_monthly":             features.Number(c.income),
		"balance":                    features.Number(c.balance),
		"tenure_years":               features.Number(c.tenure),
		"digital_active":             features.Bool(c.digital),
		"consent_offers":             features.Bool(c.consent),
		"consent_outbound":           features.Bool(c.consentOutbound),
		"num_products":               features.Number(float64(n)),
		"deposit_matures_within_60d": features.Bool(c.maturing60),
	}
	for p, h := range c.holds {
		v["holds_"+p] = features.Bool(h)
	}
	if c.maturityDays > 0 {
		v["days_to_deposit_maturity"] = features.Number(c.maturityDays)
	}
	if c.payday > 0 {
		v["payday"] = features.Number(c.payday)
	}
	if c.hours != "" {
		v["contact_hours_phone_outbound"] = features.String(c.hours)
	}
	return features.Record{ClientID: c.id, Values: v, UpdatedAt: asOf}
}

// Bank is the whole demo: catalog, clients and the model bundle.
type Bank struct {
	Catalog *catalog.Catalog
	Clients []features.Record
	// Bundle is the demo model bundle (model/demo/bundle), trained by
	// tact train on the histories of the default Seed.
	Bundle *model.Bundle
}

//go:embed bundle challenger
var bundleFS embed.FS

// ChallengerVersion is the version of the demo's second bundle
// (model/demo/challenger: the same data, trained with L2 1), for
// champion/challenger experiments.
const ChallengerVersion = "demo-2-challenger"

// Bundles returns the demo's bundle of a version: the one served
// (New's Bundle) or the challenger.
func Bundles(version string) (*model.Bundle, error) {
	for _, dir := range []string{"bundle", "challenger"} {
		b, err := model.LoadBundle(bundleFS, dir)
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		if b.Version() == version {
			return b, nil
		}
	}
	return nil, fmt.Errorf("no demo model bundle has version %q (the demo has demo-2 and %s)", version, ChallengerVersion)
}

//go:embed schema.yaml
var schemaYAML []byte

// Schema returns the demo bank's feature schema (schema.yaml).
func Schema() (*features.Schema, error) {
	return features.ReadSchema(bytes.NewReader(schemaYAML))
}

// BundleFS returns the embedded demo bundle; it is in the directory
// "bundle".
func BundleFS() fs.FS { return bundleFS }

// New generates the demo clients from a seed and loads the demo bundle.
func New(seed uint64) (*Bank, error) {
	cat, err := Catalog()
	if err != nil {
		return nil, err
	}
	b, err := model.LoadBundle(bundleFS, "bundle")
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	clients := generate(seed)
	recs := make([]features.Record, len(clients))
	for i := range clients {
		recs[i] = clients[i].record()
	}
	return &Bank{Catalog: cat, Clients: recs, Bundle: b}, nil
}

// History is one product's simulated past campaign: every client who did
// not hold the product was offered it once; Accepted says who said yes.
type History struct {
	Product  string
	Clients  []*features.Record
	Accepted []bool
}

// Histories simulates the past campaigns of every product, in catalog
// order, from a seed.
func Histories(seed uint64) ([]History, error) {
	cat, err := Catalog()
	if err != nil {
		return nil, err
	}
	clients := generate(seed)
	recs := make([]features.Record, len(clients))
	for i := range clients {
		recs[i] = clients[i].record()
	}
	rng := rand.New(rand.NewPCG(seed+1, seed^0x2545f4914f6cdd1d))
	var out []History
	for _, p := range cat.Products() {
		h := History{Product: p.ID}
		for i := range clients {
			if clients[i].holds[p.ID] {
				continue
			}
			h.Clients = append(h.Clients, &recs[i])
			h.Accepted = append(h.Accepted, rng.Float64() < 1/(1+math.Exp(-truth(p.ID, &clients[i]))))
		}
		out = append(out, h)
	}
	return out, nil
}

// Label is the label column of the training files WriteCSV writes.
const Label = "accepted"

// WriteCSV writes a history as a training file for tact train: a header
// of Inputs and "accepted", then one row per offer (booleans as 0/1,
// "yes"/"no" labels). Numbers are written exactly.
func (h *History) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(append(slices.Clone(Inputs), Label)); err != nil {
		return err
	}
	row := make([]string, len(Inputs)+1)
	for i, rec := range h.Clients {
		for j, name := range Inputs {
			x, ok := rec.Num(name)
			row[j] = ""
			if ok {
				row[j] = strconv.FormatFloat(x, 'g', -1, 64)
			}
		}
		row[len(Inputs)] = "no"
		if h.Accepted[i] {
			row[len(Inputs)] = "yes"
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// ClientPutter stores client features.
type ClientPutter interface {
	PutBatch(ctx context.Context, recs []features.Record) error
}

// Seed stores the demo clients.
func (b *Bank) Seed(ctx context.Context, store ClientPutter) error {
	if err := store.PutBatch(ctx, b.Clients); err != nil {
		return fmt.Errorf("demo: seed clients: %w", err)
	}
	return nil
}
