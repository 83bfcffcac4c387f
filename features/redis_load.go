package features

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// The contact centre's load board, shared by every replica, is one hash:
//
//	<prefix>load   field: queue name, value: the queue's state
//
// (the latest report and its busy/calm states, encoded by model/load). One
// hash is read whole in one round trip by every replica's refresh (a few
// times a second; there are at most 10,000 queues), and a single key lives
// in one Redis Cluster slot, so the compare-and-swap below is one atomic
// script wherever it runs. A report is stale within minutes, so the hash
// needs no expiry; queues that stop reporting stay, stale, until deleted.

// swapLoadScript stores ARGV[3] as field ARGV[1] if the field still holds
// ARGV[2] ("" for none). KEYS[1] the load hash.
var swapLoadScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if (cur or '') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
`)

// LoadKey returns the key of the load board's hash.
func (r *Redis) LoadKey() string { return r.prefix + "load" }

// LoadState returns a queue's stored state, nil when there is none.
func (r *Redis) LoadState(ctx context.Context, queue string) ([]byte, error) {
	raw, err := r.client.HGet(ctx, r.LoadKey(), queue).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, r.unavailable("read queue load", err)
	}
	return raw, nil
}

// SwapLoadState stores next as the queue's state if the stored state is
// still prev (nil: none), atomically, and reports whether it did.
func (r *Redis) SwapLoadState(ctx context.Context, queue string, prev, next []byte) (bool, error) {
	n, err := swapLoadScript.Run(ctx, r.client, []string{r.LoadKey()}, queue, prev, next).Int()
	if err != nil {
		return false, r.unavailable("write queue load", err)
	}
	return n == 1, nil
}

// LoadStates returns every queue's stored state.
func (r *Redis) LoadStates(ctx context.Context) (map[string][]byte, error) {
	all, err := r.client.HGetAll(ctx, r.LoadKey()).Result()
	if err != nil {
		return nil, r.unavailable("read queue loads", err)
	}
	out := make(map[string][]byte, len(all))
	for q, v := range all {
		out[q] = []byte(v)
	}
	return out, nil
}
