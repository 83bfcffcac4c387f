package main

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
	"github.com/tact-nba/tact/server"
	"github.com/tact-nba/tact/server/servertest"
)

// copyDir copies a flat directory.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLearningFromTheLog: decisions made with exploration and answered
// (a client takes an offer with the propensity Tact gave it), then tact
// evaluate judges the demo challenger on the log, and tact train
// --from-log writes a bundle that the same tactd serves once model_dir's
// current points at it.
func TestLearningFromTheLog(t *testing.T) {
	models := t.TempDir()
	copyDir(t, "../../model/demo/bundle", filepath.Join(models, "v1"))
	if err := os.Symlink("v1", filepath.Join(models, "current")); err != nil {
		t.Fatal(err)
	}
	addr := servertest.Start(t, server.Deps{}, func(c *server.Config) {
		c.ModelDir, c.ModelPoll = models, 100*time.Millisecond
		c.Exploration, c.ExplorationRate = "on", 0.3
	}).GRPCAddr()
	tact := cli(t, addr)

	// Nothing logged yet: an error that says so.
	var out bytes.Buffer
	err := run(t.Context(), []string{"evaluate", "--since", "1h", "--model", "../../model/demo/challenger", "--addr", addr}, &out, "")
	if err == nil || !strings.Contains(err.Error(), "nothing to judge by") {
		t.Errorf("evaluate on an empty log: %v", err)
	}

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dc := tactv1.NewDecisionServiceClient(conn)
	rng := rand.New(rand.NewPCG(1, 2))
	answered := 0
	for i := 1; i <= 1000; i++ {
		d, err := dc.Decide(t.Context(), &tactv1.DecideRequest{ClientId: fmt.Sprintf("C%05d", i), Channel: tactv1.Channel_CHANNEL_BRANCH})
		if err != nil {
			t.Fatal(err)
		}
		if d.GetAction() != tactv1.Action_ACTION_OFFER_NOW {
			continue
		}
		o := d.GetOffers()[0]
		outcome := tactv1.Outcome_OUTCOME_DECLINED
		if rng.Float64() < o.GetPropensity() {
			outcome = tactv1.Outcome_OUTCOME_ACCEPTED
		}
		if _, err := dc.RecordOutcome(t.Context(), &tactv1.RecordOutcomeRequest{DecisionId: d.GetDecisionId(), ProductId: o.GetProductId(), Outcome: outcome}); err != nil {
			t.Fatal(err)
		}
		answered++
	}

	got := tact("evaluate", "--since", "1h", "--model", "../../model/demo/challenger")
	t.Logf("tact evaluate:\n%s", got)
	if !strings.Contains(got, fmt.Sprintf("judged on %d answered offers of 1000 decisions", answered)) ||
		!strings.Contains(got, "could have made its choice in 100%") {
		t.Errorf("tact evaluate:\n%s", got)
	}
	for _, row := range []string{"served policy (observed)", "challenger, self-normalised IPS", "challenger, IPS", "challenger, doubly robust"} {
		re := regexp.MustCompile(regexp.QuoteMeta(row) + ` +(\d+\.\d\d)%   95% interval \[(\d+\.\d\d)%, (\d+\.\d\d)%\]`)
		if !re.MatchString(got) {
			t.Errorf("no %q row with an estimate and its interval", row)
		}
	}

	v2 := filepath.Join(models, "v2")
	got = tact("train", "--from-log", "--since", "1h", "--out", v2, "--base", filepath.Join(models, "v1"), "--min-rows", "60", "--version", "log-test")
	t.Logf("tact train --from-log:\n%s", got)
	if !strings.Contains(got, fmt.Sprintf("%d answered offers", answered)) || !regexp.MustCompile(`\w+: \d+ answered offers \([\d.]+% accepted\), holdout`).MatchString(got) ||
		!strings.Contains(got, "wrote bundle log-test") {
		t.Errorf("tact train --from-log:\n%s", got)
	}
	// Served after a switch of current, without a restart.
	if err := os.Symlink("v2", filepath.Join(models, "next")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(models, "next"), filepath.Join(models, "current")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := dc.Decide(t.Context(), &tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_BRANCH, DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if d.GetModelVersion() == "log-test" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving %s 10 s after current pointed at the trained bundle", d.GetModelVersion())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Usage errors.
	for _, args := range [][]string{
		{"evaluate", "--since", "1h"},
		{"evaluate", "--model", "../../model/demo/challenger", "--since", "soon"},
		{"train", "--from-log", "--since", "1h"},
		{"train", "--from-log", "--since", "1h", "--out", t.TempDir(), "--min-rows", "3"},
	} {
		var ue *usageError
		if err := run(t.Context(), append(args, "--addr", addr), &bytes.Buffer{}, ""); !errors.As(err, &ue) {
			t.Errorf("tact %s: %v, want a usage error", strings.Join(args, " "), err)
		}
	}
}
