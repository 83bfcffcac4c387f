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
//	byte     codecV1 (1)
//	varint   updated_at, Unix nanoseconds (0 when unset)
//	uvarint  number of values
//	then per value, in any order:
//	  uvarint  name length, name bytes
//	  byte     kind (1 number, 2 string, 3 bool, 4 time)
//	  payload  number: 8 bytes, IEEE 754 little endian
//	           string: uvarint length, bytes
//	           bool:   1 byte, 0 or 1
//	           time:   varint Unix nanoseconds
//
// Records written by the first version of the skeleton are JSON (first
// byte '{') and are still read.
const codecV1 = 1

func encodeBinary(r *Record) []byte {
	n := 1 + 2*binary.MaxVarintLen64
	for name, v := range r.Values {
		n += binary.MaxVarintLen64 + len(name) + 1 + binary.MaxVarintLen64 + len(v.Str) + 8
	}
	b := make([]byte, 0, n)
	b = append(b, codecV1)
	var at int64
	if !r.UpdatedAt.IsZero() {
		at = r.UpdatedAt.UnixNano()
	}
	b = binary.AppendVarint(b, at)
	b = binary.AppendUvarint(b, uint64(len(r.Values)))
	for name, v := range r.Values {
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		b = append(b, byte(v.Kind))
		switch v.Kind {
		case KindNumber:
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Num))
		case KindString:
			b = binary.AppendUvarint(b, uint64(len(v.Str)))
			b = append(b, v.Str...)
		case KindBool:
			if v.Bool {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		case KindTime:
			b = binary.AppendVarint(b, v.Time.UnixNano())
		}
	}
	return b
}

var errCorrupt = errors.New("features: corrupt record")

// decodeBinary decodes a record; names shares one allocation per record.
func decodeBinary(b []byte, r *Record) error {
	if len(b) == 0 || b[0] != codecV1 {
		return errCorrupt
	}
	b = b[1:]
	at, n := binary.Varint(b)
	if n <= 0 {
		return errCorrupt
	}
	b = b[n:]
	if at != 0 {
		r.UpdatedAt = time.Unix(0, at).UTC()
	}
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return errCorrupt
	}
	b = b[n:]
	// One string holds every name and string value: one allocation
	// instead of one per value.
	all := string(b)
	off := 0
	r.Values = make(map[string]Value, count)
	for range count {
		l, n := binary.Uvarint(b[off:])
		if n <= 0 || uint64(len(b)-off-n) < l+1 {
			return errCorrupt
		}
		off += n
		name := all[off : off+int(l)]
		off += int(l)
		kind := Kind(b[off])
		off++
		var v Value
		switch kind {
		case KindNumber:
			if len(b)-off < 8 {
				return errCorrupt
			}
			v = Number(math.Float64frombits(binary.LittleEndian.Uint64(b[off:])))
			off += 8
		case KindString:
			l, n := binary.Uvarint(b[off:])
			if n <= 0 || uint64(len(b)-off-n) < l {
				return errCorrupt
			}
			off += n
			v = String(all[off : off+int(l)])
			off += int(l)
		case KindBool:
			if off >= len(b) || b[off] > 1 {
				return errCorrupt
			}
			v = Bool(b[off] == 1)
			off++
		case KindTime:
			t, n := binary.Varint(b[off:])
			if n <= 0 {
				return errCorrupt
			}
			v = Time(time.Unix(0, t))
			off += n
		default:
			return fmt.Errorf("%w: value %q has kind %d", errCorrupt, name, kind)
		}
		r.Values[name] = v
	}
	if off != len(b) {
		return errCorrupt
	}
	return nil
}
