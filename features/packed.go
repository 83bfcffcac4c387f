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
	names := make([]string, 0, len(r.Values))
	size := 2
	for name, v := range r.Values {
		if len(name) == 0 || len(name) > 255 || len(v.Str) > maxPacked {
			return r
		}
		names = append(names, name)
		size += 2 + 1 + len(name) + 1 + 8 + len(v.Str)
	}
	if size > maxPacked || len(names) > maxPacked {
		return r
	}
	slices.Sort(names)
	b := make([]byte, 2+2*len(names), size)
	binary.LittleEndian.PutUint16(b, uint16(len(names)))
	for i, name := range names {
		binary.LittleEndian.PutUint16(b[2+2*i:], uint16(len(b)))
		b = append(b, byte(len(name)))
		b = append(b, name...)
		switch v := r.Values[name]; v.Kind {
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
		default:
			return r
		}
	}
	r.packed, r.Values = string(b), nil
	return r
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

// Map returns the record's features as a map the caller owns.
func (r *Record) Map() map[string]Value {
	m := make(map[string]Value, r.Len())
	for name, v := range r.All {
		m[name] = v
	}
	return m
}
