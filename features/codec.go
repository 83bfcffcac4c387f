package features

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// The stored form of a Record (the value under the client's key):
//
//	byte     codecV2 (2)
//	varint   updated_at, Unix nanoseconds (0 when unset)
//	uvarint  number of values
//	then per value, in any order:
//	  uvarint  name: 2*id+1 for a name in the store's name table,
//	           2*length followed by the name's bytes otherwise
//	  byte     tag, then its payload:
//	           1 number:  8 bytes, IEEE 754 little endian
//	           2 string:  uvarint length, bytes
//	           3 false, 4 true: nothing
//	           5 time:    varint Unix nanoseconds
//	           6 integer: varint (a number that is a whole number
//	                      below 2^53 in size; not -0)
//
// The embedded store keeps one table of feature names (names.go) and
// writes ids; Redis has no such table and writes names. With ids and
// whole numbers as varints, a demo client is 70 bytes instead of 450.
//
// Records written before are still read: codecV1 (1) wrote each name in
// full and every number in 8 bytes, and the skeleton's first records were
// JSON (first byte '{').
const (
	codecV1 = 1
	codecV2 = 2
)

// Value tags of codecV2; codecV1's kinds are 1 to 4 (number, string, bool
// with a payload byte, time).
const (
	tagFloat  = 1
	tagString = 2
	tagFalse  = 3
	tagTrue   = 4
	tagTime   = 5
	tagInt    = 6
)

// maxExactInt is the largest whole number a float64 holds exactly.
const maxExactInt = 1 << 53

// encodeRecord encodes a record with codecV2, writing names as ids where
// ids gives one (ids may be nil), and the values in name order, the order
// a read packs them in (decodeBinary then has nothing to sort).
func encodeRecord(r *Record, ids func(name string) (uint64, bool)) []byte {
	n := 1 + 2*binary.MaxVarintLen64
	for name, v := range r.All {
		n += 2*binary.MaxVarintLen64 + len(name) + 1 + len(v.Str) + 8
	}
	b := make([]byte, 0, n)
	b = append(b, codecV2)
	var at int64
	if !r.UpdatedAt.IsZero() {
		at = r.UpdatedAt.UnixNano()
	}
	b = binary.AppendVarint(b, at)
	b = binary.AppendUvarint(b, uint64(r.Len()))
	for name, v := range r.inOrder {
		if id, ok := lookup(ids, name); ok {
			b = binary.AppendUvarint(b, 2*id+1)
		} else {
			b = binary.AppendUvarint(b, 2*uint64(len(name)))
			b = append(b, name...)
		}
		switch v.Kind {
		case KindNumber:
			if v.Num == math.Trunc(v.Num) && math.Abs(v.Num) < maxExactInt && !(v.Num == 0 && math.Signbit(v.Num)) {
				b = append(b, tagInt)
				b = binary.AppendVarint(b, int64(v.Num))
			} else {
				b = append(b, tagFloat)
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Num))
			}
		case KindString:
			b = append(b, tagString)
			b = binary.AppendUvarint(b, uint64(len(v.Str)))
			b = append(b, v.Str...)
		case KindBool:
			b = append(b, boolTag(v.Bool))
		case KindTime:
			b = append(b, tagTime)
			b = binary.AppendVarint(b, v.Time.UnixNano())
		}
	}
	return b
}

// boolTag is a boolean's tag (it has no payload).
func boolTag(v bool) byte {
	if v {
		return tagTrue
	}
	return tagFalse
}

func lookup(ids func(string) (uint64, bool), name string) (uint64, bool) {
	if ids == nil {
		return 0, false
	}
	return ids(name)
}

var errCorrupt = errors.New("features: corrupt record")

// decodeBinary decodes a codecV1 or codecV2 record into r's packed form
// (see packed.go), or into r.Values when it does not fit there; names
// resolves the name ids of codecV2 (nil when the record cannot hold any).
// A store's reads use it: the cache keeps records packed, and packing
// here, from the stored bytes, spares building a map only to pack it.
func decodeBinary(b []byte, r *Record, names []string) error {
	d, err := newBinaryReader(b, names)
	if err != nil {
		return err
	}
	if d.at != 0 {
		r.UpdatedAt = time.Unix(0, d.at).UTC()
	}
	// Room for a typical record on the stack; a larger one grows on the heap.
	var room [48]packPair
	pairs := room[:0]
	for d.left > 0 {
		name, v, err := d.next()
		if err != nil {
			return err
		}
		pairs = append(pairs, packPair{name, v})
	}
	if err := d.end(); err != nil {
		return err
	}
	if p, ok := packPairs(pairs); ok {
		r.packed, r.Values = p, nil
		return nil
	}
	r.packed, r.Values = "", make(map[string]Value, len(pairs))
	for _, p := range pairs {
		r.Values[p.name] = p.v
	}
	return nil
}

// binaryReader reads the values of a codecV1 or codecV2 record in their
// stored order: next, left times, then end.
type binaryReader struct {
	b     []byte // the values
	names []string
	v2    bool
	at    int64  // UpdatedAt in Unix nanoseconds, 0 when not set
	left  uint64 // values not read yet
	off   int
	// all holds every inline name and string value, made on the first
	// need: one allocation a record instead of one a value.
	all string
}

func newBinaryReader(b []byte, names []string) (binaryReader, error) {
	d := binaryReader{names: names}
	if len(b) == 0 || (b[0] != codecV1 && b[0] != codecV2) {
		return d, errCorrupt
	}
	d.v2 = b[0] == codecV2
	b = b[1:]
	at, n := binary.Varint(b)
	if n <= 0 {
		return d, errCorrupt
	}
	b = b[n:]
	d.at = at
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return d, errCorrupt
	}
	d.b, d.left = b[n:], count
	return d, nil
}

func (d *binaryReader) text(off, l int) string {
	if d.all == "" {
		d.all = string(d.b)
	}
	return d.all[off : off+l]
}

// next returns the next value and its name.
func (d *binaryReader) next() (string, Value, error) {
	b, off := d.b, d.off
	d.left--
	h, n := binary.Uvarint(b[off:])
	if n <= 0 {
		return "", Value{}, errCorrupt
	}
	off += n
	var name string
	switch {
	case d.v2 && h&1 == 1:
		if h>>1 >= uint64(len(d.names)) {
			return "", Value{}, fmt.Errorf("%w: feature name id %d is not in the name table", errCorrupt, h>>1)
		}
		name = d.names[h>>1]
	default:
		l := h
		if d.v2 {
			l = h >> 1
		}
		if l == 0 || uint64(len(b)-off) < l {
			return "", Value{}, errCorrupt
		}
		name = d.text(off, int(l))
		off += int(l)
	}
	if off >= len(b) {
		return "", Value{}, errCorrupt
	}
	tag := b[off]
	off++
	if !d.v2 {
		tag = v1Tag(tag, b, &off)
	}
	var v Value
	switch tag {
	case tagFloat:
		if len(b)-off < 8 {
			return "", Value{}, errCorrupt
		}
		v = Number(math.Float64frombits(binary.LittleEndian.Uint64(b[off:])))
		off += 8
	case tagInt:
		i, n := binary.Varint(b[off:])
		if n <= 0 {
			return "", Value{}, errCorrupt
		}
		v = Number(float64(i))
		off += n
	case tagString:
		l, n := binary.Uvarint(b[off:])
		if n <= 0 || uint64(len(b)-off-n) < l {
			return "", Value{}, errCorrupt
		}
		off += n
		if l > 0 {
			v = String(d.text(off, int(l)))
		} else {
			v = String("")
		}
		off += int(l)
	case tagFalse, tagTrue:
		v = Bool(tag == tagTrue)
	case tagTime:
		t, n := binary.Varint(b[off:])
		if n <= 0 {
			return "", Value{}, errCorrupt
		}
		v = Time(time.Unix(0, t))
		off += n
	default:
		return "", Value{}, fmt.Errorf("%w: value %q has tag %d", errCorrupt, name, tag)
	}
	d.off = off
	return name, v, nil
}

// end reports a record with bytes left over after its last value.
func (d *binaryReader) end() error {
	if d.off != len(d.b) {
		return errCorrupt
	}
	return nil
}

// v1Tag maps a codecV1 kind to its codecV2 tag, reading the payload byte
// of a boolean; 0 when the record is corrupt.
func v1Tag(kind byte, b []byte, off *int) byte {
	switch Kind(kind) {
	case KindNumber:
		return tagFloat
	case KindString:
		return tagString
	case KindTime:
		return tagTime
	case KindBool:
		if *off >= len(b) || b[*off] > 1 {
			return 0
		}
		*off++
		if b[*off-1] == 1 {
			return tagTrue
		}
		return tagFalse
	default:
		return 0
	}
}
