package catalog

import (
	"strings"
	"testing"
	"time"

	"github.com/tact-nba/tact/features"
)

const schemaYAML = `
features:
  - {name: age, type: number}
  - {name: income, type: number}
  - {name: segment, type: string}
  - {name: maturity, type: time}
  - {name: payday, type: number}
  - {name: holds_a, type: bool}
  - {name: holds_z, type: bool}
  - {name: has_a, type: bool}
  - {name: holds_c, type: bool}
`

func testSchema(t *testing.T) *features.Schema {
	t.Helper()
	s, err := features.ReadSchema(strings.NewReader(schemaYAML))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseReportsEveryProblem(t *testing.T) {
	_, err := Parse([]byte(`
products:
  - {id: a, name: A, value: 1, channels: [web]}
  - {id: a, name: A again, value: 1, channels: [web]}
  - {id: b, value: -1, channels: [fax], held_feature: nope}
  - id: c
    name: C
    value: 1
    eligibility:
      - {when: "income >= ", why: broken}
      - {when: "incme >= 10", why: typo}
      - {when: "age", why: not a bool}
      - {when: "age > 3"}
    cool_down_days: -1
    talking_points: ["Hello {missing}"]
    timing:
      need: {lead_days: -1}
      payday: {day_feature: segment, within_days: 40}
  - {id: "Bad Id", name: X, value: 1, channels: [web]}
`), testSchema(t))
	if err == nil {
		t.Fatal("Parse accepted a bad catalog")
	}
	for _, want := range []string{
		"products[a].id: duplicate", "products[b].name", "products[b].value", `unknown channel "fax"`,
		`products[b].held_feature: feature "nope" is not in the feature schema`,
		"products[c].channels: empty", "products[c].eligibility[0].when", "undeclared reference to 'incme'",
		"products[c].eligibility[2].when: is double, not bool", "products[c].eligibility[3].why",
		"products[c].cool_down_days", "products[c].talking_points[0]: {missing}",
		"products[c].timing.need: set exactly one", "products[c].timing.need.what",
		`products[c].timing.payday.day_feature: feature "segment" is a string`, "products[c].timing.payday.within_days",
		`"Bad Id" is not an id`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if _, err := Parse([]byte("products: []"), testSchema(t)); err == nil {
		t.Error("empty catalog accepted")
	}
	if _, err := Parse([]byte("products: [{id: a, nme: A}]"), testSchema(t)); err == nil || !strings.Contains(err.Error(), "nme") {
		t.Errorf("unknown key: %v, want an error naming it", err)
	}
}

func TestCatalogLookupAndEligibility(t *testing.T) {
	c, err := Parse([]byte(`
currency: EUR
products:
  - {id: z, name: Z, value: 1, channels: [web, branch]}
  - id: a
    name: A
    value: 2
    currency: USD
    channels: [all]
    held_feature: has_a
    eligibility:
      - {when: "age >= 18 && segment != 'staff'", why: adults outside staff only}
      - {when: "maturity < timestamp('2027-01-01T00:00:00Z')", why: matures too late}
`), testSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	if ps := c.Products(); ps[0].ID != "a" || ps[1].ID != "z" {
		t.Errorf("products not ordered by id: %v", ps)
	}
	z, ok := c.Product("z")
	if !ok || z.HeldFeature != "holds_z" || !z.SoldOn(Branch) || z.SoldOn(Email) || z.Currency != "EUR" {
		t.Errorf("Product(z) = %+v, %v", z, ok)
	}
	a, _ := c.Product("a")
	if a.HeldFeature != "has_a" || len(a.Channels) != len(Channels) || a.Currency != "USD" {
		t.Errorf("Product(a) = %+v", a)
	}
	if _, ok := c.Product("nope"); ok {
		t.Error("unknown product found")
	}
	soon := features.Time(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	tests := []struct {
		name string
		vals map[string]features.Value
		ok   bool
		why  string
	}{
		{"eligible", map[string]features.Value{"age": features.Number(30), "segment": features.String("retail"), "maturity": soon}, true, ""},
		{"too young", map[string]features.Value{"age": features.Number(17), "segment": features.String("retail"), "maturity": soon}, false, "adults outside staff only"},
		{"staff", map[string]features.Value{"age": features.Number(40), "segment": features.String("staff"), "maturity": soon}, false, "adults outside staff only"},
		{"matures late", map[string]features.Value{"age": features.Number(40), "segment": features.String("retail"), "maturity": features.Time(time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC))}, false, "matures too late"},
		{"feature missing", map[string]features.Value{"age": features.Number(40)}, false, "adults outside staff only (a feature it needs is missing)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := features.Record{ClientID: "c", Values: tt.vals}
			why, ok := a.Eligible(&rec)
			if ok != tt.ok || why != tt.why {
				t.Errorf("Eligible = %q, %v; want %q, %v", why, ok, tt.why, tt.ok)
			}
		})
	}
	if !PhoneOutbound.Outbound() || !Email.Outbound() || PhoneInbound.Outbound() {
		t.Error("Outbound wrong")
	}
}
