package features

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Retention says how long the decision log and the outcomes are kept, on
// the embedded store (Bolt.Trim) and on Redis (stream trimming and key
// expiry). The koanf, default and help tags declare tactd's keys.
type Retention struct {
	// Decisions is how long a decision without an offer is kept in the
	// log (exports, experiment results).
	Decisions time.Duration `koanf:"decision_retention" default:"48h" help:"how long the decision log keeps a decision (exports, experiment results)"`
	// OfferDecisions is how long a decision with offers is kept, so that
	// an outcome for one of its offers is taken (by any replica, on Redis).
	OfferDecisions time.Duration `koanf:"outcome_window" default:"720h" help:"how long after an offer its outcome is taken (its decision is kept that long)"`
	// Outcomes is how long outcomes are kept.
	Outcomes time.Duration `koanf:"outcome_retention" default:"9600h" help:"how long outcomes are kept (400 days)"`
}

// withDefaults fills zero fields with the defaults.
func (r Retention) withDefaults() Retention {
	r.Decisions = orDefault(r.Decisions, 48*time.Hour)
	r.OfferDecisions = orDefault(r.OfferDecisions, 720*time.Hour)
	r.Outcomes = orDefault(r.Outcomes, 400*24*time.Hour)
	return r
}

// trimBatch is how many records one trimming transaction deletes at most:
// short transactions, so that the log's writer never waits long.
const trimBatch = 2000

// Trimmed counts what one Trim deleted.
type Trimmed struct {
	Decisions, Outcomes int
}

// Trim deletes what the retention no longer keeps: decisions made before
// now-Decisions (those with offers only once older than OfferDecisions too)
// and outcomes recorded before now-Outcomes, in short transactions of
// trimBatch deletions each. bbolt reuses the freed pages, so the file
// stops growing. The contact history is not trimmed here.
func (b *Bolt) Trim(ctx context.Context, ret Retention, now time.Time) (Trimmed, error) {
	ret = ret.withDefaults()
	var out Trimmed
	n, err := b.trimBucket(ctx, bucketDecisions, now.Add(-min(ret.Decisions, ret.OfferDecisions)), func(v []byte) (bool, error) {
		var d DecisionRecord
		if err := decodeDecision(v, &d); err != nil {
			return true, nil // undecodable: nothing can use it
		}
		cut := ret.Decisions
		if len(d.Products) > 0 {
			cut = max(ret.Decisions, ret.OfferDecisions)
		}
		return d.At.Before(now.Add(-cut)), nil
	})
	out.Decisions = n
	if err != nil {
		return out, err
	}
	n, err = b.trimBucket(ctx, bucketOutcomes, now.Add(-ret.Outcomes), func(v []byte) (bool, error) {
		var o OutcomeRecord
		if err := json.Unmarshal(v, &o); err != nil {
			return true, nil
		}
		return o.RecordedAt.Before(now.Add(-ret.Outcomes)), nil
	})
	out.Outcomes = n
	return out, err
}

// trimBucket deletes, oldest key first, the records drop says to, up to
// the first key whose UUIDv7 time is at or after before.
func (b *Bolt) trimBucket(ctx context.Context, bucket []byte, before time.Time, drop func(v []byte) (bool, error)) (int, error) {
	end := uuidv7Prefix(before)
	total := 0
	var after []byte
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		var last []byte
		done := false
		deleted := 0
		err := b.update("trim", func(tx *bolt.Tx) error {
			bk := tx.Bucket(bucket)
			c := bk.Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
			}
			// The keys are collected, then deleted: a cursor is not
			// moved over keys deleted under it.
			var dels [][]byte
			scanned := 0
			for ; ; k, v = c.Next() {
				if k == nil || bytes.Compare(k, end) >= 0 {
					done = true
					break
				}
				if len(dels) == trimBatch || scanned == 4*trimBatch {
					break
				}
				scanned++
				last = bytes.Clone(k)
				ok, err := drop(v)
				if err != nil {
					return err
				}
				if ok {
					dels = append(dels, last)
				}
			}
			for _, k := range dels {
				if err := bk.Delete(k); err != nil {
					return err
				}
			}
			deleted = len(dels)
			return nil
		})
		total += deleted
		if err != nil || done {
			return total, err
		}
		after = append(last, 0) // the next key after the last seen
	}
}

// uuidv7Prefix is the key prefix of UUIDv7 ids made at t: the first 48
// bits are Unix milliseconds, written as 8 and 4 hex digits.
func uuidv7Prefix(t time.Time) []byte {
	ms := uint64(max(t.UnixMilli(), 0))
	return []byte(fmt.Sprintf("%08x-%04x", ms>>16, ms&0xffff))
}
