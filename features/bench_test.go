package features

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tact-nba/tact/features/redistest"
)

// fortyFeatureClients makes n clients with 40 numeric features.
func fortyFeatureClients(n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		v := make(map[string]Value, 40)
		for j := range 40 {
			v[fmt.Sprintf("feature_%02d", j)] = Number(float64(i * j))
		}
		recs[i] = Record{ClientID: fmt.Sprintf("C%06d", i), Values: v}
	}
	return recs
}

// BenchmarkCacheGetHit reads cached clients with 40 features, in parallel.
func BenchmarkCacheGetHit(b *testing.B) {
	st, _ := openTemp(b)
	defer st.Close()
	const clients = 10_000
	recs := fortyFeatureClients(clients)
	if err := st.PutBatch(context.Background(), recs); err != nil {
		b.Fatal(err)
	}
	c, err := NewCache(st, CacheConfig{TTL: time.Hour}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ids := make([]string, clients)
	for i := range ids {
		ids[i] = recs[i].ClientID
	}
	// Measure the heap the cached clients take (records decoded from the
	// store plus cache entries), not only the cost estimate.
	recs = nil
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, id := range ids {
		if _, err := c.Get(context.Background(), id); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heapPerClient := float64(after.HeapAlloc-before.HeapAlloc) / clients
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		i := 0
		for pb.Next() {
			i++
			if _, err := c.Get(ctx, ids[i%clients]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(heapPerClient, "heap-bytes/client")
	b.ReportMetric(float64(c.cost(ids[0])), "cost-bytes/client")
	if s := c.Stats(); s.StoreReads != clients {
		b.Errorf("store reads %d during the benchmark, want only the %d warm-up reads", s.StoreReads, clients)
	}
}

// BenchmarkBoltGet reads clients with 40 features from the bbolt file, in
// the packed form the cache keeps (what a cache miss costs).
func BenchmarkBoltGet(b *testing.B) {
	st, _ := openTemp(b)
	defer st.Close()
	recs := fortyFeatureClients(1000)
	if err := st.PutBatch(context.Background(), recs); err != nil {
		b.Fatal(err)
	}
	if rec, err := st.Get(context.Background(), recs[0].ClientID); err != nil || rec.packed == "" {
		b.Fatalf("a read record is not packed: %+v, %v", rec, err)
	}
	benchGets(b, st, recs)
}

// benchGets reads the records' clients from src in parallel.
func benchGets(b *testing.B, src Source, recs []Record) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		i := 0
		for pb.Next() {
			i++
			if _, err := src.Get(ctx, recs[i%len(recs)].ClientID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkImportBolt imports 40-feature CSV rows into bbolt in batches of
// 5,000, one pass (--skip-bad), and reports rows/s.
func BenchmarkImportBolt(b *testing.B) {
	var sb, sch strings.Builder
	sch.WriteString("features:\n")
	sb.WriteString("client_id")
	for j := range 40 {
		fmt.Fprintf(&sch, "  - {name: f%02d, type: number}\n", j)
		fmt.Fprintf(&sb, ",f%02d", j)
	}
	sb.WriteString("\n")
	const rows = 20_000
	for i := range rows {
		fmt.Fprintf(&sb, "C%07d", i)
		for j := range 40 {
			fmt.Fprintf(&sb, ",%d.%02d", i*j%10007, j)
		}
		sb.WriteString("\n")
	}
	file := sb.String()
	schema, err := ReadSchema(strings.NewReader(sch.String()))
	if err != nil {
		b.Fatal(err)
	}
	st, _ := openTemp(b)
	defer st.Close()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		res, err := Import(context.Background(), func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(file)), nil }, schema, st, ImportOptions{SkipBad: true})
		if err != nil || res.Imported != rows {
			b.Fatalf("Import = %+v, %v", res, err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/time.Since(start).Seconds(), "rows/s")
}

// BenchmarkRedisGet reads clients with 40 features from a real
// redis-server on loopback, in parallel, with a logger as tactd opens it
// (so the reachability hook runs on every call).
func BenchmarkRedisGet(b *testing.B) {
	srv := redistest.Start(b)
	r, err := OpenRedis(context.Background(), RedisConfig{Addr: srv.Addr}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	recs := fortyFeatureClients(1000)
	if err := r.PutBatch(context.Background(), recs); err != nil {
		b.Fatal(err)
	}
	benchGets(b, r, recs)
}
