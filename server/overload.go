package server

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
)

// admission bounds the calls being served. It runs before a call is
// queued: in gRPC's tap handle (when a stream arrives, before a goroutine
// or a decode is spent on it) and first thing in the HTTP handler. A call
// over the limit is refused at once with RESOURCE_EXHAUSTED / 429: under
// overload, the calls let in keep their latency and the rest learn at once
// to go elsewhere or fall back. (An interceptor counter would run only once
// the call had waited for a goroutine and been decoded: under CPU
// saturation it never fires in time.)
type admission struct {
	limit    int64
	inFlight atomic.Int64
	shed     func(reason string)
}

// tap is grpc.InTapHandle.
func (a *admission) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if a.limit <= 0 {
		return ctx, nil
	}
	if n := a.inFlight.Add(1); n > a.limit {
		a.inFlight.Add(-1)
		a.shed("in_flight")
		return nil, status.Errorf(codes.ResourceExhausted, "overloaded: %d calls in flight; retry later", a.limit)
	}
	return context.WithValue(ctx, admittedKey{}, true), nil
}

type admittedKey struct{}

// statsHandler ends the count of an admitted call.
type admissionStats struct{ a *admission }

func (h admissionStats) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (h admissionStats) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if _, end := s.(*stats.End); end && ctx.Value(admittedKey{}) != nil {
		h.a.inFlight.Add(-1)
	}
}
func (h admissionStats) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (h admissionStats) HandleConn(context.Context, stats.ConnStats) {}

// httpMiddleware applies the same limit to REST calls.
func (a *admission) httpMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.limit > 0 {
			if n := a.inFlight.Add(1); n > a.limit {
				a.inFlight.Add(-1)
				a.shed("in_flight")
				w.Header().Set("Retry-After", "1")
				writeError(w, http.StatusTooManyRequests, int(codes.ResourceExhausted), "overloaded: too many calls in flight; retry later")
				return
			}
			defer a.inFlight.Add(-1)
		}
		next.ServeHTTP(w, r)
	})
}

// callerLimits are per-caller rate limits (token buckets), by the
// authenticated caller's name, else by the peer's address.
type callerLimits struct {
	rate  rate.Limit
	burst int
	shed  func(reason string)

	mu       sync.Mutex
	limiters map[string]*callerLimiter
}

type callerLimiter struct {
	l    *rate.Limiter
	seen time.Time
}

// maxCallers bounds the limiters kept; the longest unseen go first.
const maxCallers = 10_000

func (c *callerLimits) allow(caller string) bool {
	if c == nil || c.rate <= 0 {
		return true
	}
	now := time.Now()
	c.mu.Lock()
	cl, ok := c.limiters[caller]
	if !ok {
		if len(c.limiters) >= maxCallers {
			c.evict(now)
		}
		cl = &callerLimiter{l: rate.NewLimiter(c.rate, c.burst)}
		c.limiters[caller] = cl
	}
	cl.seen = now
	c.mu.Unlock()
	if !cl.l.AllowN(now, 1) {
		c.shed("rate_limit")
		return false
	}
	return true
}

// evict drops the limiters not used for a minute (or, failing that, half).
func (c *callerLimits) evict(now time.Time) {
	for k, v := range c.limiters {
		if now.Sub(v.seen) > time.Minute {
			delete(c.limiters, k)
		}
	}
	for k := range c.limiters {
		if len(c.limiters) < maxCallers/2 {
			break
		}
		delete(c.limiters, k)
	}
}

// deadline gives a call without a deadline the default one.
func deadline(d time.Duration) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if _, ok := ctx.Deadline(); !ok && d > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return handler(ctx, req)
	}
}
