package features

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Schema declares the features a bank keeps per client: each name, its
// type and, optionally, the value to store when a row leaves it empty.
// Records are checked against it before they are stored.
//
// The YAML form:
//
//	id_column: client_id        # the column holding the client id
//	features:
//	  - {name: age, type: number}
//	  - {name: segment, type: string}
//	  - {name: consent_offers, type: bool, default: false}
//	  - {name: deposit_maturity, type: time}   # RFC 3339 or YYYY-MM-DD
//	  - {name: tier, type: string, values: [platinum, gold, standard]}
//
// A string feature with values is an enumeration: a write or an import
// with any other value is refused, naming the feature and the values.
type Schema struct {
	IDColumn string  `yaml:"id_column"`
	Fields   []Field `yaml:"features"`
	byName   map[string]int
}

// Field is one declared feature.
type Field struct {
	Name    string  `yaml:"name"`
	Type    string  `yaml:"type"` // number, string, bool or time
	Default *string `yaml:"default"`
	// Values, for a string feature, are the only values it may take
	// (empty: any).
	Values []string `yaml:"values"`
	kind   Kind
	def    *Value
}

// ReadSchema reads and checks a YAML schema, reporting every problem.
func ReadSchema(r io.Reader) (*Schema, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var s Schema
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	if err := s.compile(); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *Schema) compile() error {
	var errs []error
	if s.IDColumn == "" {
		s.IDColumn = "client_id"
	}
	s.byName = make(map[string]int, len(s.Fields))
	for i := range s.Fields {
		f := &s.Fields[i]
		at := fmt.Sprintf("features[%d]", i)
		if f.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name: empty", at))
		} else if _, dup := s.byName[f.Name]; dup {
			errs = append(errs, fmt.Errorf("%s.name: %q declared twice", at, f.Name))
		} else if f.Name == s.IDColumn {
			errs = append(errs, fmt.Errorf("%s.name: %q is the id column", at, f.Name))
		}
		s.byName[f.Name] = i
		switch f.Type {
		case "number":
			f.kind = KindNumber
		case "string":
			f.kind = KindString
		case "bool":
			f.kind = KindBool
		case "time":
			f.kind = KindTime
		default:
			errs = append(errs, fmt.Errorf("%s.type: %q is not number, string, bool or time", at, f.Type))
			continue
		}
		if len(f.Values) > 0 && f.kind != KindString {
			errs = append(errs, fmt.Errorf("%s.values: only a string feature takes a list of values", at))
		}
		for j, v := range f.Values {
			if v == "" || slices.Index(f.Values, v) != j {
				errs = append(errs, fmt.Errorf("%s.values[%d]: %q is empty or listed twice", at, j, v))
			}
		}
		if f.Default != nil {
			v, err := f.Parse(*f.Default)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.default: %w", at, err))
			} else {
				f.def = &v
			}
		}
	}
	if len(s.Fields) == 0 {
		errs = append(errs, errors.New("features: none declared"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("schema: %w", errors.Join(errs...))
	}
	return nil
}

// Field returns the declared feature of a name.
func (s *Schema) Field(name string) (*Field, bool) {
	i, ok := s.byName[name]
	if !ok {
		return nil, false
	}
	return &s.Fields[i], true
}

// Kind returns the feature's kind.
func (f *Field) Kind() Kind { return f.kind }

// Parse reads a text value of the field's type. Booleans are true/false,
// yes/no or 1/0; times are RFC 3339 or YYYY-MM-DD (UTC).
func (f *Field) Parse(text string) (Value, error) {
	switch f.kind {
	case KindNumber:
		x, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return Value{}, fmt.Errorf("%q is not a number", text)
		}
		v := Number(x)
		return v, v.check()
	case KindString:
		v := String(text)
		return v, f.checkValue(v)
	case KindBool:
		switch strings.ToLower(text) {
		case "true", "yes", "1":
			return Bool(true), nil
		case "false", "no", "0":
			return Bool(false), nil
		}
		return Value{}, fmt.Errorf("%q is not a boolean (true/false, yes/no, 1/0)", text)
	case KindTime:
		if t, err := time.Parse(time.RFC3339Nano, text); err == nil {
			return Time(t), nil
		}
		if t, err := time.Parse(time.DateOnly, text); err == nil {
			return Time(t), nil
		}
		return Value{}, fmt.Errorf("%q is not a time (RFC 3339 or YYYY-MM-DD)", text)
	}
	return Value{}, errors.New("undeclared type")
}

// Check reports the first feature of rec that the schema does not declare
// or whose value has another type, naming it; it then fills the declared
// defaults of the features rec lacks.
func (s *Schema) Check(rec *Record) error {
	if rec.packed != "" {
		rec.Values, rec.packed = rec.Map(), ""
	}
	for name, v := range rec.Values {
		f, ok := s.Field(name)
		if !ok {
			return fmt.Errorf("feature %q is not in the schema", name)
		}
		if v.Kind != f.kind {
			return fmt.Errorf("feature %q: %s value, the schema says %s", name, v.Kind, f.Type)
		}
		if err := f.checkValue(v); err != nil {
			return fmt.Errorf("feature %q: %w", name, err)
		}
	}
	for i := range s.Fields {
		f := &s.Fields[i]
		if _, ok := rec.Values[f.Name]; !ok && f.def != nil {
			if rec.Values == nil {
				rec.Values = map[string]Value{}
			}
			rec.Values[f.Name] = *f.def
		}
	}
	return rec.Validate()
}

// checkValue refuses a string outside the field's values.
func (f *Field) checkValue(v Value) error {
	if len(f.Values) == 0 || slices.Contains(f.Values, v.Str) {
		return nil
	}
	return fmt.Errorf("%q is not one of %s", v.Str, strings.Join(f.Values, ", "))
}

func (v Value) check() error {
	if v.Kind == KindNumber && (v.Num != v.Num || v.Num > 1.7976931348623157e308 || v.Num < -1.7976931348623157e308) {
		return errors.New("number is not finite")
	}
	return nil
}
