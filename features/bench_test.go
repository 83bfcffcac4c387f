package features

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkCacheGetHit reads cached clients with 40 features, in parallel.
func BenchmarkCacheGetHit(b *testing.B) {
	st, _ := openTemp(b)
	defer st.Close()
	const clients = 10_000
	recs := make([]Record, clients)
	for i := range recs {
		v := make(map[string]Value, 40)
		for j := range 40 {
			v[fmt.Sprintf("feature_%02d", j)] = Number(float64(i * j))
		}
		recs[i] = Record{ClientID: fmt.Sprintf("C%06d", i), Values: v}
	}
	if err := st.PutBatch(context.Background(), recs); err != nil {
		b.Fatal(err)
	}
	c, err := NewCache(st, CacheConfig{TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ids := make([]string, clients)
	for i := range ids {
		ids[i] = recs[i].ClientID
		if _, err := c.Get(context.Background(), ids[i]); err != nil {
			b.Fatal(err)
		}
	}
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
	b.ReportMetric(float64(recordCost(&recs[0])), "cache-bytes/client")
	if s := c.Stats(); s.StoreReads != clients {
		b.Errorf("store reads %d during the benchmark, want only the %d warm-up reads", s.StoreReads, clients)
	}
}

// BenchmarkBoltGet reads clients with 40 features from the bbolt file.
func BenchmarkBoltGet(b *testing.B) {
	st, _ := openTemp(b)
	defer st.Close()
	recs := make([]Record, 1000)
	for i := range recs {
		v := make(map[string]Value, 40)
		for j := range 40 {
			v[fmt.Sprintf("feature_%02d", j)] = Number(float64(i * j))
		}
		recs[i] = Record{ClientID: fmt.Sprintf("C%06d", i), Values: v}
	}
	if err := st.PutBatch(context.Background(), recs); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		i := 0
		for pb.Next() {
			i++
			if _, err := st.Get(ctx, recs[i%len(recs)].ClientID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
