package features

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// bucketNames holds the embedded store's table of feature names: name ->
// uvarint id. Records name their features by id (codec.go). Ids are never
// reused or changed, so a record stays readable whatever is imported
// later.
var bucketNames = []byte("feature_names")

// nameTable is the in-memory copy of the names bucket. Readers take the
// published slice (id -> name) without locking; ids are given out only
// inside a write transaction (bbolt runs one at a time) and published
// before it commits, so a reader that sees a record sees its names.
type nameTable struct {
	byID atomic.Pointer[[]string]

	mu     sync.Mutex // guards byName, and appending to byID
	byName map[string]uint64
}

// loadNames reads the table from the file.
func loadNames(tx *bolt.Tx) (*nameTable, error) {
	t := &nameTable{byName: map[string]uint64{}}
	var byID []string
	err := tx.Bucket(bucketNames).ForEach(func(k, v []byte) error {
		id, n := binary.Uvarint(v)
		if n <= 0 || id > 1<<24 {
			return fmt.Errorf("features: feature name %q has a corrupt id", k)
		}
		for uint64(len(byID)) <= id {
			byID = append(byID, "")
		}
		if byID[id] != "" {
			return fmt.Errorf("features: feature names %q and %q share id %d", byID[id], k, id)
		}
		byID[id] = string(k)
		t.byName[string(k)] = id
		return nil
	})
	if err != nil {
		return nil, err
	}
	t.byID.Store(&byID)
	return t, nil
}

// names returns the id -> name slice for decoding.
func (t *nameTable) names() []string { return *t.byID.Load() }

// assign gives every name in recs an id, writing the ids the file does not
// hold yet in tx, and returns the lookup for encoding. Ids given out here
// are published at once; if tx then rolls back they stay in memory unused
// and are written by the next transaction that uses them.
func (t *nameTable) assign(tx *bolt.Tx, recs []Record) (func(string) (uint64, bool), error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	bk := tx.Bucket(bucketNames)
	seen := map[string]uint64{}
	var grown []string
	for i := range recs {
		for name := range recs[i].All {
			if _, ok := seen[name]; ok {
				continue
			}
			id, ok := t.byName[name]
			if !ok {
				if grown == nil {
					grown = append([]string(nil), t.names()...)
				}
				id = uint64(len(grown))
				grown = append(grown, name)
				t.byName[name] = id
			}
			seen[name] = id
			if bk.Get([]byte(name)) == nil {
				if err := bk.Put([]byte(name), binary.AppendUvarint(nil, id)); err != nil {
					return nil, fmt.Errorf("features: write feature name %q: %w", name, err)
				}
			}
		}
	}
	if grown != nil {
		t.byID.Store(&grown)
	}
	return func(name string) (uint64, bool) {
		id, ok := seen[name]
		return id, ok
	}, nil
}
