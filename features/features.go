// Package features holds client features and contact history for Tact.
//
// A client's features are the facts the bank's batch pipelines know about
// it (balances, holdings, consents, need-moment dates), keyed by client id.
// The decision engine reads them on the hot path of a live call; the
// embedded store keeps them, with the decision log and the outcomes, in one
// bbolt file.
//
// Nothing in this package logs a client's id or features.
package features

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ErrNotFound is returned when a client or a decision is not in the store.
var ErrNotFound = errors.New("not found")

// ErrUnavailable matches (errors.Is) every error of storage that could not
// be read or written: a full disk, an I/O error, a closed file, Redis out
// of reach. The operation may succeed when retried; nothing was stored.
var ErrUnavailable = errors.New("storage unavailable")

// StorageError is a failure of the storage itself, not of the data: it
// says which operation, on which file or server, and why. It matches
// ErrUnavailable.
type StorageError struct {
	Op    string // e.g. "write outcome"
	Where string // the bbolt file's path, or "redis host:port"
	Err   error
}

func (e *StorageError) Error() string {
	return "features: " + e.Op + " (" + e.Where + "): " + e.Err.Error()
}

// Unwrap returns the cause and ErrUnavailable.
func (e *StorageError) Unwrap() []error { return []error{e.Err, ErrUnavailable} }

// Kind is the type of a feature value.
type Kind uint8

// The kinds of feature values.
const (
	KindNumber Kind = iota + 1
	KindString
	KindBool
	KindTime
)

// String returns the kind's name as used in JSON and schemas.
func (k Kind) String() string {
	switch k {
	case KindNumber:
		return "number"
	case KindString:
		return "string"
	case KindBool:
		return "bool"
	case KindTime:
		return "time"
	default:
		return "kind(" + strconv.Itoa(int(k)) + ")"
	}
}

// Value is one typed feature value. The zero Value is invalid (no kind).
type Value struct {
	Kind Kind
	Num  float64
	Str  string
	Bool bool
	Time time.Time
}

// Number returns a number value.
func Number(f float64) Value { return Value{Kind: KindNumber, Num: f} }

// String returns a string (category) value.
func String(s string) Value { return Value{Kind: KindString, Str: s} }

// Bool returns a boolean value.
func Bool(b bool) Value { return Value{Kind: KindBool, Bool: b} }

// Time returns a timestamp value, in UTC.
func Time(t time.Time) Value { return Value{Kind: KindTime, Time: t.UTC()} }

// Format returns the value as a person would write it: numbers without
// needless decimals, booleans as yes/no, dates as YYYY-MM-DD.
func (v Value) Format() string {
	switch v.Kind {
	case KindNumber:
		if v.Num == math.Trunc(v.Num) && math.Abs(v.Num) < 1e15 {
			return groupThousands(strconv.FormatInt(int64(v.Num), 10))
		}
		return strconv.FormatFloat(v.Num, 'f', 2, 64)
	case KindString:
		return v.Str
	case KindBool:
		if v.Bool {
			return "yes"
		}
		return "no"
	case KindTime:
		return v.Time.Format(time.DateOnly)
	default:
		return ""
	}
}

// Record is one client's features.
type Record struct {
	ClientID string
	// Values holds the features of a record being built. A record read
	// from a store or the Cache has them packed instead (Values is nil,
	// unless the record is too large to pack): read features with Value,
	// Num, Flag, Cat, Str, All or Map.
	Values    map[string]Value
	UpdatedAt time.Time
	// Stale is set by the Cache on a record served past its freshness
	// because the store failed or was too slow; it is never stored.
	Stale bool

	// memo keeps what a model read from the record (see Memo); copies of
	// a cached record share it. Nil for records not from the cache.
	memo *memo
	// packed holds the features of a cached record (see packed.go).
	packed string
}

// memo holds a few computed values, each with the key it was computed
// for (a model bundle, a catalog, a policy). It is replaced whole on
// every change, so readers never lock.
type memo struct {
	p atomic.Pointer[[]memoEntry]
}

type memoEntry struct {
	key, v any
}

// memoKeys is how many keys a record keeps values for: the bundle, the
// catalog and the policy in use, and one more for a swap in progress.
const memoKeys = 4

// Memo returns the value memoized for key, if the record keeps one; the
// model bundle uses it to read a cached client's features once per bundle
// rather than on every decision, and the decision engine to evaluate the
// catalog's and the policy's rules once per client and version. Safe for
// concurrent use.
func (r *Record) Memo(key any) (any, bool) {
	if r.memo == nil {
		return nil, false
	}
	es := r.memo.p.Load()
	if es == nil {
		return nil, false
	}
	for _, e := range *es {
		if e.key == key {
			return e.v, true
		}
	}
	return nil, false
}

// Memoize keeps v for key, replacing what was kept for it; past memoKeys
// keys the oldest is dropped. It does nothing on a record that is not
// from the cache. Concurrent calls may drop each other's value, which is
// only computed again.
func (r *Record) Memoize(key, v any) {
	if r.memo == nil {
		return
	}
	var next []memoEntry
	if old := r.memo.p.Load(); old != nil {
		for _, e := range *old {
			if e.key != key {
				next = append(next, e)
			}
		}
	}
	if len(next) >= memoKeys {
		next = next[len(next)-memoKeys+1:]
	}
	next = append(next, memoEntry{key: key, v: v})
	r.memo.p.Store(&next)
}

// Num returns the named feature as a number and whether it is present and
// numeric. Booleans count as 0 or 1.
func (r *Record) Num(name string) (float64, bool) {
	v, ok := r.Value(name)
	if !ok {
		return 0, false
	}
	switch v.Kind {
	case KindNumber:
		return v.Num, true
	case KindBool:
		if v.Bool {
			return 1, true
		}
		return 0, true
	default:
		return 0, false
	}
}

// Flag returns the named boolean feature; a missing or non-boolean feature
// is false.
func (r *Record) Flag(name string) bool {
	v, ok := r.Value(name)
	return ok && v.Kind == KindBool && v.Bool
}

// Cat returns the named string (category) feature and whether it is
// present.
func (r *Record) Cat(name string) (string, bool) {
	v, ok := r.Value(name)
	if !ok || v.Kind != KindString {
		return "", false
	}
	return v.Str, true
}

// Str returns the named string feature, or "" when it is missing.
func (r *Record) Str(name string) string {
	v, ok := r.Value(name)
	if !ok || v.Kind != KindString {
		return ""
	}
	return v.Str
}

// Validate reports the first problem with the record, naming the feature.
func (r *Record) Validate() error {
	if r.ClientID == "" {
		return errors.New("features: client_id is empty")
	}
	for name, v := range r.All {
		if name == "" {
			return errors.New("features: empty feature name")
		}
		switch v.Kind {
		case KindNumber:
			if math.IsNaN(v.Num) || math.IsInf(v.Num, 0) {
				return fmt.Errorf("features: feature %q: number is not finite", name)
			}
		case KindTime:
			// Stored as Unix nanoseconds: years 1678 to 2262.
			if v.Time.Before(minTime) || v.Time.After(maxTime) {
				return fmt.Errorf("features: feature %q: time %s is outside the years 1678 to 2262", name, v.Time.Format(time.RFC3339))
			}
		case KindString, KindBool:
		default:
			return fmt.Errorf("features: feature %q: unknown kind %d", name, v.Kind)
		}
	}
	return nil
}

// The times a record can hold: Unix nanoseconds in an int64.
var (
	minTime = time.Unix(0, math.MinInt64).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

// groupThousands writes an integer's digits in groups of three: 167540
// becomes 167,540.
func groupThousands(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	if len(s) <= 4 {
		if neg {
			return "-" + s
		}
		return s
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	head := len(s) % 3
	if head > 0 {
		b.WriteString(s[:head])
	}
	for i := head; i < len(s); i += 3 {
		if b.Len() > 0 && !(neg && b.Len() == 1) {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}
