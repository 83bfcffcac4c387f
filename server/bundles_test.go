package server

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model/demo"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// writeBundle copies the demo bundle into dir/name with another version.
func writeBundle(t *testing.T, dir, name, version string) {
	t.Helper()
	dst := filepath.Join(dir, name)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	err := fs.WalkDir(demo.BundleFS(), "bundle", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := fs.ReadFile(demo.BundleFS(), p)
		if err != nil {
			return err
		}
		if d.Name() == "bundle.json" {
			raw = bytes.Replace(raw, []byte(`"version": "demo-2"`), []byte(`"version": "`+version+`"`), 1)
		}
		return os.WriteFile(filepath.Join(dst, d.Name()), raw, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// swapCurrent points dir/current at target atomically (symlink + rename).
func swapCurrent(t *testing.T, dir, target string) {
	t.Helper()
	tmp := filepath.Join(dir, "current.new")
	if err := os.Symlink(target, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, currentBundle)); err != nil {
		t.Fatal(err)
	}
}

// TestBundleHotSwapUnderLoad swaps the bundle while callers decide: no
// call fails, responses move to the new version, and a broken bundle is
// rejected with a log line while the previous one keeps serving.
func TestBundleHotSwapUnderLoad(t *testing.T) {
	dir := t.TempDir()
	writeBundle(t, dir, "v1", "test-1")
	writeBundle(t, dir, "v2", "test-2")
	swapCurrent(t, dir, "v1")
	logs := &syncBuffer{}
	ts := startServer(t, Deps{}, func(c *Config, w *io.Writer) {
		c.ModelDir = dir
		c.ModelPoll = 100 * time.Millisecond
		*w = logs
	})
	client := tactv1.NewDecisionServiceClient(ts.conn)

	var seen sync.Map // version -> true
	var calls, failures atomic.Int64
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				resp, err := client.Decide(context.Background(), &tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND})
				calls.Add(1)
				if err != nil {
					failures.Add(1)
					t.Errorf("Decide during the swap: %v", err)
					return
				}
				seen.Store(resp.GetModelVersion(), true)
			}
		})
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; logs:\n%s", what, logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("test-1 in responses", func() bool { _, ok := seen.Load("test-1"); return ok })
	swapCurrent(t, dir, "v2")
	waitFor("test-2 in responses", func() bool { _, ok := seen.Load("test-2"); return ok })

	// A broken bundle: a model file that is not JSON.
	writeBundle(t, dir, "v3", "test-3")
	if err := os.WriteFile(filepath.Join(dir, "v3", "mortgage.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	swapCurrent(t, dir, "v3")
	waitFor("the rejection in the log", func() bool { return strings.Contains(logs.String(), "model bundle rejected") })
	before := calls.Load()
	waitFor("more calls after the rejection", func() bool { return calls.Load() > before+50 })
	stop()
	wg.Wait()

	if _, ok := seen.Load("test-3"); ok {
		t.Error("the broken bundle served decisions")
	}
	if v := ts.engine.Bundle().Version(); v != "test-2" {
		t.Errorf("bundle in use %q after the broken one, want test-2", v)
	}
	l := logs.String()
	for _, want := range []string{`"version":"test-2"`, "mortgage.json", `"rejected_version":"test-3"`} {
		if !strings.Contains(l, want) {
			t.Errorf("logs lack %s:\n%s", want, l)
		}
	}
	if n := strings.Count(l, "model bundle rejected"); n != 1 {
		t.Errorf("the rejection was logged %d times, want once", n)
	}
	t.Logf("%d calls, %d failed", calls.Load(), failures.Load())
}

func TestModelDirMustHoldABundle(t *testing.T) {
	cfg := Defaults()
	cfg.Demo, cfg.DrainDelay = "true", 0 // the demo bank in a temporary data_dir; no balancer to wait for
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.DataDir, cfg.ModelDir = "127.0.0.1:0", "127.0.0.1:0", t.TempDir(), t.TempDir()
	_, err := New(t.Context(), cfg, discardLogger(), Deps{})
	if err == nil || !strings.Contains(err.Error(), "model_dir") || !strings.Contains(err.Error(), "bundle.json") {
		t.Errorf("New with an empty model_dir: %v, want an error naming model_dir and bundle.json", err)
	}
	// The failed New released the store's file lock.
	store, err := features.OpenBolt(filepath.Join(cfg.DataDir, "tact.db"))
	if err != nil {
		t.Fatalf("store still locked after a failed New: %v", err)
	}
	store.Close()
}
