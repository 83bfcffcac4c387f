package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/tact-nba/tact/features"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// Plain JSON features over REST. A web app may write a client's features
// as plain JSON values, {"age": 47, "tier": "platinum", "deposit_matures":
// "2027-01-15"}, typed by the feature schema, instead of the API's typed
// form {"age": {"number": 47}}; both may be mixed in one request. A value
// whose JSON type is not the schema's (a string for a number, a number
// for a time) is refused naming the feature, as is a plain value for a
// feature the schema does not declare (its type cannot be known).

// typeFeatures rewrites the plain values of a features object (the raw
// JSON of the "features" field) into the typed form, for protojson.
func typeFeatures(schema *features.Schema, at string, raw json.RawMessage) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return raw, nil // not an object: protojson says what is wrong
	}
	var in map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &in); err != nil {
		return raw, nil //nolint:nilerr // protojson reports it, in its words
	}
	names := make([]string, 0, len(in))
	for name := range in {
		names = append(names, name)
	}
	sort.Strings(names) // the first problem in a stable order
	out := make(map[string]json.RawMessage, len(in))
	for _, name := range names {
		v := bytes.TrimSpace(in[name])
		if len(v) > 0 && v[0] == '{' {
			out[name] = v // the typed form
			continue
		}
		typed, err := typeValue(schema, name, v)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", at, name, err)
		}
		out[name] = typed
	}
	return json.Marshal(out)
}

// typeValue turns one plain JSON value into its typed form.
func typeValue(schema *features.Schema, name string, v json.RawMessage) (json.RawMessage, error) {
	f, ok := schema.Field(name)
	if !ok {
		return nil, fmt.Errorf("not in the feature schema (a plain value needs the schema's type; send the typed form, e.g. {\"number\": 1})")
	}
	got := jsonType(v)
	want := map[features.Kind]string{features.KindNumber: "number", features.KindString: "string", features.KindBool: "boolean", features.KindTime: "string"}[f.Kind()]
	if got != want {
		wantWords := f.Type
		if f.Kind() == features.KindTime {
			wantWords = `time (a string, RFC 3339 or YYYY-MM-DD)`
		}
		return nil, fmt.Errorf("%s is a JSON %s; the schema says %s", v, got, wantWords)
	}
	switch f.Kind() {
	case features.KindNumber:
		return json.Marshal(map[string]json.RawMessage{"number": v})
	case features.KindString:
		return json.Marshal(map[string]json.RawMessage{"string": v})
	case features.KindBool:
		return json.Marshal(map[string]json.RawMessage{"bool": v})
	default:
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, err
		}
		val, err := f.Parse(s)
		if err != nil {
			return nil, err
		}
		return json.Marshal(map[string]string{"time": val.Time.UTC().Format(time.RFC3339Nano)})
	}
}

// jsonType names a JSON value's type.
func jsonType(v json.RawMessage) string {
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case '[':
		return "array"
	case '{':
		return "object"
	default:
		return "number"
	}
}

// decodeFeatures decodes a feature write (one client's, or a batch's)
// whose feature values may be plain JSON.
func (m gatewayMarshaler) decodeFeatures(r io.Reader, v any) error {
	body, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	var top map[string]json.RawMessage
	if m.schema != nil && json.Unmarshal(body, &top) == nil {
		if err := m.typeRequest(top, v); err != nil {
			return err // the gateway answers 400 (INVALID_ARGUMENT) with it
		}
		if body, err = json.Marshal(top); err != nil {
			return err
		}
	}
	return m.JSONPb.NewDecoder(bytes.NewReader(body)).Decode(v)
}

// typeRequest rewrites the features of a request's top-level fields.
func (m gatewayMarshaler) typeRequest(top map[string]json.RawMessage, v any) error {
	if _, batch := v.(*tactv1.BatchPutClientFeaturesRequest); !batch {
		if raw, ok := top["features"]; ok {
			typed, err := typeFeatures(m.schema, "features", raw)
			if err != nil {
				return err
			}
			top["features"] = typed
		}
		return nil
	}
	var clients []map[string]json.RawMessage
	if raw, ok := top["clients"]; !ok || json.Unmarshal(raw, &clients) != nil {
		return nil // not a list of objects: protojson says what is wrong
	}
	for i, c := range clients {
		if raw, ok := c["features"]; ok {
			typed, err := typeFeatures(m.schema, fmt.Sprintf("clients[%d].features", i), raw)
			if err != nil {
				return err
			}
			c["features"] = typed
		}
	}
	b, err := json.Marshal(clients)
	if err != nil {
		return err
	}
	top["clients"] = b
	return nil
}
