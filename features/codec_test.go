package features

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	bolt "go.etcd.io/bbolt"
)

func codecSample() Record {
	at := time.Date(2026, 11, 1, 8, 0, 0, 123, time.UTC)
	return Record{ClientID: "C1", UpdatedAt: at, Values: map[string]Value{
		"age": Number(41.5), "segment": String("retail é"), "empty": String(""), "consent": Bool(true), "no": Bool(false),
		"maturity": Time(at.AddDate(0, 3, 0)), "neg": Number(-0.25), "balance": Number(21860), "debt": Number(-3),
		"negzero": Number(math.Copysign(0, -1)), "zero": Number(0), "big": Number(1 << 53), "below": Number(1<<53 - 1),
		"huge": Number(1e300), "tiny": Number(5e-324),
	}}
}

func TestCodecRoundTripAndCorruption(t *testing.T) {
	rec := codecSample()
	table := map[string]uint64{"age": 0, "segment": 3, "maturity": 1, "balance": 7}
	names := []string{"age", "maturity", "", "segment", "", "", "", "balance"}
	for _, tc := range []struct {
		name  string
		ids   func(string) (uint64, bool)
		names []string
	}{
		{"names inline (Redis)", nil, nil},
		{"names from a table (bbolt)", func(n string) (uint64, bool) { id, ok := table[n]; return id, ok }, names},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := encodeRecord(&rec, tc.ids)
			var got Record
			if err := decodeRecord(raw, &got, tc.names); err != nil {
				t.Fatal(err)
			}
			got.ClientID = rec.ClientID
			if diff := cmp.Diff(rec, unpacked(got), ignoreMemo, cmp.Comparer(sameFloat)); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			// Every truncation and a trailing byte is an error, never a
			// panic.
			for i := 1; i < len(raw); i++ {
				var r Record
				if err := decodeRecord(raw[:i], &r, tc.names); err == nil {
					t.Errorf("truncated to %d of %d bytes: decoded", i, len(raw))
				}
			}
			var r Record
			if err := decodeRecord(append(append([]byte{}, raw...), 0), &r, tc.names); err == nil {
				t.Error("trailing byte: decoded")
			}
		})
	}
	// A name id beyond the table is named as such.
	raw := encodeRecord(&rec, func(n string) (uint64, bool) { return 40, n == "age" })
	var r Record
	if err := decodeRecord(raw, &r, names); err == nil {
		t.Error("unknown name id: decoded")
	}
}

// sameFloat tells -0 from 0, which == does not.
func sameFloat(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b)
}

func TestCodecIsCompact(t *testing.T) {
	// A client of the demo schema: 20 features, names from the table.
	rec := Record{ClientID: "C0000001", UpdatedAt: time.Now(), Values: map[string]Value{}}
	ids := map[string]uint64{}
	for i, n := range []string{"age", "income_monthly", "balance", "tenure_years", "num_products", "days_to_deposit_maturity",
		"digital_active", "consent_offers", "consent_outbound", "deposit_matures_within_60d", "holds_credit_card",
		"holds_premium_card", "holds_savings_account", "holds_term_deposit", "holds_personal_loan", "holds_mortgage",
		"holds_home_insurance", "holds_investment_fund", "payday", "contact_hours_phone_outbound"} {
		ids[n] = uint64(i)
		switch {
		case i < 6:
			rec.Values[n] = Number(float64(i*4999 + 35))
		case i == 18:
			rec.Values[n] = Number(25)
		case i == 19:
			rec.Values[n] = String("09:00-12:00")
		default:
			rec.Values[n] = Bool(i%2 == 0)
		}
	}
	raw := encodeRecord(&rec, func(n string) (uint64, bool) { id, ok := ids[n]; return id, ok })
	if len(raw) > 80 {
		t.Errorf("a demo client takes %d bytes, want at most 80", len(raw))
	}
	if v1 := encodeV1(&rec); len(v1) < 4*len(raw) {
		t.Errorf("codec v1 %d bytes, v2 %d: want v2 at least 4 times smaller", len(v1), len(raw))
	}
}

// TestReadsArePacked: a record read from its stored form is packed
// whatever order its values were stored in (and however many), a name
// stored twice keeps its later value, as a map would, and a record too
// large to pack is read as a map.
func TestReadsArePacked(t *testing.T) {
	// Stored out of name order, "b" twice: b=1, a=2, b=3.
	raw := []byte{codecV2}
	raw = binary.AppendVarint(raw, 0)
	raw = binary.AppendUvarint(raw, 3)
	for i, name := range []string{"b", "a", "b"} {
		raw = binary.AppendUvarint(raw, 2*uint64(len(name)))
		raw = append(raw, name...)
		raw = append(raw, tagInt)
		raw = binary.AppendVarint(raw, int64(i+1))
	}
	var got Record
	if err := decodeRecord(raw, &got, nil); err != nil {
		t.Fatal(err)
	}
	if got.packed == "" || got.Len() != 2 {
		t.Fatalf("read %+v, want 2 values packed", got)
	}
	if a, _ := got.Num("a"); a != 2 {
		t.Errorf("a = %v, want 2", a)
	}
	if b, _ := got.Num("b"); b != 3 {
		t.Errorf("b = %v, want 3 (the later of the two stored)", b)
	}
	// A hundred values in a random order (a v1 record, as maps wrote
	// them), and in name order (as encodeRecord writes them).
	big := Record{ClientID: "C1", UpdatedAt: time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC), Values: map[string]Value{}}
	for i := range 100 {
		big.Values[fmt.Sprintf("f%03d", 99-i)] = Number(float64(i))
	}
	for _, raw := range [][]byte{encodeV1(&big), encodeRecord(&big, nil)} {
		var got Record
		if err := decodeRecord(raw, &got, nil); err != nil {
			t.Fatal(err)
		}
		if got.packed == "" {
			t.Fatal("a record of 100 values was not packed")
		}
		got.ClientID = big.ClientID
		if diff := cmp.Diff(big, unpacked(got), ignoreMemo); diff != "" {
			t.Errorf("100 values (-want +got):\n%s", diff)
		}
	}
	huge := Record{ClientID: "C1", Values: map[string]Value{"s": String(strings.Repeat("x", 70_000)), "n": Number(1)}}
	got = Record{}
	if err := decodeRecord(encodeRecord(&huge, nil), &got, nil); err != nil {
		t.Fatal(err)
	}
	if got.packed != "" || got.Str("s") != huge.Values["s"].Str || got.Values["n"].Num != 1 {
		t.Errorf("a record too large to pack: packed %d bytes, values %d", len(got.packed), len(got.Values))
	}
}

func TestCodecReadsV1(t *testing.T) {
	rec := codecSample()
	var got Record
	if err := decodeRecord(encodeV1(&rec), &got, nil); err != nil {
		t.Fatal(err)
	}
	got.ClientID = rec.ClientID
	if diff := cmp.Diff(rec, unpacked(got), ignoreMemo, cmp.Comparer(sameFloat)); diff != "" {
		t.Errorf("v1 record (-want +got):\n%s", diff)
	}
}

// encodeV1 writes codecV1, as sessions 1 to 3 did, for the test that it is
// still read.
func encodeV1(r *Record) []byte {
	b := []byte{codecV1}
	b = binary.AppendVarint(b, r.UpdatedAt.UnixNano())
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

func TestCodecReadsLegacyJSON(t *testing.T) {
	n, s := 3.5, "gold"
	raw, err := json.Marshal(wireRecord{UpdatedAt: time.Unix(100, 0).UTC(), Values: map[string]wireValue{"x": {N: &n}, "tier": {S: &s}}})
	if err != nil {
		t.Fatal(err)
	}
	var r Record
	if err := decodeRecord(raw, &r, nil); err != nil {
		t.Fatal(err)
	}
	if r.Values["x"].Num != 3.5 || r.Values["tier"].Str != "gold" {
		t.Errorf("legacy record = %+v", r)
	}
}

// TestNameTableSurvivesReopenAndRollback writes records in three forms
// (v1 from before, v2 with a name table, a batch whose transaction fails
// after giving out ids) and reads them all back after reopening.
func TestNameTableSurvivesReopenAndRollback(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tact.db")
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	old := Record{ClientID: "OLD", UpdatedAt: time.Unix(5, 0).UTC(), Values: map[string]Value{"legacy": Number(1.5)}}
	if err := b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketClients).Put([]byte(old.ClientID), encodeV1(&old))
	}); err != nil {
		t.Fatal(err)
	}
	first := Record{ClientID: "A", UpdatedAt: time.Unix(10, 0).UTC(), Values: map[string]Value{"age": Number(40), "tier": String("gold")}}
	if err := b.PutBatch(ctx, []Record{first}); err != nil {
		t.Fatal(err)
	}
	// A batch whose transaction rolls back after its names got ids.
	lost := Record{ClientID: "LOST", Values: map[string]Value{"rolled_back": Bool(true), "age": Number(1)}}
	if err := b.db.Update(func(tx *bolt.Tx) error {
		if _, err := b.names.assign(tx, []Record{lost}); err != nil {
			return err
		}
		return context.Canceled
	}); err == nil {
		t.Fatal("the failing transaction committed")
	}
	// The next batch uses the rolled-back name: it must be written now.
	second := Record{ClientID: "B", UpdatedAt: time.Unix(20, 0).UTC(), Values: map[string]Value{"rolled_back": Bool(false), "balance": Number(-7.25)}}
	if err := b.PutBatch(ctx, []Record{second}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, want := range []Record{old, first, second} {
		got, err := b.Get(ctx, want.ClientID)
		if err != nil {
			t.Fatalf("%s: %v", want.ClientID, err)
		}
		if diff := cmp.Diff(want, unpacked(got), ignoreMemo); diff != "" {
			t.Errorf("%s after reopen (-want +got):\n%s", want.ClientID, diff)
		}
	}
	if _, err := b.Get(ctx, "LOST"); err != ErrNotFound {
		t.Errorf("LOST: err = %v, want ErrNotFound", err)
	}
	// New names after reopen get new ids, not those of names kept.
	third := Record{ClientID: "C", Values: map[string]Value{"fresh": Number(3)}}
	if err := b.PutBatch(ctx, []Record{third}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"A", "B", "C"} {
		if _, err := b.Get(ctx, id); err != nil {
			t.Errorf("%s after a new name: %v", id, err)
		}
	}
	if got, _ := b.Get(ctx, "C"); got.Map()["fresh"].Num != 3 {
		t.Errorf("C = %+v", got.Map())
	}
	if got, _ := b.Get(ctx, "A"); got.Map()["age"].Num != 40 {
		t.Errorf("A = %+v", got.Map())
	}
}

// ignoreMemo leaves out Record's memo, which cmp cannot compare.
var ignoreMemo = cmpopts.IgnoreUnexported(Record{})

// unpacked returns r with its features in Values, as a record is built,
// to compare with one.
func unpacked(r Record) Record {
	r.Values, r.packed = r.Map(), ""
	return r
}

// TestTimesOutOfRangeAreRefused: a time the store cannot hold (Unix
// nanoseconds) is refused naming the feature, not stored wrong.
func TestTimesOutOfRangeAreRefused(t *testing.T) {
	for _, at := range []time.Time{time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)} {
		r := Record{ClientID: "C1", Values: map[string]Value{"matures_on": Time(at)}}
		err := r.Validate()
		if err == nil || !strings.Contains(err.Error(), `"matures_on"`) {
			t.Errorf("%v: err = %v, want one naming matures_on", at, err)
		}
	}
	ok := Record{ClientID: "C1", Values: map[string]Value{"matures_on": Time(time.Date(2261, 1, 1, 0, 0, 0, 0, time.UTC))}}
	if err := ok.Validate(); err != nil {
		t.Errorf("2261: %v", err)
	}
}
