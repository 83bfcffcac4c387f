package server

import (
	"log/slog"
	"math"
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
		return 2*c.Cache.MaxBytes + 192<<20
	}
}

// GCPercentFor returns the collector's GOGC that c asks for, given
// whether a memory limit is in force. The default under a limit is 400: a
// decision allocates about 10 KB, so with Go's 100 the collector runs
// several times a second over a small heap, and each cycle's marking
// shows in the tail of the calls it overlaps (measured in BENCHMARKS.md);
// the memory limit, not GOGC, then bounds the heap. Without a limit it is
// Go's own 100, and off is refused (the heap would have no bound).
func (c Config) GCPercentFor(limited bool) int {
	switch {
	case c.GCPercent == -1 && !limited:
		return 100
	case c.GCPercent != 0:
		return c.GCPercent
	case limited:
		return 400
	default:
		return 100
	}
}

// ApplyMemoryLimit sets the runtime's soft memory limit and the
// collector's GOGC from c, each unless its environment variable
// (GOMEMLIMIT, GOGC) is set and the runtime has applied it, and logs what
// is in force. Call it once, from main.
func ApplyMemoryLimit(c Config, logger *slog.Logger) {
	limited := true
	if v, ok := os.LookupEnv("GOMEMLIMIT"); ok && v != "" {
		logger.Info("memory limit from GOMEMLIMIT", "limit", v)
		limited = debug.SetMemoryLimit(-1) != math.MaxInt64
	} else if limit := c.MemoryLimitBytes(); limit >= 0 {
		debug.SetMemoryLimit(limit)
		logger.Info("memory limit", "bytes", limit, "cache_bytes", c.Cache.MaxBytes)
	} else {
		limited = false
	}
	if v, ok := os.LookupEnv("GOGC"); ok && v != "" {
		logger.Info("collector percentage from GOGC", "gogc", v)
		return
	}
	pct := c.GCPercentFor(limited)
	if c.GCPercent == -1 && pct != -1 {
		logger.Warn("gc_percent -1 (off) needs a memory limit; using 100", "gc_percent", c.GCPercent)
	}
	debug.SetGCPercent(pct)
	logger.Info("collector percentage", "gc_percent", pct)
}
