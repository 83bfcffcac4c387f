package features

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// csvRows reads CSV rows against a schema.
type csvRows struct {
	r      *csv.Reader
	schema *Schema
	idCol  int
	fields []*Field // per column; nil for the id column
	names  []string
}

func newCSVRows(r io.Reader, sep rune, schema *Schema) (*csvRows, error) {
	cr := csv.NewReader(r)
	cr.Comma = sep
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("line 1: empty file: want a header row")
		}
		return nil, fmt.Errorf("line 1: %w", err)
	}
	c := &csvRows{r: cr, schema: schema, idCol: -1, names: make([]string, len(header))}
	c.fields = make([]*Field, len(header))
	var errs []error
	for i, h := range header {
		h = strings.TrimSpace(h)
		c.names[i] = h
		if h == schema.IDColumn {
			c.idCol = i
			continue
		}
		f, ok := schema.Field(h)
		if !ok {
			errs = append(errs, fmt.Errorf("line 1, column %d %q: not in the schema", i+1, h))
		}
		c.fields[i] = f
	}
	if c.idCol < 0 {
		errs = append(errs, fmt.Errorf("line 1: no %q column (the schema's id_column)", schema.IDColumn))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

func (c *csvRows) next() (Record, *BadRow, error) {
	row, err := c.r.Read()
	if errors.Is(err, io.EOF) {
		return Record{}, nil, io.EOF
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			// A malformed row is a bad row; the reader goes on after it.
			return Record{}, &BadRow{Line: pe.Line, Msg: pe.Err.Error()}, nil
		}
		return Record{}, nil, err
	}
	line, _ := c.r.FieldPos(0)
	id := strings.TrimSpace(row[c.idCol])
	if id == "" {
		return Record{}, &BadRow{Line: line, Column: c.names[c.idCol], Msg: "empty client id"}, nil
	}
	rec := Record{ClientID: id, Values: make(map[string]Value, len(row))}
	var bad *BadRow
	for i, text := range row {
		f := c.fields[i]
		if f == nil || text == "" {
			continue
		}
		v, err := f.Parse(text)
		if err != nil {
			bad = badColumn(bad, line, c.names[i], err.Error())
			continue
		}
		rec.Values[f.Name] = v
	}
	if bad != nil {
		return Record{}, bad, nil
	}
	return rec, nil, nil
}

// jsonlRows reads one JSON object a line.
type jsonlRows struct {
	s      *bufio.Scanner
	schema *Schema
	line   int
}

func newJSONLRows(r io.Reader, schema *Schema) *jsonlRows {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 16<<20)
	return &jsonlRows{s: s, schema: schema}
}

func (j *jsonlRows) next() (Record, *BadRow, error) {
	for j.s.Scan() {
		j.line++
		b := j.s.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(b, &obj); err != nil {
			return Record{}, &BadRow{Line: j.line, Msg: "malformed JSON: " + err.Error()}, nil
		}
		var id string
		if raw, ok := obj[j.schema.IDColumn]; !ok || json.Unmarshal(raw, &id) != nil || id == "" {
			return Record{}, &BadRow{Line: j.line, Column: j.schema.IDColumn, Msg: "missing or not a non-empty string"}, nil
		}
		rec := Record{ClientID: id, Values: make(map[string]Value, len(obj))}
		var bads [][2]string // column, why: reported in column order, the same each time
		for name, raw := range obj {
			if name == j.schema.IDColumn || string(raw) == "null" {
				continue
			}
			f, ok := j.schema.Field(name)
			if !ok {
				bads = append(bads, [2]string{name, "not in the schema"})
				continue
			}
			v, err := jsonValue(f, raw)
			if err != nil {
				bads = append(bads, [2]string{name, err.Error()})
				continue
			}
			rec.Values[name] = v
		}
		if bads == nil {
			return rec, nil, nil
		}
		slices.SortFunc(bads, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
		var bad *BadRow
		for _, b := range bads {
			bad = badColumn(bad, j.line, b[0], b[1])
		}
		return Record{}, bad, nil
	}
	if err := j.s.Err(); err != nil {
		return Record{}, nil, fmt.Errorf("line %d: %w", j.line+1, err)
	}
	return Record{}, nil, io.EOF
}

func jsonValue(f *Field, raw json.RawMessage) (Value, error) {
	switch f.kind {
	case KindNumber:
		var x float64
		if err := json.Unmarshal(raw, &x); err != nil {
			return Value{}, fmt.Errorf("%s is not a number", raw)
		}
		return Number(x), nil
	case KindBool:
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return Value{}, fmt.Errorf("%s is not a boolean", raw)
		}
		return Bool(b), nil
	default: // string and time come as JSON strings
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Value{}, fmt.Errorf("%s is not a string", raw)
		}
		return f.Parse(s)
	}
}
