package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tact-nba/tact/features"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// heldSource holds every read until released.
type heldSource struct {
	features.Source
	release chan struct{}
	entered chan struct{}
}

func (h *heldSource) Get(ctx context.Context, id string) (features.Record, error) {
	h.entered <- struct{}{}
	<-h.release
	return h.Source.Get(ctx, id)
}

// TestAdmission: with 4 calls in flight and a limit of 4, the next gRPC
// call is refused with RESOURCE_EXHAUSTED and the next REST call with
// 429, before any work; once the calls finish, calls are served again.
func TestAdmission(t *testing.T) {
	held := &heldSource{release: make(chan struct{}), entered: make(chan struct{}, 100)}
	ts := startServer(t, Deps{WrapFeatures: func(s features.Source) features.Source { held.Source = s; return held }},
		func(c *Config, _ *io.Writer) {
			c.MaxInFlight = 4
			c.Cache.StoreTimeout = 10 * time.Second
			c.FeatureBudget = 10 * time.Second
		})
	dec := tactv1.NewDecisionServiceClient(ts.conn)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Go(func() {
			_, err := dec.Decide(context.Background(), &tactv1.DecideRequest{ClientId: fmt.Sprintf("C%05d", 10+i), Channel: tactv1.Channel_CHANNEL_WEB})
			errs <- err
		})
	}
	for range 4 {
		<-held.entered // all four are in the store read
	}
	_, err := dec.Decide(t.Context(), &tactv1.DecideRequest{ClientId: "C00020", Channel: tactv1.Channel_CHANNEL_WEB})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "overloaded") {
		t.Errorf("5th gRPC call: %v, want RESOURCE_EXHAUSTED", err)
	}
	resp, err := http.Post(ts.base+"/v1/decisions", "application/json", strings.NewReader(`{"client_id":"C00021","channel":"CHANNEL_WEB"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("5th REST call: %d %s, want 429 with Retry-After", resp.StatusCode, body)
	}
	if len(held.entered) != 0 {
		t.Error("a refused call reached the store")
	}
	close(held.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("an admitted call failed: %v", err)
		}
	}
	// Recovered at once.
	for i := range 10 {
		if _, err := dec.Decide(t.Context(), &tactv1.DecideRequest{ClientId: fmt.Sprintf("C%05d", 30+i), Channel: tactv1.Channel_CHANNEL_WEB}); err != nil {
			t.Fatalf("after the load: %v", err)
		}
	}
	m, _ := http.Get(ts.base + "/metrics")
	mb, _ := io.ReadAll(m.Body)
	m.Body.Close()
	if !strings.Contains(string(mb), `tact_requests_shed_total{otel_scope_name="github.com/tact-nba/tact",otel_scope_schema_url="",otel_scope_version="",reason="in_flight"} 2`) {
		t.Errorf("shed metric missing or not 2:\n%s", grep(string(mb), "shed"))
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRateLimitPerCaller: each API key has its own bucket.
func TestRateLimitPerCaller(t *testing.T) {
	keys := fmt.Sprintf("keys:\n  - {name: a, sha256: %s, roles: [agent]}\n  - {name: b, sha256: %s, roles: [agent]}\n", sha("key-a"), sha("key-b"))
	path := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(path, []byte(keys), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Deps{}, func(c *Config, _ *io.Writer) { c.AuthAPIKeysFile, c.RateLimit, c.RateBurst = path, 1, 5 })
	dec := tactv1.NewDecisionServiceClient(ts.conn)
	call := func(key string) error {
		_, err := dec.Decide(t.Context(), &tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_WEB},
			grpc.PerRPCCredsCallOption{Creds: bearer(key)})
		return err
	}
	limited := 0
	for range 10 {
		if err := call("key-a"); status.Code(err) == codes.ResourceExhausted && strings.Contains(err.Error(), "rate limit") {
			limited++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if limited < 4 || limited > 5 {
		t.Errorf("10 calls at once with a burst of 5 at 1/s: %d limited, want 4-5", limited)
	}
	if err := call("key-b"); err != nil {
		t.Errorf("another caller: %v", err)
	}
}

func TestDefaultDeadline(t *testing.T) {
	var got time.Time
	_, err := deadline(2*time.Second)(context.Background(), nil, &grpc.UnaryServerInfo{}, func(ctx context.Context, _ any) (any, error) {
		got, _ = ctx.Deadline()
		return nil, nil
	})
	if err != nil || got.IsZero() || time.Until(got) > 2*time.Second {
		t.Errorf("deadline %v, %v; want one within 2 s", got, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_, _ = deadline(2*time.Second)(ctx, nil, &grpc.UnaryServerInfo{}, func(ctx context.Context, _ any) (any, error) {
		got, _ = ctx.Deadline()
		return nil, nil
	})
	if time.Until(got) < 59*time.Minute {
		t.Errorf("the caller's own deadline was shortened to %v", time.Until(got))
	}
}
