package policy

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model/catalog"
)

const schemaYAML = `
features:
  - {name: balance, type: number}
  - {name: tier, type: string}
  - {name: holds_card, type: bool}
`

func fixtures(t *testing.T, extra ...string) (*catalog.Catalog, *features.Schema) {
	t.Helper()
	s, err := features.ReadSchema(strings.NewReader(schemaYAML + strings.Join(extra, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Parse([]byte("products: [{id: card, name: Card, value: 100, channels: [all]}]"), s)
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

func TestDefaultPolicy(t *testing.T) {
	cat, schema := fixtures(t)
	p, err := Default(cat, schema)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		vals map[string]features.Value
		want string
	}{
		{map[string]features.Value{"balance": features.Number(300_000)}, "platinum"},
		{map[string]features.Value{"balance": features.Number(100_000)}, "gold"},
		{map[string]features.Value{"balance": features.Number(30_000)}, "silver"},
		{map[string]features.Value{"balance": features.Number(10)}, "standard"},
		{map[string]features.Value{}, "standard"}, // no balance: no rule holds
		{map[string]features.Value{"balance": features.Number(10), "tier": features.String("gold")}, "gold"},
		{map[string]features.Value{"balance": features.Number(10), "tier": features.String("diamond")}, "standard"},
	}
	for _, tt := range tests {
		rec := features.Record{ClientID: "c", Values: tt.vals}
		if got := p.TierOf(&rec).Name; got != tt.want {
			t.Errorf("TierOf(%v) = %s, want %s", tt.vals, got, tt.want)
		}
	}
	plat, std := &p.Tiers[0], &p.Tiers[3]
	if !plat.Protected || plat.PitchWhenBusy || std.Protected || !std.PitchWhenBusy {
		t.Error("default protection: platinum protected and never busy, standard neither")
	}
	if c := plat.CapsFor(catalog.Email); len(c) != 2 || c[0].Max != 0 {
		t.Errorf("platinum email caps %v, want none allowed", c)
	}
	if c := std.CapsFor(catalog.Web); len(c) != 2 || c[0] != (features.Cap{Window: 7 * 24 * time.Hour, Max: 2}) || c[1].Max != 5 {
		t.Errorf("standard web caps %v, want the default 2 a week, 5 a month", c)
	}
	for _, tc := range []struct {
		reason, stage string
		want          bool
	}{
		{"service", "in_progress", false}, {"service", "resolved", true}, {"sales_enquiry", "opening", true},
		{"unspecified", "unspecified", true}, {"complaint", "resolved", false},
	} {
		if got := plat.Allows(tc.reason, tc.stage); got != tc.want {
			t.Errorf("platinum allows %s/%s = %v, want %v", tc.reason, tc.stage, got, tc.want)
		}
	}
	a := &p.Arbitration
	if w := a.Weight(catalog.Web, "opening"); math.Abs(w-0.64) > 1e-12 {
		t.Errorf("weight web/opening = %v, want 0.64", w)
	}
	if a.Lever("card") != 1 || a.Cost(60, 0) != 3 || a.Cost(60, 1) != 12 {
		t.Errorf("lever %v cost %v/%v, want 1, 3, 12", a.Lever("card"), a.Cost(60, 0), a.Cost(60, 1))
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	cat, schema := fixtures(t, "  - {name: contact_hours_web, type: number}")
	_, err := Parse([]byte(`
tiers:
  - name: vip
    when: "balance >>> 3"
    min_propensity: 1.5
    cool_down_days: -2
    caps:
      default: {per_7_days: -1, per_30_days: 2}
      fax: {per_7_days: 1, per_30_days: 1}
    contexts:
      complaint: [any]
      gossip: [any]
      service: [later]
  - name: vip
    when: "balance > 1"
    caps: {web: {per_7_days: 1}}
arbitration:
  levers: {mortgage: 2, card: -1}
  channel_weights: {fax: 1}
load:
  busy_when: {calls_waiting: 5}
  calm_when: {calls_waiting: 9}
  time_zone: Nowhere/City
timing:
  contact_hours_feature: "contact_hours_{channel}"
`), cat, schema)
	if err == nil {
		t.Fatal("Parse accepted a bad policy")
	}
	for _, want := range []string{
		"tiers[0].when", "tiers[0].min_propensity", "tiers[0].cool_down_days", "tiers[0].caps.default.per_7_days: -1 is negative",
		`tiers[0].caps.fax: unknown channel`, "tiers[0].contexts.complaint: a complaint never allows a pitch",
		"tiers[0].contexts.gossip: unknown interaction reason", `tiers[0].contexts.service: unknown stage "later"`,
		`tiers[1].name: duplicate "vip"`, "tiers[1].when: the last tier", "tiers[1].caps.default: missing",
		"tiers[1].caps.web.per_30_days: missing", `arbitration.levers.mortgage: unknown product "mortgage"`,
		"arbitration.levers.card: -1 is not a weight", "arbitration.channel_weights.fax: unknown channel",
		"load.calm_when.calls_waiting", `load.time_zone: unknown time zone "Nowhere/City"`,
		`timing.contact_hours_feature: feature "contact_hours_web" is a number`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if _, err := Parse([]byte("tierz: []"), cat, schema); err == nil || !strings.Contains(err.Error(), "tierz") {
		t.Errorf("unknown key: %v, want an error naming it", err)
	}
}

// TestSchemaTierValuesNameTiers: an enumeration of the tier feature may
// list only the policy's tiers.
func TestSchemaTierValuesNameTiers(t *testing.T) {
	s, err := features.ReadSchema(strings.NewReader("features:\n  - {name: balance, type: number}\n  - {name: tier, type: string, values: [platinum, diamond]}\n  - {name: holds_card, type: bool}\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Parse([]byte("products: [{id: card, name: Card, value: 100, channels: [all]}]"), s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Default(c, s); err == nil || !strings.Contains(err.Error(), `"diamond", which names no tier`) {
		t.Errorf("a schema tier value that names no tier: %v", err)
	}
}
