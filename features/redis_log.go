package features

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The shared decision log and outcomes, so that an export or an
// experiment's results from any replica count every replica's decisions:
//
//	<prefix>decisions                    a stream, one entry per decision
//	                                     (field r: decisioncodec.go's encoding),
//	                                     trimmed to Retention.Decisions
//	<prefix>outcomes                     a stream, one entry per outcome (field
//	                                     r: the OutcomeRecord as JSON), trimmed
//	                                     to Retention.Outcomes
//	<prefix>decision:{<id>}:outcomes     a hash, field product|outcome: the
//	                                     first copy of each outcome (repeats
//	                                     are duplicates), kept Retention.Outcomes
//
// Streams are chosen for the logs because their ids are times: an export
// "since" is one XRANGE from that millisecond, and trimming by age is
// XADD's own MINID. Each stream is one key, so one Redis Cluster slot; the
// logs are written in pipelined batches (decisions) or one at a time
// (outcomes, far fewer), and read by exports and results, not by Decide.
// An outcome's hash lives in its decision's slot, beside the decision's
// record.

// DecisionsKey returns the key of the shared decision stream.
func (r *Redis) DecisionsKey() string { return r.prefix + "decisions" }

// OutcomesKey returns the key of the shared outcome stream.
func (r *Redis) OutcomesKey() string { return r.prefix + "outcomes" }

func (r *Redis) outcomeSetKey(decisionID string) string {
	return r.prefix + "decision:{" + decisionID + "}:outcomes"
}

// streamID is the first stream id at or after t.
func streamID(t time.Time) string { return strconv.FormatInt(max(t.UnixMilli(), 0), 10) + "-0" }

var _ DecisionSink = (*Redis)(nil)

// SaveDecisions appends a batch of decision records to the shared stream
// in one pipeline, trimming entries older than the decision retention. An
// OFFER_LATER decision's record is also kept where any replica finds it
// for an outcome (offers made now are kept with their reservation).
func (r *Redis) SaveDecisions(ctx context.Context, recs []DecisionRecord) error {
	minID := streamID(time.Now().Add(-r.ret.Decisions))
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range recs {
			raw, err := encodeDecision(&recs[i])
			if err != nil {
				return err
			}
			p.XAdd(ctx, &redis.XAddArgs{Stream: r.DecisionsKey(), MinID: minID, Approx: true, Values: []any{"r", raw}})
			if recs[i].Action == "offer_later" && len(recs[i].Products) > 0 {
				p.Set(ctx, r.DecisionKey(recs[i].ID), raw, r.ret.OfferDecisions)
			}
		}
		return nil
	})
	if err != nil {
		return r.unavailable("write decisions", err)
	}
	return nil
}

// ExportDecisions calls fn for each decision in the shared stream made at
// or after since, oldest first.
func (r *Redis) ExportDecisions(ctx context.Context, since time.Time, fn func(*DecisionRecord) error) error {
	return r.scanStream(ctx, r.DecisionsKey(), since, func(raw string) error {
		var d DecisionRecord
		if err := decodeDecision([]byte(raw), &d); err != nil {
			return fmt.Errorf("features: decode decision: %w", err)
		}
		if d.At.Before(since) {
			return nil
		}
		return fn(&d)
	})
}

// ExportOutcomes calls fn for each outcome recorded at or after since,
// oldest first.
func (r *Redis) ExportOutcomes(ctx context.Context, since time.Time, fn func(*OutcomeRecord) error) error {
	return r.scanStream(ctx, r.OutcomesKey(), since, func(raw string) error {
		var o OutcomeRecord
		if err := json.Unmarshal([]byte(raw), &o); err != nil {
			return fmt.Errorf("features: decode outcome: %w", err)
		}
		if o.RecordedAt.Before(since) {
			return nil
		}
		return fn(&o)
	})
}

// scanStream reads a stream from since in pages, calling fn with each
// entry's r field.
func (r *Redis) scanStream(ctx context.Context, key string, since time.Time, fn func(string) error) error {
	start := streamID(since)
	for {
		msgs, err := r.client.XRangeN(ctx, key, start, "+", exportBatch).Result()
		if err != nil {
			return r.unavailable("read "+key, err)
		}
		for _, m := range msgs {
			raw, _ := m.Values["r"].(string)
			if err := fn(raw); err != nil {
				return err
			}
		}
		if len(msgs) < exportBatch {
			return nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// PutOutcome stores an outcome for every replica: its first copy in its
// decision's outcome hash (a repeat is reported duplicate and o then holds
// the first copy) and, when new, an entry in the outcome stream. When the
// stream cannot take it, the first copy is removed again, so that a retry
// stores it whole.
func (r *Redis) PutOutcome(ctx context.Context, o *OutcomeRecord) (duplicate bool, err error) {
	raw, err := json.Marshal(o)
	if err != nil {
		return false, err
	}
	set, field := r.outcomeSetKey(o.DecisionID), o.ProductID+"|"+o.Outcome
	added, err := r.client.HSetNX(ctx, set, field, raw).Result()
	if err != nil {
		return false, r.unavailable("write outcome", err)
	}
	if !added {
		first, err := r.client.HGet(ctx, set, field).Bytes()
		if err != nil && !errors.Is(err, redis.Nil) {
			return false, r.unavailable("read outcome", err)
		}
		if err == nil {
			if err := json.Unmarshal(first, o); err != nil {
				return false, fmt.Errorf("features: decode outcome: %w", err)
			}
		}
		return true, nil
	}
	minID := streamID(time.Now().Add(-r.ret.Outcomes))
	_, err = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Expire(ctx, set, r.ret.Outcomes)
		p.XAdd(ctx, &redis.XAddArgs{Stream: r.OutcomesKey(), MinID: minID, Approx: true, Values: []any{"r", raw}})
		return nil
	})
	if err != nil {
		// Best effort: the retry the caller is told to make stores it
		// whole when this removal went through.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		r.client.HDel(dctx, set, field)
		cancel()
		return false, r.unavailable("write outcome", err)
	}
	return false, nil
}
