package features

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/twmb/murmur3"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFeastEncodingGolden: the keys, fields and values Tact reads are the
// bytes Feast's documented format gives, written out by hand here: the
// entity key (serialization version 3) and project, the murmur3 field
// names, and feast.types.Value and google.protobuf.Timestamp payloads.
func TestFeastEncodingGolden(t *testing.T) {
	// 1 key | type 2 (STRING) | length 9 | "client_id" | type 2 | length 6 | "C00001" | "bank"
	want := "01000000" + "02000000" + "09000000" + hex.EncodeToString([]byte("client_id")) +
		"02000000" + "06000000" + hex.EncodeToString([]byte("C00001")) + hex.EncodeToString([]byte("bank"))
	if got := hex.EncodeToString(FeastKey("bank", "client_id", FeastEntity{Str: "C00001"})); got != want {
		t.Errorf("string entity key:\n got %s\nwant %s", got, want)
	}
	// ... | type 4 (INT64) | length 8 | 42 little-endian | "bank"
	want = "01000000" + "02000000" + "09000000" + hex.EncodeToString([]byte("client_id")) +
		"04000000" + "08000000" + "2a00000000000000" + hex.EncodeToString([]byte("bank"))
	if got := hex.EncodeToString(FeastKey("bank", "client_id", FeastEntity{Int: 42, IsInt: true})); got != want {
		t.Errorf("int64 entity key:\n got %s\nwant %s", got, want)
	}
	// murmur3 x86 32-bit, seed 0, on the reference vector; a field is
	// its hash of "view:feature", little-endian.
	if h := murmur3.Sum32([]byte("The quick brown fox jumps over the lazy dog")); h != 0x2e4ff723 {
		t.Errorf("murmur3 = %#x, want 0x2e4ff723", h)
	}
	h := murmur3.Sum32([]byte("client_profile:age"))
	if got := []byte(FeastField("client_profile", "age")); len(got) != 4 || got[0] != byte(h) || got[3] != byte(h>>24) {
		t.Errorf("field of client_profile:age = %x, want %08x little-endian", got, h)
	}

	at := time.Unix(1800000000, 0)
	for _, tt := range []struct {
		name, raw string
		kind      Kind
		want      Value
		ok        bool
	}{
		{"string_val", "1204676f6c64", KindString, String("gold"), true},
		{"double_val", "290000000000c04740", KindNumber, Number(47.5), true},
		{"float_val", "350000c03f", KindNumber, Number(1.5), true},
		{"int64_val", "2003", KindNumber, Number(3), true},
		{"int32_val negative", "18feffffffffffffffff01", KindNumber, Number(-2), true},
		{"bool_val", "3801", KindBool, Bool(true), true},
		{"unix_timestamp_val", "4080a4a7da06", KindTime, Time(at), true},
		{"null_val", "9a0100", KindNumber, Value{}, true},
		{"empty", "", KindNumber, Value{}, true},
		{"string for a number", "1204676f6c64", KindNumber, Value{}, false},
		{"int64 for a bool", "2003", KindBool, Value{}, false},
		{"string_list_val", "6203" + "0a0161", KindString, Value{}, false},
		{"truncated", "29000000", KindNumber, Value{}, false},
	} {
		got, ok := feastValue(unhex(t, tt.raw), tt.kind)
		if ok != tt.ok || (ok && (got.Kind != tt.want.Kind || got.Num != tt.want.Num || got.Str != tt.want.Str || got.Bool != tt.want.Bool || !got.Time.Equal(tt.want.Time))) {
			t.Errorf("%s: %+v, %v; want %+v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
	// google.protobuf.Timestamp{seconds: 1800000000, nanos: 500}
	if ts, ok := feastTimestamp(unhex(t, "0880a4a7da0610f403")); !ok || !ts.Equal(at.Add(500)) {
		t.Errorf("timestamp = %v, %v; want %v", ts, ok, at.Add(500))
	}
}
