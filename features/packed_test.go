package features

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// sameValue compares values as a reader sees them (times by instant).
func sameValue(a, b Value) bool {
	if a.Kind != b.Kind || a.Str != b.Str || a.Bool != b.Bool || !a.Time.Equal(b.Time) {
		return false
	}
	return math.Float64bits(a.Num) == math.Float64bits(b.Num)
}

func TestPackedRecordReadsAsTheMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	values := []Value{Number(0), Number(math.Copysign(0, -1)), Number(-1.5), Number(1e300), Number(42), Number(math.Inf(1)),
		String(""), String("gold"), String("é, ünïcode"), String(strings.Repeat("x", 3000)), Bool(true), Bool(false),
		Time(time.Date(2026, 11, 23, 10, 0, 0, 123, time.UTC)), Time(time.Unix(0, 0)), Time(time.Date(1700, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600)))}
	for round := range 500 {
		r := Record{ClientID: "C1", UpdatedAt: time.Unix(int64(round), 0), Values: map[string]Value{}}
		for range rng.IntN(40) {
			name := fmt.Sprintf("f%d", rng.IntN(60))
			if rng.IntN(10) == 0 {
				name = "é" + name
			}
			r.Values[name] = values[rng.IntN(len(values))]
		}
		p := r.pack()
		if len(r.Values) > 0 && (p.Values != nil || p.packed == "") {
			t.Fatalf("round %d: not packed", round)
		}
		if p.ClientID != r.ClientID || !p.UpdatedAt.Equal(r.UpdatedAt) || p.Len() != len(r.Values) {
			t.Fatalf("round %d: record fields or length changed: %d vs %d", round, p.Len(), len(r.Values))
		}
		for name, want := range r.Values {
			got, ok := p.Value(name)
			if !ok || !sameValue(got, want) {
				t.Fatalf("round %d: %q = %+v, %v; want %+v", round, name, got, ok, want)
			}
		}
		for _, missing := range []string{"", "f60", "a", "zzz", "f1x"} {
			if _, ok := r.Values[missing]; ok {
				continue
			}
			if v, ok := p.Value(missing); ok {
				t.Fatalf("round %d: %q present in the packed form: %+v", round, missing, v)
			}
		}
		m := p.Map()
		if len(m) != len(r.Values) {
			t.Fatalf("round %d: Map has %d values, want %d", round, len(m), len(r.Values))
		}
		for name, v := range m {
			if !sameValue(v, r.Values[name]) {
				t.Fatalf("round %d: Map()[%q] = %+v, want %+v", round, name, v, r.Values[name])
			}
		}
		// What the engine reads goes through the same accessors.
		for name, v := range r.Values {
			if n, ok := p.Num(name); ok != (v.Kind == KindNumber || v.Kind == KindBool) || (ok && v.Kind == KindNumber && math.Float64bits(n) != math.Float64bits(v.Num)) {
				t.Fatalf("round %d: Num(%q) = %v, %v for %+v", round, name, n, ok, v)
			}
			if p.Flag(name) != (v.Kind == KindBool && v.Bool) || p.Str(name) != v.Str {
				t.Fatalf("round %d: Flag/Str(%q) differ for %+v", round, name, v)
			}
		}
	}
}

func TestUnpackableRecordsStayMaps(t *testing.T) {
	for _, r := range []Record{
		{ClientID: "C1", Values: map[string]Value{strings.Repeat("n", 256): Number(1)}},
		{ClientID: "C1", Values: map[string]Value{"s": String(strings.Repeat("x", 70_000))}},
	} {
		p := r.pack()
		if p.packed != "" || p.Values == nil {
			t.Errorf("record with a %d-byte name or string was packed", max(len(firstName(r)), len(r.Values[firstName(r)].Str)))
		}
		if v, ok := p.Value(firstName(r)); !ok || !sameValue(v, r.Values[firstName(r)]) {
			t.Errorf("unpacked record lost its value")
		}
	}
	// A packed record given to the schema check is unpacked first.
	s, err := ReadSchema(strings.NewReader("id_column: client_id\nfeatures:\n  - {name: balance, type: number}\n  - {name: vip, type: bool, default: \"false\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := Record{ClientID: "C1", Values: map[string]Value{"balance": Number(5)}}.pack()
	if err := s.Check(&p); err != nil {
		t.Fatal(err)
	}
	if v, ok := p.Value("vip"); !ok || v.Kind != KindBool {
		t.Errorf("default not filled into a packed record: %+v, %v", v, ok)
	}
}

func firstName(r Record) string {
	for name := range r.Values {
		return name
	}
	return ""
}

func BenchmarkPackedValue(b *testing.B) {
	r := Record{ClientID: "C1", Values: map[string]Value{}}
	for i := range 20 {
		r.Values[fmt.Sprintf("feature_%02d", i)] = Number(float64(i))
	}
	p := r.pack()
	b.Run("map", func(b *testing.B) {
		for b.Loop() {
			_ = r.Flag("feature_13")
		}
	})
	b.Run("packed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = p.Flag("feature_13")
		}
	})
}
