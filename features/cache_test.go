package features

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// flakySource wraps a real store: it counts reads, can fail them, and can
// hold them until released.
type flakySource struct {
	Source
	reads atomic.Int64
	fail  atomic.Bool
	hold  chan struct{} // when not nil, reads wait for it to close
}

func (f *flakySource) Get(ctx context.Context, id string) (Record, error) {
	f.reads.Add(1)
	if f.hold != nil {
		select {
		case <-f.hold:
		case <-ctx.Done():
			return Record{}, ctx.Err()
		}
	}
	if f.fail.Load() {
		return Record{}, errors.New("store down")
	}
	return f.Source.Get(ctx, id)
}

// clock is a settable time for TTL tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestCache(t *testing.T, src Source, clk *clock) *Cache {
	t.Helper()
	c, err := NewCache(src, CacheConfig{TTL: time.Minute, StaleFor: time.Hour, NegativeTTL: 10 * time.Second, StoreTimeout: 2 * time.Second}, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func seeded(t *testing.T) *Bolt {
	t.Helper()
	b, _ := openTemp(t)
	t.Cleanup(func() { b.Close() })
	if err := b.PutBatch(t.Context(), []Record{{ClientID: "C1", Values: map[string]Value{"balance": Number(100)}}}); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCacheStampedeReadsOnce(t *testing.T) {
	src := &flakySource{Source: seeded(t), hold: make(chan struct{})}
	c := newTestCache(t, src, &clock{t: time.Unix(1e9, 0)})
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range 1000 {
		wg.Go(func() {
			r, err := c.Get(context.Background(), "C1")
			if err != nil || num(&r, "balance") != 100 || r.Stale {
				bad.Add(1)
			}
		})
	}
	// Let the callers pile up on the held read, then release it.
	time.Sleep(100 * time.Millisecond)
	close(src.hold)
	wg.Wait()
	if n := src.reads.Load(); n != 1 {
		t.Errorf("1,000 concurrent misses made %d store reads, want 1", n)
	}
	if bad.Load() != 0 {
		t.Errorf("%d callers got a wrong answer", bad.Load())
	}
	if _, err := c.Get(t.Context(), "C1"); err != nil || src.reads.Load() != 1 {
		t.Errorf("a later get read the store again (%d reads, %v)", src.reads.Load(), err)
	}
}

// TestCacheLateJoinerSharesTheRead: a caller that missed the cache while
// another read of the client was in flight, and reaches the read only
// after it finished, takes the fresh entry instead of reading again.
func TestCacheLateJoinerSharesTheRead(t *testing.T) {
	src := &flakySource{Source: seeded(t)}
	clk := &clock{t: time.Unix(1e9, 0)}
	c := newTestCache(t, src, clk)
	if _, err := c.Get(t.Context(), "C1"); err != nil {
		t.Fatal(err)
	}
	// What the late caller does after its miss: join (or start) a read.
	e, err := c.load("C1")
	if err != nil || num(&e.rec, "balance") != 100 {
		t.Fatalf("late joiner: %+v, %v", e, err)
	}
	if n := src.reads.Load(); n != 1 {
		t.Errorf("late joiner made the store reads %d, want 1", n)
	}
	// Once the entry is past its TTL, a read does reach the store.
	clk.Advance(2 * time.Minute)
	if _, err := c.load("C1"); err != nil || src.reads.Load() != 2 {
		t.Errorf("expired entry: %v, %d reads; want a second read", err, src.reads.Load())
	}
}

func TestCacheFreshStaleAndExpired(t *testing.T) {
	src := &flakySource{Source: seeded(t)}
	clk := &clock{t: time.Unix(1e9, 0)}
	c := newTestCache(t, src, clk)
	ctx := t.Context()

	if _, err := c.Get(ctx, "C1"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(30 * time.Second)
	if r, err := c.Get(ctx, "C1"); err != nil || r.Stale || src.reads.Load() != 1 {
		t.Fatalf("within TTL: %v stale=%v reads=%d; want a fresh hit", err, r.Stale, src.reads.Load())
	}
	// Past TTL with the store down: served stale.
	src.fail.Store(true)
	clk.Advance(time.Minute)
	r, err := c.Get(ctx, "C1")
	if err != nil || !r.Stale || num(&r, "balance") != 100 {
		t.Fatalf("store down within the stale window: %+v, %v; want the last record, stale", r, err)
	}
	// Past the stale window: the error.
	clk.Advance(2 * time.Hour)
	if _, err := c.Get(ctx, "C1"); err == nil {
		t.Fatal("store down past the stale window: got a record, want the error")
	}
	// Store back: fresh again.
	src.fail.Store(false)
	if r, err := c.Get(ctx, "C1"); err != nil || r.Stale {
		t.Fatalf("store back: %+v, %v", r, err)
	}
	s := c.Stats()
	if s.StaleServes != 1 || s.StoreErrors != 2 || s.Hits != 1 {
		t.Errorf("stats %+v; want 1 stale serve, 2 store errors, 1 hit", s)
	}
}

func TestCacheSlowStoreServesStaleWithinCallerBudget(t *testing.T) {
	src := &flakySource{Source: seeded(t)}
	clk := &clock{t: time.Unix(1e9, 0)}
	c := newTestCache(t, src, clk)
	if _, err := c.Get(t.Context(), "C1"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	src.hold = make(chan struct{})
	defer close(src.hold)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	r, err := c.Get(ctx, "C1")
	if err != nil || !r.Stale {
		t.Fatalf("slow store past TTL: %+v, %v; want the stale record when the caller's budget ends", r, err)
	}
	// An unknown client with a slow store: the caller's error.
	ctx2, cancel2 := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel2()
	if _, err := c.Get(ctx2, "C2"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow store, nothing cached: %v, want DeadlineExceeded", err)
	}
}

func TestCacheNegativeAndWriteThrough(t *testing.T) {
	src := &flakySource{Source: seeded(t)}
	clk := &clock{t: time.Unix(1e9, 0)}
	c := newTestCache(t, src, clk)
	ctx := t.Context()
	for range 3 {
		if _, err := c.Get(ctx, "C9"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown client: %v, want ErrNotFound", err)
		}
	}
	if src.reads.Load() != 1 || c.Stats().NegativeHits != 2 {
		t.Errorf("unknown client read %d times (want 1), negative hits %d (want 2)", src.reads.Load(), c.Stats().NegativeHits)
	}
	// A put is served at once, without waiting for the negative entry or
	// the TTL to expire.
	if err := c.PutBatch(ctx, []Record{{ClientID: "C9", Values: map[string]Value{"balance": Number(7)}}, {ClientID: "C1", Values: map[string]Value{"balance": Number(8)}}}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]float64{"C9": 7, "C1": 8} {
		r, err := c.Get(ctx, id)
		if err != nil || num(&r, "balance") != want {
			t.Errorf("after put, %s = %+v, %v; want balance %v", id, r, err, want)
		}
	}
	clk.Advance(11 * time.Second)
	if r, err := c.Get(ctx, "C9"); err != nil || num(&r, "balance") != 7 {
		t.Errorf("after the negative TTL: %+v, %v", r, err)
	}
}

func TestCachedRecordsKeepAMemo(t *testing.T) {
	src := &flakySource{Source: seeded(t)}
	c := newTestCache(t, src, &clock{t: time.Unix(1e9, 0)})
	r1, err := c.Get(t.Context(), "C1")
	if err != nil {
		t.Fatal(err)
	}
	r1.Memoize("bundle-1", 42)
	// Another copy of the same cached record sees it.
	r2, err := c.Get(t.Context(), "C1")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := r2.Memo("bundle-1"); !ok || v != 42 {
		t.Errorf("Memo on another copy = %v, %v; want 42", v, ok)
	}
	if _, ok := r2.Memo("bundle-2"); ok {
		t.Error("Memo for another key found")
	}
	// A put replaces the record, and with it the memo.
	if err := c.PutBatch(t.Context(), []Record{{ClientID: "C1", Values: map[string]Value{"balance": Number(1)}}}); err != nil {
		t.Fatal(err)
	}
	r3, _ := c.Get(t.Context(), "C1")
	if _, ok := r3.Memo("bundle-1"); ok {
		t.Error("a replaced record kept the old memo")
	}
	// Records straight from the store keep none.
	direct, _ := src.Get(t.Context(), "C1")
	direct.Memoize("k", 1)
	if _, ok := direct.Memo("k"); ok {
		t.Error("a record not from the cache memoized")
	}
}

// num reads a numeric feature (NaN when missing), packed or not.
func num(r *Record, name string) float64 {
	if v, ok := r.Num(name); ok {
		return v
	}
	return math.NaN()
}
