package features

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
//	{<prefix>decisions}:batch:<id>       how many records of the batch that
//	                                     starts with decision id the stream
//	                                     holds, so that a batch sent again is
//	                                     appended once; kept an hour
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

// appendScript appends a batch of decision records to the stream once,
// however often it is sent: a batch whose reply was lost (a timeout) is
// sent again by the log, grown by what was queued meanwhile, and the
// client may resend it too. The batch's marker (keyed by its first
// record, in the stream's slot) says how many of its records the stream
// holds; those are skipped.
//
//	KEYS[1] the stream, KEYS[2] the batch's marker
//	ARGV[1] MINID (trim), ARGV[2] the marker's life in ms, ARGV[3..] the records
var appendScript = redis.NewScript(`
local done = tonumber(redis.call('GET', KEYS[2]) or '0')
for i = 3 + done, #ARGV do
  redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[1], '*', 'r', ARGV[i])
end
redis.call('SET', KEYS[2], #ARGV - 2, 'PX', ARGV[2])
return #ARGV - 2 - done
`)

// batchMarkerLife is how long a batch's marker is kept: longer than the
// log holds a batch it is retrying while Redis answers late.
const batchMarkerLife = time.Hour

// batchMarkerKey is the marker of the batch that starts with the decision
// id, in the decision stream's slot.
func (r *Redis) batchMarkerKey(firstID string) string {
	stream := r.DecisionsKey()
	if i := strings.IndexByte(stream, '{'); i >= 0 && strings.IndexByte(stream[i+1:], '}') > 0 {
		return stream + ":batch:" + firstID // the prefix's own hash tag
	}
	return "{" + stream + "}:batch:" + firstID // hashed as the stream's name
}

// SaveDecisions appends a batch of decision records to the shared stream,
// once (appendScript), trimming entries older than the decision retention.
// An OFFER_LATER decision's record is also kept where any replica finds it
// for an outcome (offers made now are kept with their reservation).
func (r *Redis) SaveDecisions(ctx context.Context, recs []DecisionRecord) error {
	if len(recs) == 0 {
		return nil
	}
	args := make([]any, 2, 2+len(recs))
	args[0], args[1] = streamID(time.Now().Add(-r.ret.Decisions)), batchMarkerLife.Milliseconds()
	var later [][2]string // an offer later's key and record
	for i := range recs {
		raw, err := encodeDecision(&recs[i])
		if err != nil {
			return err
		}
		args = append(args, raw)
		if recs[i].Action == "offer_later" && len(recs[i].Products) > 0 {
			later = append(later, [2]string{r.DecisionKey(recs[i].ID), string(raw)})
		}
	}
	if err := appendScript.Run(ctx, r.client, []string{r.DecisionsKey(), r.batchMarkerKey(recs[0].ID)}, args...).Err(); err != nil {
		return r.unavailable("write decisions", err)
	}
	if len(later) == 0 {
		return nil
	}
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, l := range later {
			p.Set(ctx, l[0], l[1], r.ret.OfferDecisions)
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
