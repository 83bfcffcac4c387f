package server

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tact-nba/tact/model/demo"
	"github.com/tact-nba/tact/model/policy"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// badPolicy has three errors: a CEL rule that does not compile, a lever
// for a product the catalog lacks, and a negative cap.
var badPolicy = strings.NewReplacer(
	`when: "balance >= 250000"`, `when: "balance >= "`,
	"levers: {}", "levers: {mortgage: 2}",
	"default: {per_7_days: 2, per_30_days: 5}", "default: {per_7_days: -1, per_30_days: 5}",
).Replace(string(policy.DefaultYAML()))

func TestPolicyErrorsAreListedAtStart(t *testing.T) {
	cfg := Defaults()
	cfg.Demo, cfg.DrainDelay = "true", 0 // the demo bank in a temporary data_dir; no balancer to wait for
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	writeScenarioBank(t, t.TempDir(), badPolicy, &cfg)
	_, err := New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Deps{})
	if err == nil {
		t.Fatal("New accepted a policy with errors")
	}
	for _, want := range []string{cfg.PolicyFile, "tiers[0].when", `arbitration.levers.mortgage: unknown product "mortgage"`, "tiers[3].caps.default.per_7_days: -1 is negative"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q:\n%v", want, err)
		}
	}
	// A catalog with an error is reported the same way.
	if err := os.WriteFile(cfg.CatalogFile, []byte(strings.Replace(scenarioCatalog, `"income >= 1000"`, `"incom >= 1000"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Deps{}); err == nil || !strings.Contains(err.Error(), "products[loan].eligibility[0].when") {
		t.Errorf("New with a bad catalog: %v, want the rule named", err)
	}
}

func TestPolicyHotReload(t *testing.T) {
	logs := &syncBuffer{}
	var policyFile string
	e := startScenarioServer(t, string(policy.DefaultYAML()), func(c *Config, w *io.Writer) {
		c.ModelPoll = 100 * time.Millisecond
		*w = logs
		policyFile = c.PolicyFile
	})
	decide := func(id string) *tactv1.DecideResponse {
		return e.decide(t, &tactv1.DecideRequest{ClientId: id, Channel: inbound})
	}
	// Each decision with a new client: the caps stay out of the way.
	e.client(t, "H1", nil)
	if d := decide("H1"); d.GetAction() != tactv1.Action_ACTION_OFFER_NOW {
		t.Fatalf("before any reload: %v", d.GetReasons())
	}

	if err := os.WriteFile(policyFile, []byte(badPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(logs.String(), "catalog, policy or experiments rejected") })
	for _, want := range []string{"tiers[0].when", "arbitration.levers.mortgage", "per_7_days: -1"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the rejection log does not name %q", want)
		}
	}
	e.client(t, "H2", nil)
	if d := decide("H2"); d.GetAction() != tactv1.Action_ACTION_OFFER_NOW {
		t.Errorf("after a rejected reload, the old policy must serve: %v", d.GetReasons())
	}

	// A valid change applies: the standard bar rises above the card's 0.88.
	stricter := strings.Replace(string(policy.DefaultYAML()), "min_propensity: 0.15", "min_propensity: 0.95", 1)
	if err := os.WriteFile(policyFile, []byte(stricter), 0o644); err != nil {
		t.Fatal(err)
	}
	e.client(t, "H3", nil)
	waitFor(t, func() bool {
		return decide("H3").GetReasons()[0].GetCode() == tactv1.ReasonCode_REASON_CODE_BELOW_TIER_BAR
	})
	if n := strings.Count(logs.String(), "catalog, policy or experiments rejected"); n != 1 {
		t.Errorf("the rejection was logged %d times, want once", n)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("condition not met within 5 s")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestPolicyWatcherWaitsOutAHalfWrittenFile: a file caught mid-write is
// read again at the next poll, not reported; the same bad bytes twice are.
func TestPolicyWatcherWaitsOutAHalfWrittenFile(t *testing.T) {
	schema, err := demo.Schema()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "policy.yaml")
	logs := &syncBuffer{}
	w := &policyWatcher{files: &policyFiles{policyPath: path, schema: schema}, logger: slog.New(slog.NewJSONHandler(logs, nil))}
	full := string(policy.DefaultYAML())
	for _, n := range []int{len(full) / 3, len(full) / 2} { // an editor saving in pieces
		if err := os.WriteFile(path, []byte(full[:n]), 0o644); err != nil {
			t.Fatal(err)
		}
		w.check()
		if logs.String() != "" {
			t.Fatalf("a file read once mid-write (%d of %d bytes) was reported:\n%s", n, len(full), logs.String())
		}
	}
	w.check() // the same bytes again: it is what the file says
	w.check()
	if n := strings.Count(logs.String(), "catalog, policy or experiments rejected"); n != 1 {
		t.Errorf("a bad file read on three polls was reported %d times, want once:\n%s", n, logs.String())
	}
}
