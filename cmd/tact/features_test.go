package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tact-nba/tact/features"
)

func TestFeaturesImport(t *testing.T) {
	dir := t.TempDir()
	schema := filepath.Join(dir, "schema.yaml")
	if err := os.WriteFile(schema, []byte("features:\n  - {name: balance, type: number}\n  - {name: tier, type: string}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.csv")
	if err := os.WriteFile(good, []byte("client_id;balance;tier\nX1;1200.5;gold\nX2;;\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("client_id,balance\nX3,lots\nX4,7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")

	out := runOK(t, "features", "import", "--data-dir", data, "--schema", schema, "--sep", ";", good)
	if !strings.Contains(out, "imported 2 of 2 rows") {
		t.Errorf("output: %s", out)
	}
	var buf bytes.Buffer
	err := run(t.Context(), []string{"features", "import", "--data-dir", data, "--schema", schema, bad}, &buf, "")
	if !errors.Is(err, features.ErrBadRows) || !strings.Contains(buf.String(), "bad row: line 2, column balance") {
		t.Errorf("bad file: %v\n%s", err, buf.String())
	}
	out = runOK(t, "features", "import", "--data-dir", data, "--schema", schema, "--skip-bad", bad)
	if !strings.Contains(out, "imported 1 of 2 rows") || !strings.Contains(out, "1 bad rows skipped") {
		t.Errorf("--skip-bad output: %s", out)
	}
	st, err := features.OpenBolt(filepath.Join(data, "tact.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, _ := st.CountClients(t.Context()); n != 3 {
		t.Errorf("%d clients stored, want X1, X2, X4", n)
	}
	if r, err := st.Get(t.Context(), "X1"); err != nil || r.Str("tier") != "gold" || r.Map()["balance"].Num != 1200.5 {
		t.Errorf("X1 = %+v, %v", r, err)
	}

	// Through a running tactd's admin API: tactd's schema (the demo's)
	// applies, and the clients are served at once.
	srv := startServer(t)
	demoSchema := filepath.Join(dir, "demo.yaml")
	if err := os.WriteFile(demoSchema, []byte("features:\n  - {name: balance, type: number}\n  - {name: consent_offers, type: bool}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	viaAPI := filepath.Join(dir, "api.csv")
	if err := os.WriteFile(viaAPI, []byte("client_id,balance,consent_offers\nA1,300000,true\nA2,10,false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out = runOK(t, "features", "import", "--addr", srv, "--schema", demoSchema, viaAPI)
	if !strings.Contains(out, "imported 2 of 2 rows") {
		t.Errorf("--addr output: %s", out)
	}
	out = runOK(t, "decide", "--addr", srv, "--client", "A1")
	if !strings.Contains(out, "client tier platinum") {
		t.Errorf("a client imported through the API is not served: %s", out)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"features", "import", "--schema", schema, good}, "one of --data-dir"},
		{[]string{"features", "import", "--data-dir", data, good}, "--schema is required"},
		{[]string{"features", "import", "--data-dir", data, "--schema", schema}, "exactly one FILE"},
		{[]string{"features", "export"}, "tact features import"},
	} {
		var ue *usageError
		if err := run(t.Context(), tt.args, &bytes.Buffer{}, ""); !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want a usage error saying %q", tt.args, err, tt.want)
		}
	}
}

// TestFeaturesImportDetectsFormat: CSV or JSON Lines is told by the
// extension, else by the first character; --format still decides.
func TestFeaturesImportDetectsFormat(t *testing.T) {
	dir := t.TempDir()
	schema := filepath.Join(dir, "schema.yaml")
	if err := os.WriteFile(schema, []byte("features:\n  - {name: balance, type: number}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	jsonl := "{\"client_id\": \"J1\", \"balance\": 5}\n{\"client_id\": \"J2\", \"balance\": 6}\n"
	csv := "client_id,balance\nC1,5\nC2,6\n"
	for _, tt := range []struct {
		file, content string
		args          []string
	}{
		{"a.jsonl", jsonl, nil},
		{"a.ndjson", jsonl, nil},
		{"a.txt", "\ufeff  " + jsonl, nil}, // by content, after a byte-order mark
		{"a.data", csv, nil},
		{"a.csv", csv, nil},
		{"b.txt", jsonl, []string{"--format", "jsonl"}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(dir, tt.file)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"features", "import", "--data-dir", filepath.Join(t.TempDir(), "data"), "--schema", schema}, tt.args...)
			if out := runOK(t, append(args, path)...); !strings.Contains(out, "imported 2 of 2 rows") {
				t.Errorf("output: %s", out)
			}
		})
	}
	var buf bytes.Buffer
	if err := run(t.Context(), []string{"features", "import", "--data-dir", dir, "--schema", schema, "--format", "xml", filepath.Join(dir, "a.csv")}, &buf, ""); err == nil || !strings.Contains(err.Error(), "want csv, jsonl or auto") {
		t.Errorf("--format xml: %v", err)
	}
}
