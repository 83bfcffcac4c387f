package server

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlainJSONFeatures: a web app writes features as plain JSON values,
// typed by the schema (one of each type, mixed with the typed form), reads
// them back and gets a decision made on them; a value of the wrong JSON
// type is 400 naming the feature, in a single write and in a batch.
func TestPlainJSONFeatures(t *testing.T) {
	demoSchema, err := os.ReadFile("../model/demo/schema.yaml")
	if err != nil {
		t.Fatal(err)
	}
	schemaPath := filepath.Join(t.TempDir(), "schema.yaml")
	schema := strings.TrimRight(string(demoSchema), "\n") + "\n  - {name: deposit_matures, type: time}\n"
	if err := os.WriteFile(schemaPath, []byte(schema), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Deps{}, func(c *Config, _ *io.Writer) { c.FeatureSchema = schemaPath })
	do := func(method, path, body string) (int, string) { t.Helper(); return ts.rest(t, method, path, body) }

	code, body := do(http.MethodPut, "/v1/clients/P00001/features", `{"features": {"age": 47, "tier": "platinum", "consent_offers": true,
		"deposit_matures": "2027-01-15", "balance": {"number": 8880}, "income_monthly": 3200.5}}`)
	if code != http.StatusOK {
		t.Fatalf("PUT plain features: %d %s", code, body)
	}
	code, body = do(http.MethodGet, "/v1/clients/P00001/features", "")
	var got struct {
		Client struct {
			Features map[string]map[string]any `json:"features"`
		} `json:"client"`
	}
	if err := json.Unmarshal([]byte(body), &got); code != http.StatusOK || err != nil {
		t.Fatalf("GET features: %d %s (%v)", code, body, err)
	}
	f := got.Client.Features
	for name, want := range map[string][2]any{
		"age": {"number", 47.0}, "tier": {"string", "platinum"}, "consent_offers": {"bool", true},
		"deposit_matures": {"time", "2027-01-15T00:00:00Z"}, "balance": {"number", 8880.0}, "income_monthly": {"number", 3200.5},
	} {
		if v := f[name][want[0].(string)]; v != want[1] {
			t.Errorf("read back %s = %v, want %s %v", name, f[name], want[0], want[1])
		}
	}
	code, body = do(http.MethodPost, "/v1/decisions", `{"client_id": "P00001", "channel": "CHANNEL_WEB"}`)
	if code != http.StatusOK || !strings.Contains(body, `"tier":"platinum"`) {
		t.Errorf("a decision on the plain features: %d %s, want tier platinum", code, body)
	}
	code, body = do(http.MethodPost, "/v1/clients:batchPutFeatures", `{"clients": [{"client_id": "P00002", "features": {"age": 30, "tier": "gold"}}]}`)
	if code != http.StatusOK {
		t.Errorf("batch of plain features: %d %s", code, body)
	}

	for _, tt := range []struct {
		name, path, body, want string
	}{
		{"number as a string", "/v1/clients/P00003/features", `{"features": {"age": "47"}}`, `features.age: \"47\" is a JSON string; the schema says number`},
		{"string as a number", "/v1/clients/P00003/features", `{"features": {"tier": 3}}`, `features.tier: 3 is a JSON number; the schema says string`},
		{"bool as a string", "/v1/clients/P00003/features", `{"features": {"consent_offers": "yes"}}`, `features.consent_offers: \"yes\" is a JSON string; the schema says bool`},
		{"time as a number", "/v1/clients/P00003/features", `{"features": {"deposit_matures": 20270115}}`, `features.deposit_matures: 20270115 is a JSON number; the schema says time`},
		{"time that is not one", "/v1/clients/P00003/features", `{"features": {"deposit_matures": "next week"}}`, `features.deposit_matures: \"next week\" is not a time`},
		{"null", "/v1/clients/P00003/features", `{"features": {"age": null}}`, `features.age: null is a JSON null`},
		{"enumeration", "/v1/clients/P00003/features", `{"features": {"tier": "bogus"}}`, `\"bogus\" is not one of platinum, gold, silver, standard`},
		{"not in the schema", "/v1/clients/P00003/features", `{"features": {"shoe_size": 44}}`, `features.shoe_size: not in the feature schema`},
		{"in a batch", "/v1/clients:batchPutFeatures", `{"clients": [{"client_id": "P00004", "features": {"age": 1}}, {"client_id": "P00005", "features": {"age": true}}]}`, `clients[1].features.age: true is a JSON boolean; the schema says number`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			method := http.MethodPut
			if strings.Contains(tt.path, "batch") {
				method = http.MethodPost
			}
			code, body := do(method, tt.path, tt.body)
			if code != http.StatusBadRequest || !strings.Contains(body, tt.want) {
				t.Errorf("%d %s; want 400 with %s", code, body, tt.want)
			}
		})
	}
	if code, _ := do(http.MethodGet, "/v1/clients/P00004/features", ""); code != http.StatusNotFound {
		t.Errorf("the good client of a refused batch was stored: GET %d", code)
	}
}
