package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
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

// TestModelsSnapshotAndRollback: tact models shows what learning learned;
// tact models snapshot keeps it with the bundle as a version; after more
// outcomes change the propensities, tact models rollback serves the
// snapshot again and learning resumes from its state.
func TestModelsSnapshotAndRollback(t *testing.T) {
	models := t.TempDir()
	copyDir(t, "../../model/demo/bundle", filepath.Join(models, "demo-2"))
	if err := os.Symlink("demo-2", filepath.Join(models, "current")); err != nil {
		t.Fatal(err)
	}
	addr := servertest.Start(t, server.Deps{}, func(c *server.Config) {
		c.ModelDir, c.ModelPoll, c.Learning = models, 100*time.Millisecond, "adaptive"
	}).GRPCAddr()
	tact := cli(t, addr)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dc := tactv1.NewDecisionServiceClient(conn)
	// Every offer of the savings account is accepted, every other
	// declined; then, after the snapshot, every offer declined.
	answer := func(from, to int, accept func(product string) bool) {
		for i := from; i <= to; i++ {
			d, err := dc.Decide(t.Context(), &tactv1.DecideRequest{ClientId: fmt.Sprintf("C%05d", i), Channel: tactv1.Channel_CHANNEL_BRANCH})
			if err != nil {
				t.Fatal(err)
			}
			if d.GetAction() != tactv1.Action_ACTION_OFFER_NOW {
				continue
			}
			p := d.GetOffers()[0].GetProductId()
			outcome := tactv1.Outcome_OUTCOME_DECLINED
			if accept(p) {
				outcome = tactv1.Outcome_OUTCOME_ACCEPTED
			}
			if _, err := dc.RecordOutcome(t.Context(), &tactv1.RecordOutcomeRequest{DecisionId: d.GetDecisionId(), ProductId: p, Outcome: outcome}); err != nil {
				t.Fatal(err)
			}
		}
	}
	savings := func() (string, float64) {
		d, err := dc.Decide(t.Context(), &tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_WEB, Explain: true, DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range d.GetCandidates() {
			if c.GetProductId() == "savings_account" {
				return d.GetModelVersion(), c.GetPropensity()
			}
		}
		t.Fatal("no savings account among the candidates")
		return "", 0
	}
	_, before := savings()
	answer(4, 400, func(p string) bool { return p == "savings_account" })
	_, learned := savings()

	got := tact("models")
	if !regexp.MustCompile(`savings_account +logistic +- +[1-9]\d* +0 `).MatchString(got) || !strings.Contains(got, "learning adaptive") {
		t.Errorf("tact models:\n%s", got)
	}
	got = tact("models", "snapshot", "--model-dir", models, "--version", "snap-1")
	if !strings.Contains(got, "wrote snapshot snap-1") {
		t.Errorf("tact models snapshot:\n%s", got)
	}
	// A snapshot never overwrites a version.
	if err := run(t.Context(), []string{"models", "snapshot", "--model-dir", models, "--version", "snap-1", "--addr", addr}, &bytes.Buffer{}, ""); err == nil {
		t.Error("a second snapshot snap-1 overwrote the first")
	}

	answer(401, 900, func(string) bool { return false })
	_, unlearned := savings()
	t.Logf("savings account for C00003: %.4f at first, %.4f after acceptances, %.4f after refusals", before, learned, unlearned)
	if !(learned > before && unlearned < learned) {
		t.Fatalf("the outcomes did not move the propensity: %.4f, %.4f, %.4f", before, learned, unlearned)
	}

	got = runOK(t, "models", "rollback", "--model-dir", models, "--to", "snap-1") // on files: no --addr
	if !strings.Contains(got, "current now points at snap-1 (was demo-2)") || !strings.Contains(got, "learning resumes") {
		t.Errorf("tact models rollback:\n%s", got)
	}
	// Served, and learning resumed from the snapshot, at tactd's next poll.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(tact("models"), "learning resumed from snapshot snap-1") {
		if time.Now().After(deadline) {
			t.Fatalf("10 s after the rollback:\n%s", tact("models"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v, p := savings(); v != "snap-1" || math.Abs(p-learned) > 1e-6 {
		t.Errorf("after the rollback %s scores the savings account %.6f, want snap-1 and the snapshot's %.6f", v, p, learned)
	}
	// The health, exported: a JSON line per product.
	lines := strings.Split(strings.TrimSpace(tact("export", "models")), "\n")
	if len(lines) != 8 || !strings.Contains(strings.Join(lines, "\n"), `{"bundle_version":"snap-1","model":{"product_id":"savings_account","type":"logistic"`) {
		t.Errorf("tact export models:\n%s", strings.Join(lines, "\n"))
	}
	for _, args := range [][]string{
		{"models", "snapshot", "--addr", addr},
		{"models", "rollback", "--model-dir", models},
		{"models", "rollback", "--model-dir", models, "--to", "../x"},
		{"models", "nonsense"},
	} {
		var ue *usageError
		if err := run(t.Context(), args, &bytes.Buffer{}, ""); !errors.As(err, &ue) {
			t.Errorf("tact %s: %v, want a usage error", strings.Join(args, " "), err)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"30d":                  now.AddDate(0, 0, -30),
		"720h":                 now.Add(-720 * time.Hour),
		"2026-11-01":           time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-01T10:00:00Z": time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC),
	} {
		if got, err := parseSince(in, now); err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "soon", "-3d", "3.5d", "-1h"} {
		if _, err := parseSince(bad, now); err == nil {
			t.Errorf("parseSince(%q) accepted", bad)
		}
	}
}
