package features

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisLogger routes go-redis's own log lines (a dial that failed, a
// connection dropped) into slog at debug level, as one structured line
// each instead of the library's plain text on standard error. go-redis
// keeps one logger per process, so the last Redis opened with a logger
// sets it.
type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.DebugContext(ctx, "redis client", "detail", strings.TrimSpace(fmt.Sprintf(format, v...)))
}

// reachability watches every Redis command and pipeline (a go-redis hook)
// and logs one warning when Redis stops answering (calls have failed for
// downAfter with none succeeding) and one when it answers again, with how
// many calls failed and for how long. A reply from Redis, an error reply
// included, means it is reachable; a call the caller cancelled says
// nothing.
type reachability struct {
	logger    *slog.Logger
	where     string
	downAfter time.Duration
	now       func() time.Time
	// onFailure runs after every failed call (a cluster reloads its slot
	// map, so that a failed-over master's replica is found).
	onFailure func()

	troubled atomic.Bool // a failure since the last success: take the lock

	mu           sync.Mutex
	down         bool
	firstFailure time.Time
	failures     int64
	lastErr      string
}

var _ redis.Hook = (*reachability)(nil)

func (r *reachability) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *reachability) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		r.observe(err)
		return err
	}
}

func (r *reachability) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		r.observe(err)
		return err
	}
}

// observe notes the outcome of one call.
func (r *reachability) observe(err error) {
	failed := unreachable(err)
	if !failed && !r.troubled.Load() {
		return // the everyday case, without a lock
	}
	if err != nil && !failed && errors.Is(err, context.Canceled) {
		return
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !failed {
		if r.down {
			r.logger.Warn("redis reachable again", "redis", r.where, "failed_calls", r.failures,
				"down_for", now.Sub(r.firstFailure).Round(time.Millisecond).String())
		}
		r.down, r.failures, r.firstFailure, r.lastErr = false, 0, time.Time{}, ""
		r.troubled.Store(false)
		return
	}
	r.troubled.Store(true)
	if r.onFailure != nil {
		r.onFailure()
	}
	if r.failures == 0 {
		r.firstFailure = now
	}
	r.failures++
	r.lastErr = err.Error()
	if !r.down && now.Sub(r.firstFailure) >= r.downAfter {
		r.down = true
		r.logger.Warn("redis unreachable", "redis", r.where, "failed_calls", r.failures,
			"since", r.firstFailure.UTC().Format(time.RFC3339Nano), "err", r.lastErr)
	}
}

// unreachable reports whether err says Redis could not be reached or did
// not answer in time (not: no error, a missing key, an error reply, or a
// call the caller cancelled).
func unreachable(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) {
		return false
	}
	var reply redis.Error
	return !errors.As(err, &reply) // a reply is Redis answering, with an error
}
