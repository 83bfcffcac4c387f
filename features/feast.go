package features

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/murmur3"
	"google.golang.org/protobuf/encoding/protowire"
)

// Feast reads client features that Feast (feast.dev) materialized into its
// Redis online store, so that a bank whose features live in Feast need not
// copy them into Tact's layout. It reads Feast's documented format:
//
//   - one Redis hash per entity, keyed by the entity key in Feast's
//     serialization version 3 followed by the project's name: a uint32
//     count of join keys, then per key its value type (2, STRING), its
//     length and its UTF-8 bytes, then per value its type (2 STRING or 4
//     INT64), its length and its bytes (UTF-8, or a little-endian int64);
//     all integers little-endian;
//   - per feature a field named by the murmur3 32-bit hash (seed 0,
//     little-endian) of "<feature view>:<feature>", holding a serialized
//     feast.types.Value;
//   - per feature view a field "_ts:<feature view>" holding the
//     google.protobuf.Timestamp of its last materialization.
//
// Tact's feature schema says which features to read and their types; each
// is looked up in the configured feature views, the first that has it
// winning. Feast's types map to the schema's: int32, int64, float and
// double to number; string to string; bool to bool; unix_timestamp
// (seconds) to time. A value of another type, or one that does not fit the
// schema's type, is left out (the schema's default applies) and counted.
// Feast owns the features: writes through Tact are refused (ErrReadOnly).
type Feast struct {
	client   redis.UniversalClient
	cfg      FeastConfig
	views    []string
	schema   *Schema
	fields   []string // the hash fields read: per schema field, per view; then the views' _ts
	mismatch func(feature string)
}

// FeastConfig says where Feast's features are. The koanf, default and help
// tags declare tactd's configuration keys (see server.Config).
type FeastConfig struct {
	Project string `koanf:"feast_project" help:"with feature_store feast: the Feast project whose online store (in the Redis of redis_*) holds the features"`
	Views   string `koanf:"feast_feature_views" help:"with feature_store feast: the feature views to read, comma-separated (a YAML list in the file); a feature is taken from the first view that has it"`
	JoinKey string `koanf:"feast_join_key" default:"client_id" help:"with feature_store feast: the entity's join key"`
	// KeyType is how the client id is an entity value: string, or int64
	// (a client id of digits).
	KeyType string `koanf:"feast_key_type" default:"string" help:"with feature_store feast: the join key's Feast type, string or int64"`
}

// ViewList returns the configured feature views.
func (c *FeastConfig) ViewList() []string {
	var out []string
	for _, v := range strings.Split(c.Views, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// ErrReadOnly is returned by writes to a store Tact only reads.
var ErrReadOnly = errors.New("features: feature_store feast is read-only: Feast materializes the features; write them there")

var _ Source = (*Feast)(nil)

// NewFeast reads Feast's online store through r's connection (the Redis
// Tact shares its state in). mismatch, when set, is told the name of each
// feature left out because its Feast type does not fit the schema.
func NewFeast(r *Redis, cfg FeastConfig, schema *Schema, mismatch func(feature string)) (*Feast, error) {
	views := cfg.ViewList()
	switch {
	case cfg.Project == "":
		return nil, errors.New("features: feast: no project (feast_project)")
	case len(views) == 0:
		return nil, errors.New("features: feast: no feature view (feast_feature_views)")
	case cfg.JoinKey == "":
		return nil, errors.New("features: feast: no join key (feast_join_key)")
	case cfg.KeyType != "string" && cfg.KeyType != "int64":
		return nil, fmt.Errorf("features: feast: key type %q is not string or int64", cfg.KeyType)
	}
	f := &Feast{client: r.client, cfg: cfg, views: views, schema: schema, mismatch: mismatch}
	for _, field := range schema.Fields {
		for _, v := range views {
			f.fields = append(f.fields, FeastField(v, field.Name))
		}
	}
	for _, v := range views {
		f.fields = append(f.fields, "_ts:"+v)
	}
	return f, nil
}

// FeastField is the hash field of a feature of a view: the little-endian
// murmur3 32-bit hash of "view:feature".
func FeastField(view, feature string) string {
	return string(binary.LittleEndian.AppendUint32(nil, murmur3.Sum32([]byte(view+":"+feature))))
}

// FeastKey is the Redis key of an entity with one join key in Feast's
// entity key serialization version 3, followed by the project.
func FeastKey(project, joinKey string, value FeastEntity) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, 1)
	b = le.AppendUint32(b, feastString)
	b = le.AppendUint32(b, uint32(len(joinKey)))
	b = append(b, joinKey...)
	if value.IsInt {
		b = le.AppendUint32(b, feastInt64)
		b = le.AppendUint32(b, 8)
		b = le.AppendUint64(b, uint64(value.Int))
	} else {
		b = le.AppendUint32(b, feastString)
		b = le.AppendUint32(b, uint32(len(value.Str)))
		b = append(b, value.Str...)
	}
	return append(b, project...)
}

// FeastEntity is an entity value: a string or an int64.
type FeastEntity struct {
	Str   string
	Int   int64
	IsInt bool
}

// Feast's ValueType numbers of the entity key's types.
const (
	feastString = 2
	feastInt64  = 4
)

func (f *Feast) entity(clientID string) (FeastEntity, error) {
	if f.cfg.KeyType == "string" {
		return FeastEntity{Str: clientID}, nil
	}
	n, err := strconv.ParseInt(clientID, 10, 64)
	if err != nil {
		return FeastEntity{}, fmt.Errorf("%w: client id %q is not an int64 (feast_key_type int64)", ErrNotFound, clientID)
	}
	return FeastEntity{Int: n, IsInt: true}, nil
}

// Get returns a client's features, or ErrNotFound when Feast has none.
func (f *Feast) Get(ctx context.Context, clientID string) (Record, error) {
	ent, err := f.entity(clientID)
	if err != nil {
		return Record{}, err
	}
	key := string(FeastKey(f.cfg.Project, f.cfg.JoinKey, ent))
	vals, err := f.client.HMGet(ctx, key, f.fields...).Result()
	if err != nil {
		return Record{}, &StorageError{Op: "get features from feast", Where: "redis", Err: err}
	}
	rec := Record{ClientID: clientID, Values: map[string]Value{}}
	found := false
	nv := len(f.views)
	for i := range f.schema.Fields {
		field := &f.schema.Fields[i]
		for j := range f.views {
			raw, ok := vals[i*nv+j].(string)
			if !ok {
				continue
			}
			found = true
			v, ok := feastValue([]byte(raw), field.Kind())
			if !ok {
				if f.mismatch != nil {
					f.mismatch(field.Name)
				}
				break
			}
			if v.Kind != 0 {
				rec.Values[field.Name] = v
			}
			break
		}
	}
	for j := range f.views {
		raw, ok := vals[len(f.schema.Fields)*nv+j].(string)
		if !ok {
			continue
		}
		found = true
		if t, ok := feastTimestamp([]byte(raw)); ok && t.After(rec.UpdatedAt) {
			rec.UpdatedAt = t
		}
	}
	if !found {
		return Record{}, ErrNotFound
	}
	// Defaults for what Feast lacks, as for any record.
	if err := f.schema.Check(&rec); err != nil {
		return Record{}, fmt.Errorf("features: feast record of %s: %w", clientID, err)
	}
	return rec, nil
}

// PutBatch refuses: Feast owns the features.
func (f *Feast) PutBatch(context.Context, []Record) error { return ErrReadOnly }

// feastValue reads a serialized feast.types.Value as a value of kind. It
// returns ok false when the value's type does not fit the kind, and a zero
// Value (no Kind) for a null or an empty value.
func feastValue(b []byte, kind Kind) (Value, bool) {
	var out Value
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return Value{}, false
		}
		b = b[n:]
		var v Value
		fits := true
		switch {
		case num == 2 && typ == protowire.BytesType: // string_val
			s, m := protowire.ConsumeBytes(b)
			n, v, fits = m, String(string(s)), kind == KindString
		case (num == 3 || num == 4) && typ == protowire.VarintType: // int32_val, int64_val
			x, m := protowire.ConsumeVarint(b)
			if num == 3 {
				x = uint64(int64(int32(x)))
			}
			n, v, fits = m, Number(float64(int64(x))), kind == KindNumber
		case num == 5 && typ == protowire.Fixed64Type: // double_val
			x, m := protowire.ConsumeFixed64(b)
			n, v, fits = m, Number(math.Float64frombits(x)), kind == KindNumber
		case num == 6 && typ == protowire.Fixed32Type: // float_val
			x, m := protowire.ConsumeFixed32(b)
			n, v, fits = m, Number(float64(math.Float32frombits(x))), kind == KindNumber
		case num == 7 && typ == protowire.VarintType: // bool_val
			x, m := protowire.ConsumeVarint(b)
			n, v, fits = m, Bool(x != 0), kind == KindBool
		case num == 8 && typ == protowire.VarintType: // unix_timestamp_val, seconds
			x, m := protowire.ConsumeVarint(b)
			n, v, fits = m, Time(time.Unix(int64(x), 0)), kind == KindTime
		case num == 19: // null_val
			n = protowire.ConsumeFieldValue(num, typ, b)
		default: // a list, a map, bytes...: no Tact type
			return Value{}, false
		}
		if n < 0 {
			return Value{}, false
		}
		if !fits {
			return Value{}, false
		}
		b, out = b[n:], v
	}
	if out.Kind != 0 && out.check() != nil {
		return Value{}, false
	}
	return out, true
}

// feastTimestamp reads a serialized google.protobuf.Timestamp.
func feastTimestamp(b []byte) (time.Time, bool) {
	var sec, nanos int64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.VarintType {
			return time.Time{}, false
		}
		x, m := protowire.ConsumeVarint(b[n:])
		if m < 0 {
			return time.Time{}, false
		}
		switch num {
		case 1:
			sec = int64(x)
		case 2:
			nanos = int64(int32(x))
		}
		b = b[n+m:]
	}
	return time.Unix(sec, nanos).UTC(), true
}
