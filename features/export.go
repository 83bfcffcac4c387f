package features

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// exportBatch is how many records one read transaction takes: a long
// read transaction would hold back the file's growth under writers.
const exportBatch = 1000

// ExportDecisions calls fn for each logged decision made at or after
// since, oldest first. Decision ids are UUIDv7, so their order is time
// order and the scan starts at since.
func (b *Bolt) ExportDecisions(ctx context.Context, since time.Time, fn func(*DecisionRecord) error) error {
	return b.scan(ctx, bucketDecisions, uuidv7Prefix(since), func(v []byte) error {
		var d DecisionRecord
		if err := decodeDecision(v, &d); err != nil {
			return fmt.Errorf("features: decode decision: %w", err)
		}
		if d.At.Before(since) {
			return nil
		}
		return fn(&d)
	})
}

// ExportOutcomes calls fn for each outcome recorded at or after since,
// in decision order. Outcomes are keyed by decision, so the whole bucket
// is read.
func (b *Bolt) ExportOutcomes(ctx context.Context, since time.Time, fn func(*OutcomeRecord) error) error {
	return b.scan(ctx, bucketOutcomes, nil, func(v []byte) error {
		var o OutcomeRecord
		if err := json.Unmarshal(v, &o); err != nil {
			return fmt.Errorf("features: decode outcome: %w", err)
		}
		if o.RecordedAt.Before(since) {
			return nil
		}
		return fn(&o)
	})
}

// scan reads a bucket from start in batches, one read transaction each,
// calling fn outside the transactions.
func (b *Bolt) scan(ctx context.Context, bucket, start []byte, fn func(v []byte) error) error {
	after := []byte(nil)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var vals [][]byte
		var last []byte
		err := b.view("export", func(tx *bolt.Tx) error {
			c := tx.Bucket(bucket).Cursor()
			var k, v []byte
			if after == nil {
				k, v = c.Seek(start)
			} else {
				k, v = c.Seek(after)
				if k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(vals) < exportBatch; k, v = c.Next() {
				vals = append(vals, bytes.Clone(v))
				last = bytes.Clone(k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, v := range vals {
			if err := fn(v); err != nil {
				return err
			}
		}
		if len(vals) < exportBatch {
			return nil
		}
		after = last
	}
}
