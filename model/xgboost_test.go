package model

import (
	"bytes"
	"math"
	"os"
	"strings"
	"testing"
)

func readXGB(t testing.TB, path string) *XGBoost {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := ReadXGBoost(f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestXGBoostParity compares Score with XGBoost's own predict_proba on the
// fixture rows (made by testdata/make_xgboost_fixtures.py), missing values
// included.
func TestXGBoostParity(t *testing.T) {
	m := readXGB(t, "testdata/xgb_bank.json")
	if m.Trees != 50 || len(m.Features) != 9 {
		t.Fatalf("read %d trees, %d features; want 50 and 9", m.Trees, len(m.Features))
	}
	f, err := os.Open("testdata/xgb_bank_rows.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ds, err := ReadCSV(f, ',')
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Rows) != 500 {
		t.Fatalf("%d fixture rows, want 500", len(ds.Rows))
	}
	var worst float64
	missing := 0
	for i := range ds.Rows {
		r := ds.Row(i)
		want, ok := r.Num("want")
		if !ok {
			t.Fatalf("row %d has no want", i)
		}
		for _, name := range m.Features {
			if _, ok := r.Num(name); !ok {
				missing++
			}
		}
		got := m.Score(r)
		if d := math.Abs(got - want); d > worst {
			worst = d
		}
		if math.Abs(got-want) > 1e-6 {
			t.Errorf("row %d (line %d): score %.9f, XGBoost %.9f", i, ds.Lines[i], got, want)
		}
	}
	if missing == 0 {
		t.Error("the fixture rows have no missing values")
	}
	t.Logf("largest difference from XGBoost over %d rows (%d missing values): %.3g", len(ds.Rows), missing, worst)
}

func TestXGBoostRejects(t *testing.T) {
	good, err := os.ReadFile("testdata/xgb_bank.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, from, to, want string
	}{
		{"objective", `"binary:logistic"`, `"reg:squarederror"`, "objective"},
		{"categorical split", `"split_type":[0,`, `"split_type":[1,`, "categorical"},
		{"base score", `"base_score":"2E-1"`, `"base_score":"2E0"`, "base_score"},
		{"truncated", `"trees":[`, `"trees":`, "decode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Contains(good, []byte(tt.from)) {
				t.Fatalf("fixture lacks %s", tt.from)
			}
			bad := bytes.Replace(good, []byte(tt.from), []byte(tt.to), 1)
			if _, err := ReadXGBoost(bytes.NewReader(bad)); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one about %s", err, tt.want)
			}
		})
	}
}

func TestXGBoostScoreDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("under -race sync.Pool drops items at random; the plain run counts allocations")
	}
	m := readXGB(t, "testdata/xgb_bank.json")
	r := row{"age": 40.0, "campaign": 2.0, "euribor3m": 1.3}
	m.Score(r)
	if a := testing.AllocsPerRun(200, func() { m.Score(r) }); a != 0 {
		t.Errorf("Score allocates %v times", a)
	}
}
