package policy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tact-nba/tact/model/catalog"
)

func overrides(t *testing.T, js string) *Overrides {
	t.Helper()
	var o Overrides
	if err := json.Unmarshal([]byte(js), &o); err != nil {
		t.Fatal(err)
	}
	return &o
}

func TestOverridesApplyWithoutTouchingThePolicy(t *testing.T) {
	cat, schema := fixtures(t)
	p, err := Default(cat, schema)
	if err != nil {
		t.Fatal(err)
	}
	q, weaker, err := p.With(overrides(t, `{"tiers": {"standard": {"min_propensity": 0.05, "caps": {"web": {"per_7_days": 9, "per_30_days": 20}}}},
		"levers": {"card": 1.5}, "load": {"busy_when": {"calls_waiting": 5}, "calm_when": {"calls_waiting": 3}}}`), cat, schema)
	if err != nil {
		t.Fatal(err)
	}
	if len(weaker) != 0 {
		t.Errorf("standard is not protected, and an earlier busy period is stricter; got weakenings %v", weaker)
	}
	std, qstd := &p.Tiers[3], &q.Tiers[3]
	if qstd.MinPropensity != 0.05 || std.MinPropensity != 0.15 {
		t.Errorf("min_propensity: variant %v (want 0.05), policy %v (want 0.15 still)", qstd.MinPropensity, std.MinPropensity)
	}
	if got := qstd.CapsFor(catalog.Web)[0].Max; got != 9 {
		t.Errorf("web cap in the variant %d, want 9", got)
	}
	if got := std.CapsFor(catalog.Web)[0].Max; got != 2 {
		t.Errorf("web cap in the policy %d, want the default 2 still", got)
	}
	if q.Arbitration.Lever("card") != 1.5 || p.Arbitration.Lever("card") != 1 {
		t.Errorf("levers: variant %v, policy %v", q.Arbitration.Lever("card"), p.Arbitration.Lever("card"))
	}
	if q.Load.BusyWhen.CallsWaiting != 5 || p.Load.BusyWhen.CallsWaiting != 20 {
		t.Errorf("busy_when: variant %d, policy %d", q.Load.BusyWhen.CallsWaiting, p.Load.BusyWhen.CallsWaiting)
	}
}

func TestOverridesNameWeakerProtection(t *testing.T) {
	cat, schema := fixtures(t)
	p, err := Default(cat, schema)
	if err != nil {
		t.Fatal(err)
	}
	_, weaker, err := p.With(overrides(t, `{"tiers": {"platinum": {"min_propensity": 0.1, "cool_down_days": 10, "pitch_when_busy": true,
		"caps": {"default": {"per_7_days": 3, "per_30_days": 2}}}}, "load": {"busy_when": {"calls_waiting": 50, "longest_wait_seconds": 120, "service_level": 0.8}}}`), cat, schema)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(weaker, "\n")
	for _, want := range []string{"tiers.platinum.min_propensity 0.1 below 0.4", "tiers.platinum.cool_down_days 10 below 90",
		"tiers.platinum.pitch_when_busy allowed", "tiers.platinum.caps.phone_inbound: 3 offers per 7 days, above 1",
		"tiers.platinum: the load thresholds declare a busy period later", "tiers.gold: the load thresholds declare a busy period later"} {
		if !strings.Contains(got, want) {
			t.Errorf("weakenings lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "per 30 days") {
		t.Errorf("the 30-day cap was not raised (2 = 2), yet it is listed:\n%s", got)
	}
}

func TestOverridesAreCheckedLikeAPolicy(t *testing.T) {
	cat, schema := fixtures(t)
	p, err := Default(cat, schema)
	if err != nil {
		t.Fatal(err)
	}
	for js, want := range map[string]string{
		`{"tiers": {"diamond": {"min_propensity": 0.1}}}`:                                "tiers.diamond: no such tier",
		`{"tiers": {"gold": {"min_propensity": 1.5}}}`:                                   "tiers[1].min_propensity: 1.5 not in 0..1",
		`{"tiers": {"gold": {"caps": {"pigeon": {"per_7_days": 1, "per_30_days": 1}}}}}`: `unknown channel "pigeon"`,
		`{"tiers": {"gold": {"caps": {"web": {"per_7_days": 1}}}}}`:                      "tiers[1].caps.web.per_30_days: missing",
		`{"levers": {"yacht": 2}}`:                                                       `unknown product "yacht"`,
	} {
		_, _, err := p.With(overrides(t, js), cat, schema)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one naming %q", js, err, want)
		}
	}
}
