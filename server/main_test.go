package server

import (
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/tact-nba/tact/features/redistest"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// server, cache, watcher and decision log must stop when it is told to.
// It stops the package's Redis Cluster, if a test started it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		if cluster.c != nil {
			cluster.c.Stop()
		}
	}))
}

// cluster is the package's one Redis Cluster (three masters), started by
// the first test that needs it; each test keeps to a key prefix of its own.
var cluster struct {
	once sync.Once
	c    *redistest.Cluster
	err  error
}

func redisCluster(t *testing.T) *redistest.Cluster {
	t.Helper()
	cluster.once.Do(func() { cluster.c, cluster.err = redistest.StartCluster(3, 0) })
	if cluster.err != nil {
		if redistest.Required() {
			t.Fatalf("TACT_REQUIRE_REDIS=1: %v", cluster.err)
		}
		t.Skip(cluster.err)
	}
	return cluster.c
}
