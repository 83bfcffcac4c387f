package features

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"time"
)

// A cached record keeps its values packed in one string rather than a
// map: a map of 20 features is about 3 KB holding some 60 pointers, which
// the collector marks on every cycle (with a million clients the cache is
// most of the heap, and marking it took 0.5-0.8 s of a core a cycle); the
// packed form is a few hundred bytes and holds none. Lookups are a binary
// search over names; strings are substrings of the packed form, so reading
// allocates nothing.
//
// Layout (all integers little endian):
//
//	uint16   count
//	count x  uint16 offset of the entry, entries sorted by name
//	entries: uint8 name length, name, tag (codec tags), payload:
//	         tagFloat: 8 bytes; tagString: uint16 length, bytes;
//	         tagFalse, tagTrue: none; tagTime: int64 Unix nanoseconds
//
// A record that does not fit (a name over 255 bytes, a string over 64 KiB,
// more than 64 KiB in all) stays a map.

// maxPacked bounds the packed form (offsets are 16 bits).
const maxPacked = 1<<16 - 1

// pack returns r with its values packed and Values nil, or r unchanged
// when it does not fit or is already packed.
func (r Record) pack() Record {
	if r.Values == nil {
		return r
	}
	pairs := make([]packPair, 0, len(r.Values))
	for name, v := range r.Values {
		pairs = append(pairs, packPair{name, v})
	}
	if p, ok := packPairs(pairs); ok {
		r.packed, r.Values = p, nil
	}
	return r
}

// A packPair is one value to pack and its name.
type packPair struct {
	name string
	v    Value
}

// packPairs returns the packed form of the values, or false when they do
// not fit. Of two values with one name, the later counts, as in a map.
func packPairs(pairs []packPair) (string, bool) {
	if len(pairs) > maxPacked {
		return "", false
	}
	// The order of the values by name: none to find when they are stored
	// in order already (as encodeRecord writes them).
	var room [48]uint16
	order := room[:0]
	for i := range pairs {
		order = append(order, uint16(i))
	}
	if !slices.IsSortedFunc(pairs, func(a, b packPair) int { return strings.Compare(a.name, b.name) }) {
		slices.SortFunc(order, func(a, b uint16) int {
			if c := strings.Compare(pairs[a].name, pairs[b].name); c != 0 {
				return c
			}
			return int(a) - int(b)
		})
	}
	// dup: a value that a later one of the same name replaces.
	dup := func(j int) bool { return j+1 < len(order) && pairs[order[j+1]].name == pairs[order[j]].name }
	size, n := 2, 0
	for j, i := range order {
		p := pairs[i]
		if dup(j) {
			continue
		}
		if len(p.name) == 0 || len(p.name) > 255 || len(p.v.Str) > maxPacked {
			return "", false
		}
		switch p.v.Kind {
		case KindNumber, KindString, KindBool, KindTime:
		default:
			return "", false
		}
		size += 2 + 1 + len(p.name) + 1 + 8 + len(p.v.Str)
		n++
	}
	if size > maxPacked || n > maxPacked {
		return "", false
	}
	b := make([]byte, 2+2*n, size)
	binary.LittleEndian.PutUint16(b, uint16(n))
	k := 0
	for j, i := range order {
		if dup(j) {
			continue
		}
		p := pairs[i]
		binary.LittleEndian.PutUint16(b[2+2*k:], uint16(len(b)))
		k++
		b = append(b, byte(len(p.name)))
		b = append(b, p.name...)
		switch v := p.v; v.Kind {
		case KindNumber:
			b = append(b, tagFloat)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Num))
		case KindString:
			b = append(b, tagString)
			b = binary.LittleEndian.AppendUint16(b, uint16(len(v.Str)))
			b = append(b, v.Str...)
		case KindBool:
			b = append(b, boolTag(v.Bool))
		case KindTime:
			b = append(b, tagTime)
			b = binary.LittleEndian.AppendUint64(b, uint64(v.Time.UnixNano()))
		}
	}
	return string(b), true
}

// packedLen is the number of values in p.
func packedLen(p string) int { return int(p[0]) | int(p[1])<<8 }

// packedEntry returns the name and value of entry i of p.
func packedEntry(p string, i int) (string, Value) {
	off := int(p[2+2*i]) | int(p[3+2*i])<<8
	l := int(p[off])
	name := p[off+1 : off+1+l]
	off += 1 + l
	tag := p[off]
	off++
	u64 := func() uint64 {
		return uint64(p[off]) | uint64(p[off+1])<<8 | uint64(p[off+2])<<16 | uint64(p[off+3])<<24 |
			uint64(p[off+4])<<32 | uint64(p[off+5])<<40 | uint64(p[off+6])<<48 | uint64(p[off+7])<<56
	}
	switch tag {
	case tagFloat:
		return name, Number(math.Float64frombits(u64()))
	case tagString:
		n := int(p[off]) | int(p[off+1])<<8
		return name, String(p[off+2 : off+2+n])
	case tagTrue, tagFalse:
		return name, Bool(tag == tagTrue)
	default: // tagTime
		return name, Time(time.Unix(0, int64(u64())))
	}
}

// packedName returns the name of entry i of p.
func packedName(p string, i int) string {
	off := int(p[2+2*i]) | int(p[3+2*i])<<8
	return p[off+1 : off+1+int(p[off])]
}

// Value returns the named feature and whether the record has it.
func (r *Record) Value(name string) (Value, bool) {
	if r.packed == "" {
		v, ok := r.Values[name]
		return v, ok
	}
	lo, hi := 0, packedLen(r.packed)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch c := strings.Compare(packedName(r.packed, m), name); {
		case c == 0:
			_, v := packedEntry(r.packed, m)
			return v, true
		case c < 0:
			lo = m + 1
		default:
			hi = m
		}
	}
	return Value{}, false
}

// Len returns the number of features the record has.
func (r *Record) Len() int {
	if r.packed == "" {
		return len(r.Values)
	}
	return packedLen(r.packed)
}

// All calls yield with each feature (in no set order) until it returns
// false.
func (r *Record) All(yield func(name string, v Value) bool) {
	if r.packed == "" {
		for name, v := range r.Values {
			if !yield(name, v) {
				return
			}
		}
		return
	}
	for i := range packedLen(r.packed) {
		if !yield(packedEntry(r.packed, i)) {
			return
		}
	}
}

// inOrder calls yield with each feature in name order until it returns
// false.
func (r *Record) inOrder(yield func(name string, v Value) bool) {
	if r.packed != "" {
		r.All(yield) // packed in name order
		return
	}
	var room [48]string
	names := room[:0]
	for name := range r.Values {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !yield(name, r.Values[name]) {
			return
		}
	}
}

// Map returns the record's features as a map the caller owns.
func (r *Record) Map() map[string]Value {
	m := make(map[string]Value, r.Len())
	for name, v := range r.All {
		m[name] = v
	}
	return m
}
