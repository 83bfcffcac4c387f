package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tact-nba/tact/server"
	"github.com/tact-nba/tact/server/servertest"
)

// cli runs tact commands against addr, failing the test on an error.
func cli(t *testing.T, addr string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(t.Context(), append(args, "--addr", addr), &out, ""); err != nil {
			t.Fatalf("tact %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
}

// TestDemoStory runs the README's policy demo with the CLI: an offer, a
// refusal recorded with tact outcome and the cool-down it starts, a busy
// queue that holds back a platinum client, and the export of both logs.
func TestDemoStory(t *testing.T) {
	addr := startServer(t)
	tact := cli(t, addr)
	first := tact("decide", "--client", "C00003")
	id := regexp.MustCompile(`Decision ([0-9a-f-]{36})`).FindStringSubmatch(first)
	if id == nil || !strings.Contains(first, "[home_insurance]") {
		t.Fatalf("first decision:\n%s", first)
	}
	rec := tact("outcome", "--decision", id[1], "--product", "home_insurance", "--outcome", "declined")
	if !strings.Contains(rec, "Recorded: home_insurance declined") {
		t.Errorf("outcome output:\n%s", rec)
	}
	again := tact("decide", "--client", "C00003", "--channel", "web", "--explain")
	if !regexp.MustCompile(`home_insurance .*cool down: The client declined Home insurance on \d{4}-\d\d-\d\d; not again before`).MatchString(again) {
		t.Errorf("after the refusal, home insurance is not in its cool-down:\n%s", again)
	}
	if strings.Contains(again, "[home_insurance]") {
		t.Errorf("home insurance offered again after the refusal:\n%s", again)
	}

	if out := tact("load", "--queue", "demo", "--calls-waiting", "40", "--longest-wait", "300", "--service-level", "0.6"); !strings.Contains(out, "Queue demo: 40 waiting") {
		t.Errorf("load output:\n%s", out)
	}
	busy := tact("decide", "--client", "C00074", "--queue", "demo")
	if !strings.Contains(busy, "NO OFFER") || !strings.Contains(busy, "busy period: Queue demo is busy (40 calls waiting, longest wait 300 s, service level 60%): no pitch to a platinum client now.") {
		t.Errorf("platinum client while the queue is busy:\n%s", busy)
	}
	if out := tact("decide", "--client", "C00003", "--reason", "complaint"); !strings.Contains(out, "complaint:") {
		t.Errorf("complaint:\n%s", out)
	}

	for what, wantKeys := range map[string][]string{
		"decisions": {"decision_id", "client_id", "action", "decided_at"},
		"outcomes":  {"decision_id", "product_id", "outcome", "recorded_at"},
	} {
		out := tact("export", what, "--since", "1h")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if what == "decisions" && len(lines) < 4 || what == "outcomes" && len(lines) != 1 {
			t.Errorf("export %s: %d lines:\n%s", what, len(lines), out)
		}
		for _, l := range lines {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("export %s: not JSON Lines: %v\n%s", what, err, l)
			}
			for _, k := range wantKeys {
				if _, ok := m[k]; !ok {
					t.Errorf("export %s: line without %s: %s", what, k, l)
				}
			}
		}
	}
	if out := tact("export", "outcomes", "--since", time.Now().Add(time.Hour).Format(time.RFC3339)); out != "" {
		t.Errorf("export since the future: %q, want nothing", out)
	}
}

func TestPolicyCommandErrors(t *testing.T) {
	for _, args := range [][]string{
		{"outcome", "--decision", "x", "--product", "p"},
		{"outcome", "--decision", "x", "--product", "p", "--outcome", "declined", "--reason", "no-time"},
		{"outcome", "--decision", "x", "--product", "p", "--outcome", "not-presented"},
		{"outcome", "--decision", "x", "--product", "p", "--outcome", "maybe"},
		{"load"},
		{"export"},
		{"export", "decisions"},
		{"export", "outcomes", "--since", "last tuesday"},
		{"export", "decisions", "--since", "1h", "--experiment", "x"},
		{"experiments"},
		{"experiments", "results"},
		{"experiments", "results", "--since", "1h"},
		{"experiments", "results", "a", "b"},
		{"experiments", "list", "a"},
	} {
		var ue *usageError
		if err := run(t.Context(), args, &bytes.Buffer{}, ""); !errors.As(err, &ue) {
			t.Errorf("tact %s: %v, want a usage error", strings.Join(args, " "), err)
		}
	}
}

// TestExperimentCommands runs the README's champion/challenger example
// with the CLI: the variant in a decision, the experiments listed, the
// results after some outcomes, and the exposures exported.
func TestExperimentCommands(t *testing.T) {
	addr := servertest.Start(t, server.Deps{}, func(c *server.Config) { c.ExperimentsFile = "../../examples/experiments.json" }).GRPCAddr()
	tact := cli(t, addr)
	if out := tact("experiments", "list"); !strings.Contains(out, "model-cc-2026-11 (feature model-champion-challenger): champion 50%, challenger 50%") {
		t.Errorf("experiments list:\n%s", out)
	}
	accepted := 0
	for i := 1; i <= 60; i++ {
		out := tact("decide", "--client", fmt.Sprintf("C%05d", i), "--channel", "web")
		if !regexp.MustCompile(`Experiment model-cc-2026-11: variation (champion|challenger)\n`).MatchString(out) {
			t.Fatalf("decision without its variation:\n%s", out)
		}
		id := regexp.MustCompile(`Decision ([0-9a-f-]{36})`).FindStringSubmatch(out)
		p := regexp.MustCompile(`\[([a-z_]+)\]`).FindStringSubmatch(out)
		if strings.HasPrefix(out, "OFFER NOW") && id != nil && p != nil && i%2 == 0 {
			tact("outcome", "--decision", id[1], "--product", p[1], "--outcome", "accepted")
			accepted++
		}
	}
	res := tact("experiments", "results", "model-cc-2026-11")
	// The key may come after the flags too (it was refused as an
	// unexpected argument).
	if after := tact("experiments", "results", "--since", "24h", "model-cc-2026-11"); after != res {
		t.Errorf("the key after the flags:\n%s\nbefore them:\n%s", after, res)
	}
	for _, want := range []string{"VARIATION", "champion", "challenger", "(control)", "Split check: chi-square p = "} {
		if !strings.Contains(res, want) {
			t.Errorf("results lack %q:\n%s", want, res)
		}
	}
	// The accepted column adds up to the outcomes recorded.
	sum := 0
	for _, m := range regexp.MustCompile(`(?m)^(?:champion|challenger)\s+\d+\s+\d+\s+\d+\s+\d+\s+(\d+)`).FindAllStringSubmatch(res, -1) {
		n, _ := strconv.Atoi(m[1])
		sum += n
	}
	if sum != accepted || accepted == 0 {
		t.Errorf("accepted in the results %d, recorded %d:\n%s", sum, accepted, res)
	}
	lines := strings.Split(strings.TrimSpace(tact("export", "exposures", "--since", "1h", "--experiment", "model-cc-2026-11")), "\n")
	if len(lines) != 60 || !strings.Contains(lines[0], `"variation":`) {
		t.Errorf("export exposures: %d lines, first %s", len(lines), lines[0])
	}
}
