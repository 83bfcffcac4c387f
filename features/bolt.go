package features

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bucket names in the bbolt file.
var (
	bucketClients   = []byte("clients")
	bucketDecisions = []byte("decisions")
	bucketOutcomes  = []byte("outcomes")
	bucketLearning  = []byte("learning")
)

// Bolt is the embedded store: client features, the decision log and the
// outcomes in one bbolt file. Writes are fsynced before they return, so a
// write that returned nil survives a crash. It is safe for concurrent use;
// bbolt allows one writer at a time and many readers.
type Bolt struct {
	db       *bolt.DB
	path     string
	contacts *boltContacts
	names    *nameTable
}

// OpenBolt opens (creating if needed) the store at path. It fails after
// openTimeout if another process holds the file.
func OpenBolt(path string) (*Bolt, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("features: create directory for %s: %w", path, err)
	}
	// The initial map covers a file of 1 GiB: until the file outgrows it,
	// a write that grows the file does not remap it, and so never holds
	// readers (the Decide path) back while it does. The free list is a
	// hash map, and it is written with every commit: not writing it would
	// make each open walk every page of the file to rebuild it, which
	// faults the whole file into memory (with a million clients, 660 MiB
	// of RSS before the first call) and costs nothing measurable per
	// commit here (BenchmarkDecide, -cpu 1).
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         openTimeout,
		InitialMmapSize: 1 << 30,
		FreelistType:    bolt.FreelistMapType,
		NoFreelistSync:  false,
	})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("features: open %s: the file is locked by another process (is another tactd running on this data dir?)", path)
		}
		return nil, fmt.Errorf("features: open %s: %w", path, err)
	}
	var names *nameTable
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketClients, bucketDecisions, bucketOutcomes, bucketContacts, bucketNames, bucketLearning} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		var err error
		names, err = loadNames(tx)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("features: initialise %s: %w", path, err)
	}
	return &Bolt{db: db, path: path, contacts: newBoltContacts(), names: names}, nil
}

const openTimeout = 2 * time.Second

// update runs fn in a write transaction and commits it. An error of fn is
// returned as it is (a problem with the data); a transaction that cannot
// begin or commit (the file closed, the disk full or failing) is a
// *StorageError naming op and the file.
func (b *Bolt) update(op string, fn func(*bolt.Tx) error) error {
	tx, err := b.db.Begin(true)
	if err != nil {
		return &StorageError{Op: op, Where: b.path, Err: err}
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // fn's error is the one to report
		return err
	}
	if err := tx.Commit(); err != nil {
		return &StorageError{Op: op, Where: b.path, Err: err}
	}
	return nil
}

// view runs fn in a read transaction; like update, a transaction that
// cannot begin is a *StorageError.
func (b *Bolt) view(op string, fn func(*bolt.Tx) error) error {
	tx, err := b.db.Begin(false)
	if err != nil {
		return &StorageError{Op: op, Where: b.path, Err: err}
	}
	defer func() { _ = tx.Rollback() }() // a read transaction only ends
	return fn(tx)
}

// Path returns the file the store is kept in.
func (b *Bolt) Path() string { return b.path }

// Close closes the file. Calls after Close fail.
func (b *Bolt) Close() error { return b.db.Close() }

// Get returns one client's features, or ErrNotFound.
func (b *Bolt) Get(ctx context.Context, clientID string) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	var rec Record
	err := b.view("read features", func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketClients).Get([]byte(clientID))
		if raw == nil {
			return ErrNotFound
		}
		return decodeRecord(raw, &rec, b.names.names())
	})
	if err != nil {
		return Record{}, err
	}
	rec.ClientID = clientID
	return rec, nil
}

// GetMany returns the features of several clients in one read
// transaction, in the order asked; an unknown client's record has nil
// Values.
func (b *Bolt) GetMany(ctx context.Context, clientIDs []string) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]Record, len(clientIDs))
	err := b.view("read features", func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketClients)
		names := b.names.names()
		for i, id := range clientIDs {
			out[i].ClientID = id
			if raw := bk.Get([]byte(id)); raw != nil {
				if err := decodeRecord(raw, &out[i], names); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PutBatch upserts the records in one durable transaction: all or none.
func (b *Bolt) PutBatch(ctx context.Context, recs []Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range recs {
		if err := recs[i].Validate(); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
	}
	return b.update("write features", func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketClients)
		// Imports mostly arrive in key order; fuller pages keep the file
		// (and the memory it maps) near the data's size.
		bk.FillPercent = 0.9
		ids, err := b.names.assign(tx, recs)
		if err != nil {
			return err
		}
		for i := range recs {
			if err := bk.Put([]byte(recs[i].ClientID), encodeRecord(&recs[i], ids)); err != nil {
				return fmt.Errorf("features: put record %d: %w", i, err)
			}
		}
		return nil
	})
}

// CountClients returns how many clients the store holds.
func (b *Bolt) CountClients(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n int
	err := b.view("count clients", func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketClients).Stats().KeyN
		return nil
	})
	return n, err
}

// SaveDecisions writes a batch of decision records in one durable
// transaction, with the offers reserved for them (see Reserve). It is the
// sink of a DecisionLog.
func (b *Bolt) SaveDecisions(ctx context.Context, recs []DecisionRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var written []Contact
	err := b.update("write decisions", func(tx *bolt.Tx) error {
		var err error
		if written, err = b.saveReservedOffers(tx, recs); err != nil {
			return err
		}
		bk := tx.Bucket(bucketDecisions)
		// Decision ids are time-ordered (UUIDv7), so the log only ever
		// appends: full pages keep it half the size it would be at
		// bbolt's default of half-full pages.
		bk.FillPercent = 0.95
		for i := range recs {
			raw, err := encodeDecision(&recs[i])
			if err != nil {
				return err
			}
			if err := bk.Put([]byte(recs[i].ID), raw); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	b.contacts.done(written)
	return nil
}

// RestoreDecisions writes decisions read back from the journal after a
// crash: each one the file does not hold yet, with the offers it gave in
// the contact history (a decision already in the file is skipped, so that
// an offer since vetoed stays deleted). It returns how many it wrote.
func (b *Bolt) RestoreDecisions(ctx context.Context, recs []DecisionRecord) (restored int, err error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	err = b.update("restore decisions", func(tx *bolt.Tx) error {
		restored = 0
		bk, cbk := tx.Bucket(bucketDecisions), tx.Bucket(bucketContacts)
		for i := range recs {
			d := &recs[i]
			if bk.Get([]byte(d.ID)) != nil {
				continue
			}
			raw, err := encodeDecision(d)
			if err != nil {
				return err
			}
			if err := bk.Put([]byte(d.ID), raw); err != nil {
				return err
			}
			for _, p := range d.Products {
				c := Contact{ClientID: d.ClientID, Kind: ContactOffered, DecisionID: d.ID, ProductID: p, Channel: d.Channel, At: d.At}
				if err := putContact(cbk, &c); err != nil {
					return err
				}
			}
			restored++
		}
		return nil
	})
	return restored, err
}

// learningRestored is the learning bucket's key of the snapshot version
// last restored (a product id cannot start with "|").
const learningRestored = "|restored"

// SaveLearning stores the learned models' states (learning: adaptive),
// one value per product, durably and in one transaction: they replace
// what was stored (a product not in states is forgotten).
func (b *Bolt) SaveLearning(ctx context.Context, states map[string][]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.update("save learning", func(tx *bolt.Tx) error { return replaceLearning(tx.Bucket(bucketLearning), states) })
}

// replaceLearning puts states in the learning bucket in place of the
// products there.
func replaceLearning(bk *bolt.Bucket, states map[string][]byte) error {
	var gone [][]byte
	if err := bk.ForEach(func(k, _ []byte) error {
		if _, ok := states[string(k)]; !ok && !bytes.HasPrefix(k, []byte("|")) {
			gone = append(gone, bytes.Clone(k))
		}
		return nil
	}); err != nil {
		return err
	}
	for _, k := range gone {
		if err := bk.Delete(k); err != nil {
			return err
		}
	}
	for product, raw := range states {
		if err := bk.Put([]byte(product), raw); err != nil {
			return err
		}
	}
	return nil
}

// LoadLearning returns the learned models' states, by product.
func (b *Bolt) LoadLearning(ctx context.Context) (map[string][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	err := b.view("load learning", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLearning).ForEach(func(k, v []byte) error {
			if !bytes.HasPrefix(k, []byte("|")) {
				out[string(k)] = bytes.Clone(v)
			}
			return nil
		})
	})
	return out, err
}

// LearningRestored returns the snapshot version whose learned state was
// last restored ("" when none).
func (b *Bolt) LearningRestored(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	var v string
	err := b.view("read learning restored", func(tx *bolt.Tx) error {
		v = string(tx.Bucket(bucketLearning).Get([]byte(learningRestored)))
		return nil
	})
	return v, err
}

// RestoreLearning replaces the learned state with a snapshot's and
// records its version, in one transaction.
func (b *Bolt) RestoreLearning(ctx context.Context, version string, states map[string][]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.update("restore learning", func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketLearning)
		if err := replaceLearning(bk, states); err != nil {
			return err
		}
		return bk.Put([]byte(learningRestored), []byte(version))
	})
}

// GetDecision returns a logged decision, or ErrNotFound.
func (b *Bolt) GetDecision(ctx context.Context, id string) (DecisionRecord, error) {
	if err := ctx.Err(); err != nil {
		return DecisionRecord{}, err
	}
	var d DecisionRecord
	err := b.view("read decision", func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketDecisions).Get([]byte(id))
		if raw == nil {
			return ErrNotFound
		}
		if err := decodeDecision(raw, &d); err != nil {
			return fmt.Errorf("features: decode decision %s: %w", id, err)
		}
		return nil
	})
	return d, err
}

// PutOutcome stores an outcome durably. Storing the same (decision,
// product, outcome) again changes nothing and reports duplicate; the
// record then holds the first stored copy.
func (b *Bolt) PutOutcome(ctx context.Context, o *OutcomeRecord) (duplicate bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	key := outcomeKey(o.DecisionID, o.ProductID, o.Outcome)
	err = b.update("write outcome", func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketOutcomes)
		if old := bk.Get(key); old != nil {
			duplicate = true
			return json.Unmarshal(old, o)
		}
		raw, err := json.Marshal(o)
		if err != nil {
			return err
		}
		return bk.Put(key, raw)
	})
	if err != nil {
		return false, err
	}
	return duplicate, nil
}

// Outcomes returns the outcomes recorded for a decision, ordered by product
// and outcome.
func (b *Bolt) Outcomes(ctx context.Context, decisionID string) ([]OutcomeRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []OutcomeRecord
	prefix := []byte(decisionID + "/")
	err := b.view("read outcomes", func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutcomes).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var o OutcomeRecord
			if err := json.Unmarshal(v, &o); err != nil {
				return err
			}
			out = append(out, o)
		}
		return nil
	})
	return out, err
}

func outcomeKey(decisionID, productID, outcome string) []byte {
	return []byte(decisionID + "/" + productID + "/" + outcome)
}

// wireRecord is the JSON form of a Record, written by the skeleton's
// first version; it is only read now (see codec.go).
type wireRecord struct {
	UpdatedAt time.Time            `json:"u"`
	Values    map[string]wireValue `json:"v"`
}

type wireValue struct {
	N *float64   `json:"n,omitempty"`
	S *string    `json:"s,omitempty"`
	B *bool      `json:"b,omitempty"`
	T *time.Time `json:"t,omitempty"`
}

// decodeRecord decodes any stored form of a record; names is the store's
// name table (nil for Redis).
func decodeRecord(raw []byte, r *Record, names []string) error {
	if len(raw) > 0 && (raw[0] == codecV1 || raw[0] == codecV2) {
		return decodeBinary(raw, r, names)
	}
	// The skeleton's first records were JSON.
	var w wireRecord
	if err := json.Unmarshal(raw, &w); err != nil {
		return fmt.Errorf("features: decode record: %w", err)
	}
	r.UpdatedAt = w.UpdatedAt
	r.Values = make(map[string]Value, len(w.Values))
	for name, v := range w.Values {
		switch {
		case v.N != nil:
			r.Values[name] = Number(*v.N)
		case v.S != nil:
			r.Values[name] = String(*v.S)
		case v.B != nil:
			r.Values[name] = Bool(*v.B)
		case v.T != nil:
			r.Values[name] = Time(*v.T)
		}
	}
	return nil
}
