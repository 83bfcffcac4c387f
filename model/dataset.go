package model

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Dataset is a CSV file held in memory: a header and rows of raw strings.
// Row(i) reads a row as Features: Num parses a number, Cat returns the raw
// text; "" and "NA" are missing.
type Dataset struct {
	Columns []string
	Index   map[string]int
	Rows    [][]string
	// Lines[i] is the file line of Rows[i], for error messages.
	Lines []int
}

// ReadCSV reads a whole CSV file with a header row. sep is the field
// separator. A row with the wrong number of fields is an error naming its
// line.
func ReadCSV(r io.Reader, sep rune) (*Dataset, error) {
	cr := NewCSVReader(r, sep)
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("csv: empty file: want a header row")
		}
		return nil, fmt.Errorf("csv: header: %w", err)
	}
	d, err := newDataset(header)
	if err != nil {
		return nil, err
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		d.Rows = append(d.Rows, rec)
		d.Lines = append(d.Lines, line)
	}
	return d, nil
}

// NewCSVReader returns a csv.Reader for sep that trims leading spaces and
// insists on a constant number of fields.
func NewCSVReader(r io.Reader, sep rune) *csv.Reader {
	cr := csv.NewReader(r)
	cr.Comma = sep
	cr.FieldsPerRecord = 0
	cr.TrimLeadingSpace = true
	return cr
}

func newDataset(header []string) (*Dataset, error) {
	d := &Dataset{Columns: header, Index: make(map[string]int, len(header))}
	for i, c := range header {
		c = strings.TrimSpace(c)
		if c == "" {
			return nil, fmt.Errorf("csv: header column %d is empty", i+1)
		}
		if _, dup := d.Index[c]; dup {
			return nil, fmt.Errorf("csv: header column %q appears twice", c)
		}
		d.Columns[i] = c
		d.Index[c] = i
	}
	return d, nil
}

// Row returns row i as Features.
func (d *Dataset) Row(i int) Features { return CSVRow{Index: d.Index, Values: d.Rows[i]} }

// Subset returns the dataset's rows at idx (sharing the rows).
func (d *Dataset) Subset(idx []int) *Dataset {
	s := &Dataset{Columns: d.Columns, Index: d.Index, Rows: make([][]string, len(idx)), Lines: make([]int, len(idx))}
	for k, i := range idx {
		s.Rows[k], s.Lines[k] = d.Rows[i], d.Lines[i]
	}
	return s
}

// CSVRow is one CSV record read through a header index.
type CSVRow struct {
	Index  map[string]int
	Values []string
}

func missing(v string) bool { return v == "" || v == "NA" }

// Num parses the named column as a number.
func (r CSVRow) Num(name string) (float64, bool) {
	i, ok := r.Index[name]
	if !ok || missing(r.Values[i]) {
		return 0, false
	}
	x, err := strconv.ParseFloat(r.Values[i], 64)
	return x, err == nil
}

// Cat returns the named column's text.
func (r CSVRow) Cat(name string) (string, bool) {
	i, ok := r.Index[name]
	if !ok || missing(r.Values[i]) {
		return "", false
	}
	return r.Values[i], true
}

// InferInputs proposes an input per column not in skip: numeric when every
// present value parses as a number, categorical otherwise. Columns in
// log1p get that transform.
func (d *Dataset) InferInputs(skip, log1p []string) ([]Input, error) {
	var out []Input
	for _, c := range d.Columns {
		if slices.Contains(skip, c) {
			continue
		}
		j := d.Index[c]
		numeric, present := true, 0
		for _, r := range d.Rows {
			if missing(r[j]) {
				continue
			}
			present++
			if _, err := strconv.ParseFloat(r[j], 64); err != nil {
				numeric = false
				break
			}
		}
		in := Input{Name: c, Kind: Categorical}
		if numeric && present > 0 {
			in.Kind = Numeric
			if slices.Contains(log1p, c) {
				in.Transform = TransformLog1p
			}
		} else if slices.Contains(log1p, c) {
			return nil, fmt.Errorf("--log1p %s: the column is not numeric", c)
		}
		out = append(out, in)
	}
	for _, c := range slices.Concat(skip, log1p) {
		if _, ok := d.Index[c]; !ok {
			return nil, fmt.Errorf("no column %q (columns: %s)", c, strings.Join(d.Columns, ", "))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no input columns left")
	}
	return out, nil
}

// Labels reads the label column as booleans: true where the value equals
// positive. An empty positive is guessed from the values when they are
// {0,1}, {no,yes} or {false,true}; otherwise it is an error listing them.
// A missing label is an error naming the line.
func (d *Dataset) Labels(col, positive string) ([]bool, string, error) {
	j, ok := d.Index[col]
	if !ok {
		return nil, "", fmt.Errorf("--label %s: no such column (columns: %s)", col, strings.Join(d.Columns, ", "))
	}
	values := map[string]bool{}
	for i, r := range d.Rows {
		if missing(r[j]) {
			return nil, "", fmt.Errorf("line %d, column %s: missing label", d.Lines[i], col)
		}
		values[r[j]] = true
	}
	if positive == "" {
		for _, pair := range [][2]string{{"0", "1"}, {"no", "yes"}, {"false", "true"}} {
			if len(values) <= 2 && (values[pair[1]] || values[pair[0]]) {
				onlyPair := true
				for v := range values {
					onlyPair = onlyPair && (v == pair[0] || v == pair[1])
				}
				if onlyPair {
					positive = pair[1]
				}
			}
		}
		if positive == "" {
			vs := make([]string, 0, len(values))
			for v := range values {
				vs = append(vs, v)
			}
			slices.Sort(vs)
			if len(vs) > 10 {
				vs = append(vs[:10], "...")
			}
			return nil, "", fmt.Errorf("--positive: cannot guess the positive value of %s from %s", col, strings.Join(vs, ", "))
		}
	} else if !values[positive] {
		return nil, "", fmt.Errorf("--positive %s: no row of %s has that value", positive, col)
	}
	out := make([]bool, len(d.Rows))
	for i, r := range d.Rows {
		out[i] = r[j] == positive
	}
	return out, positive, nil
}
