package features

import (
	"io"
	"strings"
	"testing"
	"time"
)

const testSchema = `id_column: client_id
features:
  - {name: age, type: number}
  - {name: segment, type: string}
  - {name: consent_offers, type: bool, default: "false"}
  - {name: maturity, type: time}
`

func mustSchema(t *testing.T) *Schema {
	t.Helper()
	s, err := ReadSchema(strings.NewReader(testSchema))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func opener(s string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil }
}

func TestImportCSV(t *testing.T) {
	ctx := t.Context()
	b, _ := openTemp(t)
	defer b.Close()
	schema := mustSchema(t)
	good := "client_id,age,segment,consent_offers,maturity\nC1,41,retail,yes,2027-01-15\nC2,,private,0,\n"
	for range 2 { // running twice gives the same store
		res, err := Import(ctx, opener(good), schema, b, ImportOptions{BatchSize: 1})
		if err != nil || res.Imported != 2 || res.Bad != 0 {
			t.Fatalf("Import = %+v, %v", res, err)
		}
	}
	if n, _ := b.CountClients(ctx); n != 2 {
		t.Errorf("%d clients after importing twice, want 2", n)
	}
	got, err := b.Get(ctx, "C1")
	if err != nil {
		t.Fatal(err)
	}
	c1 := unpacked(got)
	if c1.Values["age"].Num != 41 || c1.Values["segment"].Str != "retail" || !c1.Values["consent_offers"].Bool ||
		!c1.Values["maturity"].Time.Equal(time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC)) || c1.UpdatedAt.IsZero() {
		t.Errorf("C1 = %+v", c1)
	}
	got, _ = b.Get(ctx, "C2")
	c2 := unpacked(got)
	if _, ok := c2.Values["age"]; ok || c2.Values["consent_offers"].Kind != KindBool {
		t.Errorf("C2 = %+v: want no age and the default consent", c2)
	}
}

func TestImportBadRows(t *testing.T) {
	ctx := t.Context()
	schema := mustSchema(t)
	file := "client_id,age,segment,consent_offers\nC1,41,retail,\nC2,forty,retail,maybe\n,30,x,\nC4,50\nC5,51,ok,\n"
	b, _ := openTemp(t)
	defer b.Close()
	res, err := Import(ctx, opener(file), schema, b, ImportOptions{})
	if err != ErrBadRows {
		t.Fatalf("Import without --skip-bad: %v, want ErrBadRows", err)
	}
	// Every bad column of a row is named, so that it is fixed in one go.
	want := []string{`line 3, column age: "forty" is not a number; column consent_offers: "maybe" is not a boolean (true/false, yes/no, 1/0)`,
		"line 4, column client_id: empty client id", "line 5: wrong number of fields"}
	if len(res.BadRows) != 3 {
		t.Fatalf("bad rows %v, want 3", res.BadRows)
	}
	for i, w := range want {
		if got := res.BadRows[i].String(); got != w {
			t.Errorf("bad row %d = %q, want %q", i, got, w)
		}
	}
	if n, _ := b.CountClients(ctx); n != 0 {
		t.Errorf("%d clients stored from a rejected file, want 0", n)
	}
	res, err = Import(ctx, opener(file), schema, b, ImportOptions{SkipBad: true})
	if err != nil || res.Imported != 2 || res.Bad != 3 || res.Rows != 5 {
		t.Errorf("Import --skip-bad = %+v, %v; want 2 imported, 3 bad of 5", res, err)
	}

	// A column the schema does not declare rejects the file at the header.
	_, err = Import(ctx, opener("client_id,age,shoe_size\nC1,1,44\n"), schema, b, ImportOptions{SkipBad: true})
	if err == nil || !strings.Contains(err.Error(), `line 1, column 3 "shoe_size": not in the schema`) {
		t.Errorf("unknown column: %v", err)
	}
	_, err = Import(ctx, opener("id,age\nC1,1\n"), schema, b, ImportOptions{})
	if err == nil || !strings.Contains(err.Error(), `no "client_id" column`) {
		t.Errorf("no id column: %v", err)
	}
}

func TestImportJSONL(t *testing.T) {
	ctx := t.Context()
	schema := mustSchema(t)
	b, _ := openTemp(t)
	defer b.Close()
	file := `{"client_id":"C1","age":41,"segment":"retail","consent_offers":true,"maturity":"2027-01-15T00:00:00Z"}

{"client_id":"C2","age":"old"}
{"client_id":"C3","segment":7,"colour":"red"}
{not json
{"age":3}
`
	res, err := Import(ctx, opener(file), schema, b, ImportOptions{Format: "jsonl", SkipBad: true})
	if err != nil || res.Imported != 1 || res.Bad != 4 {
		t.Fatalf("Import = %+v, %v; want 1 imported, 4 bad", res, err)
	}
	// A row's bad columns in name order, each time.
	if got := res.BadRows[1].String(); !strings.HasPrefix(got, "line 4, column colour: not in the schema; column segment: ") {
		t.Errorf("bad row 1 = %q, want colour then segment", got)
	}
	for i, want := range []string{"line 3, column age", "line 4, column colour: not in the schema", "line 5: malformed JSON", "line 6, column client_id"} {
		if !strings.HasPrefix(res.BadRows[i].String(), want) {
			t.Errorf("bad row %d = %q, want it to start %q", i, res.BadRows[i], want)
		}
	}
}

func TestReadSchemaErrors(t *testing.T) {
	_, err := ReadSchema(strings.NewReader("features:\n  - {name: a, type: int}\n  - {name: a, type: number}\n  - {name: b, type: bool, default: maybe}\n  - {name: client_id, type: string}\n"))
	if err == nil {
		t.Fatal("bad schema accepted")
	}
	for _, want := range []string{`features[0].type: "int"`, `features[1].name: "a" declared twice`, "features[2].default", "features[3].name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := ReadSchema(strings.NewReader("featurs: []\n")); err == nil {
		t.Error("unknown key accepted")
	}
}

// TestEnumeratedStrings: a string feature with values takes only those,
// in a write (Check) and in an import (Parse), naming the feature and the
// values; values on another type are refused. (An unknown tier was stored
// and the client then treated as standard.)
func TestEnumeratedStrings(t *testing.T) {
	s, err := ReadSchema(strings.NewReader("features:\n  - {name: tier, type: string, values: [platinum, gold, standard]}\n  - {name: note, type: string}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f, _ := s.Field("tier")
	if _, err := f.Parse("bogus"); err == nil || !strings.Contains(err.Error(), `"bogus" is not one of platinum, gold, standard`) {
		t.Errorf("Parse(bogus): %v", err)
	}
	if v, err := f.Parse("gold"); err != nil || v.Str != "gold" {
		t.Errorf("Parse(gold): %v, %v", v, err)
	}
	rec := Record{ClientID: "c", Values: map[string]Value{"tier": String("bogus"), "note": String("anything")}}
	if err := s.Check(&rec); err == nil || !strings.Contains(err.Error(), `feature "tier": "bogus" is not one of`) {
		t.Errorf("Check with tier bogus: %v", err)
	}
	rec.Values["tier"] = String("platinum")
	if err := s.Check(&rec); err != nil {
		t.Errorf("Check with tier platinum: %v", err)
	}
	_, err = ReadSchema(strings.NewReader("features:\n  - {name: n, type: number, values: [a]}\n  - {name: s, type: string, values: [a, a]}\n"))
	if err == nil || !strings.Contains(err.Error(), "features[0].values") || !strings.Contains(err.Error(), "features[1].values[1]") {
		t.Errorf("bad values accepted or not named: %v", err)
	}
}

// TestImportSkipsAByteOrderMark: a CSV or JSON Lines file that starts with
// a UTF-8 byte-order mark (as spreadsheets write it) imports as without.
func TestImportSkipsAByteOrderMark(t *testing.T) {
	b, _ := openTemp(t)
	defer b.Close()
	for format, body := range map[string]string{
		"csv":   "\ufeffclient_id,age\nB1,41\n",
		"jsonl": "\ufeff{\"client_id\": \"B2\", \"age\": 42}\n",
	} {
		res, err := Import(t.Context(), opener(body), mustSchema(t), b, ImportOptions{Format: format})
		if err != nil || res.Imported != 1 {
			t.Errorf("%s with a byte-order mark: %+v, %v", format, res, err)
		}
	}
	for id, age := range map[string]float64{"B1": 41, "B2": 42} {
		if r, err := b.Get(t.Context(), id); err != nil || r.Map()["age"].Num != age {
			t.Errorf("%s = %+v, %v", id, r, err)
		}
	}
}
