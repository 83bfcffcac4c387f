package server

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// memoryHeadroom is the least room a memory_limit must leave above the
// feature cache for everything else a server keeps.
const memoryHeadroom = 64 << 20

// MemoryLimitBytes returns the Go runtime's soft memory limit that c asks
// for, or -1 for none. The default, twice cache_bytes plus 192 MiB, leaves
// the collector its usual room (the heap grows to about twice what is live
// before a collection, and the cache is most of what is live) while
// keeping the process's memory in a known bound: with the default 256 MiB
// cache, 704 MiB.
func (c Config) MemoryLimitBytes() int64 {
	switch {
	case c.MemoryLimit < 0:
		return -1
	case c.MemoryLimit > 0:
		return c.MemoryLimit
	default:
		return 2*c.CacheBytes + 192<<20
	}
}

// ApplyMemoryLimit sets the runtime's soft memory limit from c, unless
// GOMEMLIMIT is set in the environment (the runtime has applied it), and
// logs what is in force. Call it once, from main.
func ApplyMemoryLimit(c Config, logger *slog.Logger) {
	if v, ok := os.LookupEnv("GOMEMLIMIT"); ok && v != "" {
		logger.Info("memory limit from GOMEMLIMIT", "limit", v)
		return
	}
	limit := c.MemoryLimitBytes()
	if limit < 0 {
		return
	}
	debug.SetMemoryLimit(limit)
	logger.Info("memory limit", "bytes", limit, "cache_bytes", c.CacheBytes)
}
