package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestMain lets the test binary serve as tactload's children (the echo
// servers and tactd), as the real binary does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "serve-") {
		if err := runChild(os.Args[1:]); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestOneShortRun drives all four servers for a moment, closed and open
// loop, and checks the report: every target measured without errors, CPU
// and RSS read from /proc, and the ratios present.
func TestOneShortRun(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc (Linux)")
	}
	out := filepath.Join(t.TempDir(), "r.json")
	var table bytes.Buffer
	err := run(t.Context(), []string{"--duration", "300ms", "--warmup", "100ms", "--open-duration", "300ms",
		"--concurrency", "4", "--population", "1000", "--hot", "50", "--hot-share", "0.9", "--json", out}, &table)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, table.String())
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 8 {
		t.Fatalf("%d results, want 4 closed and 4 open:\n%s", len(rep.Results), table.String())
	}
	for _, r := range rep.Results {
		if r.Calls == 0 || r.QPS <= 0 || r.P50 <= 0 || r.P99 < r.P50 || r.P999 < r.P99 {
			t.Errorf("%s %s: implausible figures %+v", r.Target, r.Mode, r)
		}
		if len(r.Errors) > 0 {
			t.Errorf("%s %s: errors %v", r.Target, r.Mode, r.Errors)
		}
		if r.PeakRSSMiB <= 0 || r.CPUPer1000 <= 0 {
			t.Errorf("%s %s: server CPU %v s/1000, RSS %v MiB: not read", r.Target, r.Mode, r.CPUPer1000, r.PeakRSSMiB)
		}
		if strings.HasPrefix(r.Target, "tact") && r.Mode == "closed" && len(r.Actions) == 0 {
			t.Errorf("%s: no actions counted", r.Target)
		}
	}
	for _, k := range []string{"grpc_qps_vs_echo", "grpc_p99_vs_echo", "rest_qps_vs_echo", "rest_p99_vs_echo"} {
		if rep.Ratios[k] <= 0 {
			t.Errorf("ratio %s missing: %v", k, rep.Ratios)
		}
	}
	for _, want := range []string{"tact-grpc", "grpc-echo", "grpc_qps_vs_echo", "CPU s/1000"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

// runChild serves until SIGTERM, as the real binary's children do.
func runChild(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, os.Stdout)
}
