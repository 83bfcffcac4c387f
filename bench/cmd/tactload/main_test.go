package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/features/redistest"
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
	rep, table := runReport(t, "--duration", "300ms", "--warmup", "100ms", "--open-duration", "300ms",
		"--rounds", "2", "--concurrency", "4", "--population", "1000", "--hot", "50", "--hot-share", "0.9")
	if len(rep.Results) != 12 {
		t.Fatalf("%d results, want 4 closed twice and 4 open:\n%s", len(rep.Results), table)
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
		if strings.HasPrefix(r.Target, "tact") && (r.EngineP50 <= 0 || r.EngineP99 < r.EngineP50) {
			t.Errorf("%s %s: engine p50 %v, p99 %v: tactd's histogram not read", r.Target, r.Mode, r.EngineP50, r.EngineP99)
		}
		if strings.HasPrefix(r.Target, "tact") && r.Mode == "closed" && len(r.Actions) == 0 {
			t.Errorf("%s: no actions counted", r.Target)
		}
	}
	for _, k := range []string{"grpc_qps_vs_echo", "grpc_p99_vs_echo", "rest_qps_vs_echo", "rest_p99_vs_echo"} {
		if rep.Ratios[k] <= 0 {
			t.Errorf("ratio %s missing: %v", k, rep.Ratios)
		}
		if rs := rep.RoundRatios[k]; len(rs) != 2 || rep.Ratios[k] != median(rs) {
			t.Errorf("ratio %s = %v, rounds %v: want the median of 2 rounds", k, rep.Ratios[k], rs)
		}
	}
	for _, want := range []string{"tact-grpc", "grpc-echo", "grpc_qps_vs_echo", "CPU s/1000"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

// TestJournalEcho runs the durable echo beside the bare one: it answers
// without errors, its histogram of its Decide is read, its ratios are
// reported, and its journal, made beside --data-dir, is removed after.
func TestJournalEcho(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc (Linux)")
	}
	base := t.TempDir()
	rep, table := runReport(t, "--only", "grpc-echo,journal-echo", "--duration", "300ms", "--warmup", "100ms",
		"--open-fraction", "0", "--concurrency", "4", "--rounds", "1", "--tactd-args", "--data-dir "+filepath.Join(base, "data"))
	var found bool
	for _, r := range rep.Results {
		if r.Target != "journal-echo" {
			continue
		}
		found = true
		if r.Calls == 0 || len(r.Errors) > 0 || r.EngineP50 <= 0 || r.EngineP99 < r.EngineP50 {
			t.Errorf("journal-echo: %d calls, errors %v, its Decide p50 %v ms, p99 %v ms", r.Calls, r.Errors, r.EngineP50, r.EngineP99)
		}
	}
	if !found {
		t.Fatalf("no journal-echo result:\n%s", table)
	}
	for _, k := range []string{"journal_echo_qps_vs_echo", "journal_echo_p99_vs_echo"} {
		if rep.Ratios[k] <= 0 {
			t.Errorf("ratio %s missing: %v", k, rep.Ratios)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(base, "tactload-journal-*")); len(left) > 0 {
		t.Errorf("journal-echo's journal left behind: %v", left)
	}
}

// TestRedisStoreEcho runs the Redis store echo beside the bare one on a
// real redis-server: it answers without errors, its histogram is read, its
// ratio reported, and its reservations are in Redis on a channel of their
// own.
func TestRedisStoreEcho(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc (Linux)")
	}
	rs := redistest.Start(t)
	rep, table := runReport(t, "--only", "grpc-echo,redis-store-echo", "--redis-addrs", rs.Addr, "--duration", "300ms",
		"--warmup", "100ms", "--open-fraction", "0", "--concurrency", "4", "--rounds", "1", "--population", "50", "--hot-share", "0")
	var calls int
	for _, r := range rep.Results {
		if r.Target != "redis-store-echo" {
			continue
		}
		calls = r.Calls
		if r.Calls == 0 || len(r.Errors) > 0 || r.EngineP50 <= 0 || r.EngineP99 < r.EngineP50 {
			t.Errorf("redis-store-echo: %d calls, errors %v, its Decide p50 %v ms, p99 %v ms", r.Calls, r.Errors, r.EngineP50, r.EngineP99)
		}
	}
	if calls == 0 {
		t.Fatalf("no redis-store-echo result:\n%s", table)
	}
	if rep.Ratios["redis_store_echo_qps_vs_echo"] <= 0 {
		t.Errorf("ratio redis_store_echo_qps_vs_echo missing: %v", rep.Ratios)
	}
	store, err := features.OpenRedis(t.Context(), features.RedisConfig{Addr: rs.Addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	offers := 0
	for i := 1; i <= 50; i++ {
		cs, err := store.Contacts(t.Context(), fmt.Sprintf("C%05d", i), time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if c.Channel != "bench" || c.ProductID != "bench_offer" {
				t.Fatalf("a reservation on %s of %s: want the echo's own channel and product", c.Channel, c.ProductID)
			}
			offers++
		}
	}
	if offers == 0 {
		t.Errorf("no reservation of the %d calls reached Redis", calls)
	}
}

// runReport runs tactload with args and returns its JSON report and the
// table it printed.
func runReport(t *testing.T, args ...string) (Report, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "r.json")
	var table bytes.Buffer
	if err := run(t.Context(), append(args, "--json", out), &table); err != nil {
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
	return rep, table.String()
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{[]float64{3}, 3}, {[]float64{0.9, 0.5, 0.7}, 0.7}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// runChild serves until SIGTERM, as the real binary's children do.
func runChild(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, os.Stdout)
}

func TestHistogramQuantile(t *testing.T) {
	inf := math.Inf(1)
	before := histogram{0.001: 10, 0.002: 10, 0.005: 10, inf: 10}
	// 100 more: 80 under 1 ms, 18 in (1, 2] ms, 1 in (2, 5] ms, 1 beyond.
	after := histogram{0.001: 90, 0.002: 108, 0.005: 109, inf: 110}
	for _, tc := range []struct {
		q, want float64
	}{
		{0.5, 0.625}, // 50 of the 80 in [0, 1] ms
		{0.8, 1},
		{0.89, 1.5}, // 9 of the 18 in (1, 2]
		{0.99, 5},
		{1, 5}, // in +Inf: the largest finite bound
	} {
		got, ok := after.quantile(before, tc.q)
		if !ok || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("q%v = %v (%v), want %v", tc.q, got, ok, tc.want)
		}
	}
	if _, ok := before.quantile(before, 0.5); ok {
		t.Error("no observations: a quantile was reported")
	}
}

// TestScrapeHistogram reads a histogram from a real /metrics page in
// Prometheus's text format.
func TestScrapeHistogram(t *testing.T) {
	page := `# TYPE tact_decide_duration_seconds histogram
tact_decide_duration_seconds_bucket{action="offer_now",le="0.001"} 3
tact_decide_duration_seconds_bucket{action="offer_now",le="0.002"} 4
tact_decide_duration_seconds_bucket{action="offer_now",le="+Inf"} 5
tact_decide_duration_seconds_sum{action="offer_now"} 0.01
tact_decide_duration_seconds_count{action="offer_now"} 5
tact_decide_duration_seconds_bucket{action="no_offer",le="0.001"} 1
tact_decide_duration_seconds_bucket{action="no_offer",le="0.002"} 1
tact_decide_duration_seconds_bucket{action="no_offer",le="+Inf"} 1
tact_decide_duration_seconds_sum{action="no_offer"} 0.0001
tact_decide_duration_seconds_count{action="no_offer"} 1
`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(page))
	}))
	defer srv.Close()
	h, err := scrapeHistogram(strings.TrimPrefix(srv.URL, "http://"), engineMetric)
	if err != nil {
		t.Fatal(err)
	}
	want := histogram{0.001: 4, 0.002: 5, math.Inf(1): 6}
	if len(h) != len(want) {
		t.Fatalf("histogram %v, want %v", h, want)
	}
	for b, n := range want {
		if h[b] != n {
			t.Errorf("bucket %v: %d, want %d (all: %v)", b, h[b], n, h)
		}
	}
}
