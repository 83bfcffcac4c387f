package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemoStory runs the README's policy demo with the CLI: an offer, a
// refusal recorded with tact outcome and the cool-down it starts, a busy
// queue that holds back a platinum client, and the export of both logs.
func TestDemoStory(t *testing.T) {
	addr := startServer(t)
	tact := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(t.Context(), append(args, "--addr", addr), &out, ""); err != nil {
			t.Fatalf("tact %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
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
	if !strings.Contains(busy, "NO OFFER") || !strings.Contains(busy, "busy period: Queue demo is busy (40 calls waiting): no pitch to a platinum client now.") {
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
	} {
		var ue *usageError
		if err := run(t.Context(), args, &bytes.Buffer{}, ""); !errors.As(err, &ue) {
			t.Errorf("tact %s: %v, want a usage error", strings.Join(args, " "), err)
		}
	}
}
