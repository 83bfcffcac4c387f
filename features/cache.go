package features

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"golang.org/x/sync/singleflight"
)

// Source is the store a Cache reads through and writes through.
type Source interface {
	Get(ctx context.Context, clientID string) (Record, error)
	PutBatch(ctx context.Context, recs []Record) error
}

var _ Source = (*Bolt)(nil)

// CacheConfig tunes a Cache. Zero fields take the defaults in brackets.
// The koanf, default and help tags declare tactd's configuration keys
// (see server.Config); a Cache built outside tactd needs none of them.
type CacheConfig struct {
	// MaxBytes bounds the memory of cached records (256 MiB), estimated
	// per record by recordCost.
	MaxBytes int64 `koanf:"cache_bytes" default:"268435456" help:"memory bound of the feature cache (bytes)"`
	// TTL is how long a record is served without asking the store (10m).
	TTL time.Duration `koanf:"cache_ttl" default:"10m" help:"how long cached features are served without the store"`
	// StaleFor is how long past TTL a record is still served, marked
	// Stale, when the store fails or does not answer in time (15m).
	StaleFor time.Duration `koanf:"cache_stale" default:"15m" help:"how long past cache_ttl features are served, degraded, when the store fails"`
	// NegativeTTL is how long an unknown client is remembered (10s).
	NegativeTTL time.Duration `koanf:"cache_negative_ttl" default:"10s" help:"how long an unknown client is remembered"`
	// StoreTimeout bounds one store read, shared by every caller waiting
	// for it (1s). Each caller also stops waiting when its own context
	// ends.
	StoreTimeout time.Duration `koanf:"store_timeout" default:"1s" help:"longest feature-store read"`
}

func (c *CacheConfig) defaults() {
	if c.MaxBytes == 0 {
		c.MaxBytes = 256 << 20
	}
	if c.TTL == 0 {
		c.TTL = 10 * time.Minute
	}
	if c.StaleFor == 0 {
		c.StaleFor = 15 * time.Minute
	}
	if c.NegativeTTL == 0 {
		c.NegativeTTL = 10 * time.Second
	}
	if c.StoreTimeout == 0 {
		c.StoreTimeout = time.Second
	}
}

// Cache is an in-process cache of client features in front of a Source:
// bounded by bytes (ristretto), fresh for TTL, concurrent misses for one
// client collapsed into one store read (singleflight), the last value
// served for StaleFor more when the store fails (stale-if-error), unknown
// clients remembered for NegativeTTL, and puts written through. It is safe
// for concurrent use.
//
// Across replicas a put on one replica is seen by the others within TTL.
type Cache struct {
	cfg   CacheConfig
	now   func() time.Time
	src   Source
	cache *ristretto.Cache[string, *entry]
	group singleflight.Group
	stats cacheCounters

	// mu guards closed: writes into the cache take it shared, Close
	// exclusively, so that a read finishing after Close writes nothing.
	mu     sync.RWMutex
	closed bool
}

// entry is a cached record, or the memory of an unknown client.
type entry struct {
	rec      Record
	notFound bool
	// readStart is when the read (or put) that produced the entry began;
	// an entry from an older read never replaces a newer one.
	readStart time.Time
	cost      int64
}

type cacheCounters struct {
	hits, misses, staleServes, negativeHits, storeErrors, storeReads atomic.Uint64
	storeNanos                                                       atomic.Int64
}

// CacheStats are the cache's counters since it was made.
type CacheStats struct {
	Hits         uint64 // fresh records served from memory
	NegativeHits uint64 // unknown clients answered from memory
	Misses       uint64 // lookups that needed the store
	StaleServes  uint64 // records served stale because the store failed
	StoreReads   uint64 // reads sent to the store (after singleflight)
	StoreErrors  uint64 // store reads that failed or timed out
	StoreTime    time.Duration
}

// NewCache returns a cache in front of src. now is the clock (nil:
// time.Now).
func NewCache(src Source, cfg CacheConfig, now func() time.Time) (*Cache, error) {
	if src == nil {
		return nil, errors.New("features: cache: no source")
	}
	cfg.defaults()
	if cfg.MaxBytes < 1<<20 || cfg.TTL < 0 || cfg.StaleFor < 0 || cfg.NegativeTTL < 0 || cfg.StoreTimeout < 0 {
		return nil, fmt.Errorf("features: cache: bad config %+v", cfg)
	}
	// About 1 KiB a record: ten counters per record that fits.
	counters := max(cfg.MaxBytes/1024*10, 10_000)
	rc, err := ristretto.NewCache(&ristretto.Config[string, *entry]{
		NumCounters: counters,
		MaxCost:     cfg.MaxBytes,
		BufferItems: 64,
		ShouldUpdate: func(cur, prev *entry) bool {
			return !cur.readStart.Before(prev.readStart)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("features: cache: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &Cache{cfg: cfg, now: now, src: src, cache: rc}, nil
}

// Close releases the cache's goroutines. Store reads still under way
// finish, but no longer fill the cache.
func (c *Cache) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cache.Close()
}

// set stores an entry and waits until lookups see it (ristretto applies
// sets asynchronously), unless the cache is closed.
func (c *Cache) set(key string, e *entry, ttl time.Duration) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return
	}
	if !c.cache.SetWithTTL(key, e, e.cost, ttl) {
		// Dropped by the admission buffer: make sure no older copy is
		// served instead.
		c.cache.Del(key)
	}
	c.cache.Wait()
}

// cost returns the cost charged for a cached client, 0 when not cached
// (for tests and benchmarks).
func (c *Cache) cost(clientID string) int64 {
	e, ok := c.cache.Get(clientID)
	if !ok {
		return 0
	}
	return e.cost
}

// fresh reports whether a cached entry may be served without a read.
func (c *Cache) fresh(e *entry, now time.Time) bool {
	age := now.Sub(e.readStart)
	if e.notFound {
		return age < c.cfg.NegativeTTL
	}
	return age < c.cfg.TTL
}

// Stats returns the counters.
func (c *Cache) Stats() CacheStats {
	return CacheStats{
		Hits:         c.stats.hits.Load(),
		NegativeHits: c.stats.negativeHits.Load(),
		Misses:       c.stats.misses.Load(),
		StaleServes:  c.stats.staleServes.Load(),
		StoreReads:   c.stats.storeReads.Load(),
		StoreErrors:  c.stats.storeErrors.Load(),
		StoreTime:    time.Duration(c.stats.storeNanos.Load()),
	}
}

// Get returns a client's features: from memory when fresh, else from the
// store. When the store fails or ctx ends first, a record within the stale
// window is returned with Stale set; otherwise the error (ErrNotFound for
// an unknown client). The returned record's Values must not be modified.
func (c *Cache) Get(ctx context.Context, clientID string) (Record, error) {
	now := c.now()
	e, ok := c.cache.Get(clientID)
	if ok && c.fresh(e, now) {
		if e.notFound {
			c.stats.negativeHits.Add(1)
			return Record{}, ErrNotFound
		}
		c.stats.hits.Add(1)
		return e.rec, nil
	}
	c.stats.misses.Add(1)
	ch := c.group.DoChan(clientID, func() (any, error) { return c.load(clientID) })
	var err error
	select {
	case res := <-ch:
		if res.Err == nil {
			ne := res.Val.(*entry)
			if ne.notFound {
				return Record{}, ErrNotFound
			}
			return ne.rec, nil
		}
		err = res.Err
	case <-ctx.Done():
		err = ctx.Err()
	}
	// The store failed or was too slow: serve the last record if it is
	// still within the stale window.
	if ok && !e.notFound && now.Sub(e.readStart) < c.cfg.TTL+c.cfg.StaleFor {
		c.stats.staleServes.Add(1)
		rec := e.rec
		rec.Stale = true
		return rec, nil
	}
	return Record{}, err
}

// load reads one client from the store with the cache's own timeout, so
// that the first caller's short deadline does not fail everyone sharing
// the read, and caches the result.
func (c *Cache) load(clientID string) (*entry, error) {
	start := c.now()
	// A caller that missed the cache just before another read of this
	// client finished can start a read of its own once that one is over:
	// look again, so that such a caller shares the fresh entry instead.
	if e, ok := c.cache.Get(clientID); ok && c.fresh(e, start) {
		return e, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.StoreTimeout)
	defer cancel()
	c.stats.storeReads.Add(1)
	rec, err := c.src.Get(ctx, clientID)
	c.stats.storeNanos.Add(int64(time.Since(start)))
	switch {
	case errors.Is(err, ErrNotFound):
		e := &entry{notFound: true, readStart: start, cost: 64 + int64(len(clientID))}
		c.set(clientID, e, c.cfg.NegativeTTL)
		return e, nil
	case err != nil:
		c.stats.storeErrors.Add(1)
		return nil, err
	}
	rec = rec.pack()
	rec.memo = new(memo)
	e := &entry{rec: rec, readStart: start, cost: recordCost(&rec)}
	// set waits until the entry is visible, so that a lookup after this
	// read (and its waiters) returns finds it and does not read the store
	// again.
	c.set(clientID, e, c.cfg.TTL+c.cfg.StaleFor)
	return e, nil
}

// PutBatch writes the records to the store and, once they are stored,
// into the cache (write-through), so that this replica serves them at once.
func (c *Cache) PutBatch(ctx context.Context, recs []Record) error {
	start := c.now()
	if err := c.src.PutBatch(ctx, recs); err != nil {
		return err
	}
	for i := range recs {
		r := recs[i].pack()
		r.Stale = false
		r.memo = new(memo)
		c.set(r.ClientID, &entry{rec: r, readStart: start, cost: recordCost(&r)}, c.cfg.TTL+c.cfg.StaleFor)
	}
	return nil
}

// recordCost estimates a record's memory in bytes: the entry and record
// (about 256), and for a packed record its packed bytes; for a map, per
// value its map slot (key header and the 64-byte
// Value, with the map's spare room: about 120) plus the name and string
// bytes. Checked against the measured heap in BenchmarkCacheGetHit (5.6 KB
// for 40 numeric features with 10-byte names). The model's memo of a
// scored client adds about 17 bytes a feature it reads, counted here as
// memoPerValue.
func recordCost(r *Record) int64 {
	n := int64(256 + len(r.ClientID))
	if r.packed != "" {
		return n + int64(len(r.packed)+r.Len()*memoPerValue)
	}
	for name, v := range r.Values {
		n += int64(len(name)+len(v.Str)) + 120 + memoPerValue
	}
	return n
}

const memoPerValue = 17
