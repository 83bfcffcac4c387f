package features

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The learned models of learning: adaptive, shared by every replica: a hash
// <prefix>learn:<product> per product, with per coordinate the fields
// "<coordinate>|z", "<coordinate>|n" and "<coordinate>|s" (FTRL's state
// and the outcomes it took part in), and "|accepted" and "|refused". Each
// outcome adds its deltas with HINCRBYFLOAT: additions commute, so the
// hash is the sum of every replica's learning whatever the order, and
// replicas that read it score alike. The set <prefix>learn:products names
// the products.

func (r *Redis) learnKey(product string) string { return r.prefix + "learn:" + product }

// learnProductsKey is the set of the products with a learned state.
func (r *Redis) learnProductsKey() string { return r.prefix + "learn:products" }

// coordFields are a coordinate's fields' suffixes: z, n and its outcomes.
var coordFields = [3]string{"|z", "|n", "|s"}

// AddLearning adds one outcome's deltas to a product's learned state.
func (r *Redis) AddLearning(ctx context.Context, product string, deltas map[string][3]float64, accepted bool) error {
	key := r.learnKey(product)
	pipe := r.client.Pipeline()
	for coord, d := range deltas {
		for i, suffix := range coordFields {
			if d[i] != 0 {
				pipe.HIncrByFloat(ctx, key, coord+suffix, d[i])
			}
		}
	}
	if accepted {
		pipe.HIncrByFloat(ctx, key, "|accepted", 1)
	} else {
		pipe.HIncrByFloat(ctx, key, "|refused", 1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return r.unavailable("add learning", err)
	}
	if err := r.client.SAdd(ctx, r.learnProductsKey(), product).Err(); err != nil {
		return r.unavailable("add learning", err)
	}
	return nil
}

// LearnedState is a product's shared learned state: the outcomes, and per
// coordinate z, n and the outcomes it took part in.
type LearnedState struct {
	Accepted, Refused float64
	Coords            map[string][3]float64
}

// LoadLearning reads every product's learned state.
func (r *Redis) LoadLearning(ctx context.Context) (map[string]LearnedState, error) {
	products, err := r.client.SMembers(ctx, r.learnProductsKey()).Result()
	if err != nil {
		return nil, r.unavailable("load learning", err)
	}
	out := make(map[string]LearnedState, len(products))
	for _, p := range products {
		fields, err := r.client.HGetAll(ctx, r.learnKey(p)).Result()
		if err != nil {
			return nil, r.unavailable("load learning", err)
		}
		st := LearnedState{Coords: map[string][3]float64{}}
		for f, v := range fields {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue // not ours
			}
			coord, part, ok := cutLast(f, "|")
			if !ok {
				continue
			}
			switch {
			case coord == "" && part == "accepted":
				st.Accepted = x
			case coord == "" && part == "refused":
				st.Refused = x
			default:
				c := st.Coords[coord]
				switch part {
				case "z":
					c[0] = x
				case "n":
					c[1] = x
				case "s":
					c[2] = x
				}
				st.Coords[coord] = c
			}
		}
		out[p] = st
	}
	return out, nil
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// LearningRestored returns the snapshot version whose learned state was
// last restored ("" when none).
func (r *Redis) LearningRestored(ctx context.Context) (string, error) {
	v, err := r.client.Get(ctx, r.prefix+"learn:restored").Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", r.unavailable("read learning restored", err)
	}
	return v, nil
}

// RestoreLearning replaces every product's shared learned state with a
// snapshot's and records its version, in one pipeline. It is an
// operator's act (a rollback), not atomic across products (their keys lie
// in different cluster slots): outcomes learned while it runs may be lost.
func (r *Redis) RestoreLearning(ctx context.Context, version string, states map[string]LearnedState) error {
	old, err := r.client.SMembers(ctx, r.learnProductsKey()).Result()
	if err != nil {
		return r.unavailable("restore learning", err)
	}
	pipe := r.client.Pipeline()
	for _, p := range old {
		pipe.Del(ctx, r.learnKey(p))
	}
	pipe.Del(ctx, r.learnProductsKey())
	for p, st := range states {
		fields := map[string]any{"|accepted": st.Accepted, "|refused": st.Refused}
		for coord, c := range st.Coords {
			for i, suffix := range coordFields {
				fields[coord+suffix] = c[i]
			}
		}
		pipe.HSet(ctx, r.learnKey(p), fields)
		pipe.SAdd(ctx, r.learnProductsKey(), p)
	}
	pipe.Set(ctx, r.prefix+"learn:restored", version, 0)
	if _, err := pipe.Exec(ctx); err != nil {
		return r.unavailable("restore learning", err)
	}
	return nil
}
