package features

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// memSink keeps what an import stores.
type memSink struct{ recs []Record }

func (m *memSink) PutBatch(_ context.Context, recs []Record) error {
	m.recs = append(m.recs, recs...)
	return nil
}

const fuzzSchema = `
features:
  - {name: age, type: number}
  - {name: balance, type: number}
  - {name: vip, type: bool}
  - {name: tier, type: string}
  - {name: last_contact, type: time}
`

// FuzzImport: any file, CSV or JSON Lines, is imported or rejected with
// bad rows named by line; never a panic, never a record that breaks the
// schema, and without skip-bad a file with bad rows stores nothing.
func FuzzImport(f *testing.F) {
	schema, err := ReadSchema(strings.NewReader(fuzzSchema))
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []struct {
		data  string
		jsonl bool
	}{
		{"client_id,age,balance,vip,tier,last_contact\nC1,40,100.5,true,gold,2026-01-02T03:04:05Z\nC2,,,false,,\n", false},
		{"client_id,age\nC1,forty\n\"C2,3\n", false},
		{"client_id;age\nC1;40\n", false},
		{`{"client_id":"C1","age":40,"vip":true,"last_contact":"2026-01-02T03:04:05Z"}` + "\n" + `{"client_id":"C2","balance":"x"}` + "\n", true},
		{`{"client_id":"C1","age":1e400}` + "\n{}\n[1,2]\n", true},
		{"\xef\xbb\xbfclient_id,age\r\nC1,1\r\n", false},
	} {
		f.Add([]byte(seed.data), seed.jsonl, false)
		f.Add([]byte(seed.data), seed.jsonl, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, jsonl, skipBad bool) {
		format := "csv"
		if jsonl {
			format = "jsonl"
		}
		sink := &memSink{}
		open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
		res, err := Import(context.Background(), open, schema, sink, ImportOptions{Format: format, SkipBad: skipBad, BatchSize: 3})
		if errors.Is(err, ErrBadRows) && len(sink.recs) != 0 {
			t.Fatalf("a rejected file stored %d records", len(sink.recs))
		}
		if err == nil && int64(len(sink.recs)) != res.Imported {
			t.Fatalf("imported %d, stored %d", res.Imported, len(sink.recs))
		}
		for _, r := range sink.recs {
			if r.ClientID == "" {
				t.Fatal("a record without a client id was stored")
			}
			for name, v := range r.Values {
				fl, ok := schema.Field(name)
				if !ok || fl.Kind() != v.Kind {
					t.Fatalf("stored %s = %+v, not in the schema's kind", name, v)
				}
			}
		}
		for _, b := range res.BadRows {
			if b.Line < 1 || b.Msg == "" {
				t.Fatalf("bad row without its line or message: %+v", b)
			}
		}
	})
}

// FuzzDecodeRecord: any stored bytes decode or fail with an error, never a
// panic; what decodes encodes again to a record that decodes the same,
// with the name table and without.
func FuzzDecodeRecord(f *testing.F) {
	rec := codecSample()
	names := []string{"age", "maturity", "segment"}
	ids := func(n string) (uint64, bool) {
		for i, x := range names {
			if x == n {
				return uint64(i), true
			}
		}
		return 0, false
	}
	f.Add(encodeRecord(&rec, ids))
	f.Add(encodeRecord(&rec, nil))
	f.Add(encodeV1(&rec))
	f.Add([]byte(`{"u":"2026-01-01T00:00:00Z","v":{"x":{"n":1},"t":{"s":"gold"}}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var r Record
		if err := decodeRecord(raw, &r, names); err != nil {
			return
		}
		r.ClientID = "C1"
		if err := r.Validate(); err != nil {
			return // a JSON record may hold what a store never writes
		}
		for _, with := range []func(string) (uint64, bool){ids, nil} {
			var again Record
			if err := decodeRecord(encodeRecord(&r, with), &again, names); err != nil {
				t.Fatalf("re-encoded record does not decode: %v", err)
			}
			if again.Len() != r.Len() || !again.UpdatedAt.Equal(r.UpdatedAt) {
				t.Fatalf("round trip changed the record: %+v -> %+v", r, again)
			}
			for name, v := range r.All {
				w, _ := again.Value(name)
				same := w.Kind == v.Kind && w.Str == v.Str && w.Bool == v.Bool && w.Time.Equal(v.Time) &&
					(w.Num == v.Num || (w.Num != w.Num && v.Num != v.Num))
				if !same {
					t.Fatalf("feature %q: %+v -> %+v", name, v, w)
				}
			}
		}
	})
}
