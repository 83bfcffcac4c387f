package catalog

import (
	"strings"
	"testing"
)

func TestNewReportsEveryProblem(t *testing.T) {
	lo, hi := 10.0, 1.0
	_, err := New([]Product{
		{ID: "a", Name: "A", Value: 1, Channels: []Channel{Web}},
		{ID: "a", Name: "A again", Value: 1, Channels: []Channel{Web}},
		{ID: "b", Value: -1, Channels: []Channel{"fax"}},
		{ID: "c", Name: "C", Value: 1, Requires: []Rule{{Feature: "x", Min: &lo, Max: &hi}}, Need: &Need{LeadDays: -1}},
	})
	if err == nil {
		t.Fatal("New accepted a bad catalog")
	}
	for _, want := range []string{"products[a].id: duplicate", "products[b].name", "products[b].value", `unknown channel "fax"`, "products[c].channels: empty", "products[c].requires[0]", "products[c].need"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if _, err := New(nil); err == nil {
		t.Error("empty catalog accepted")
	}
}

func TestCatalogLookup(t *testing.T) {
	c, err := New([]Product{
		{ID: "z", Name: "Z", Value: 1, Channels: []Channel{Web, Branch}},
		{ID: "a", Name: "A", Value: 2, Channels: []Channel{PhoneOutbound}, HeldFeature: "has_a"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if ps := c.Products(); ps[0].ID != "a" || ps[1].ID != "z" {
		t.Errorf("products not ordered by id: %v", ps)
	}
	z, ok := c.Product("z")
	if !ok || z.HeldFeature != "holds_z" || !z.SoldOn(Branch) || z.SoldOn(Email) {
		t.Errorf("Product(z) = %+v, %v", z, ok)
	}
	if a, _ := c.Product("a"); a.HeldFeature != "has_a" {
		t.Errorf("explicit held feature replaced: %q", a.HeldFeature)
	}
	if _, ok := c.Product("nope"); ok {
		t.Error("unknown product found")
	}
	if !PhoneOutbound.Outbound() || !Email.Outbound() || PhoneInbound.Outbound() {
		t.Error("Outbound wrong")
	}
}
