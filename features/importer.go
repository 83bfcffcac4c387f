package features

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// ImportOptions control Import.
type ImportOptions struct {
	// Format is "csv" (default) or "jsonl" (one JSON object a line, keyed
	// like the CSV header).
	Format string
	// Sep is the CSV field separator (default ',').
	Sep rune
	// SkipBad stores the good rows and counts the bad ones; without it a
	// file with any bad row is rejected whole and nothing is stored.
	SkipBad bool
	// BatchSize is how many records go to the store per write (5,000).
	BatchSize int
	// MaxListed is how many bad rows are listed in the result (100); all
	// are counted.
	MaxListed int
	// Progress, when set, is called after each batch with the rows read.
	Progress func(rows int64)
}

// BadRow is a row that cannot be imported, with the file line and column.
type BadRow struct {
	Line   int
	Column string
	Msg    string
	// More are the row's other bad columns, each "column NAME: why", so
	// that a row is fixed in one go.
	More []string
}

func (b BadRow) String() string {
	s := fmt.Sprintf("line %d: %s", b.Line, b.Msg)
	if b.Column != "" {
		s = fmt.Sprintf("line %d, column %s: %s", b.Line, b.Column, b.Msg)
	}
	for _, m := range b.More {
		s += "; " + m
	}
	return s
}

// badColumn adds a bad column to the row's report (bad is nil until the
// first).
func badColumn(bad *BadRow, line int, column, msg string) *BadRow {
	if bad == nil {
		return &BadRow{Line: line, Column: column, Msg: msg}
	}
	bad.More = append(bad.More, "column "+column+": "+msg)
	return bad
}

// ImportResult counts what an import did.
type ImportResult struct {
	Rows     int64    // data rows read
	Imported int64    // records stored
	Bad      int64    // rows rejected
	BadRows  []BadRow // the first MaxListed of them
}

// ErrBadRows is returned when rows are bad and SkipBad is off; nothing was
// stored.
var ErrBadRows = errors.New("the file has bad rows; nothing was imported (use --skip-bad to import the good rows)")

// Sink stores batches of records.
type Sink interface {
	PutBatch(ctx context.Context, recs []Record) error
}

// Import streams a file of client features into sink, checking every row
// against the schema. open is called once per pass: without SkipBad the
// file is read twice, first to check every row (so that a bad file stores
// nothing), then to store; memory stays bounded by one batch. Running an
// import twice gives the same store (records are upserted whole).
func Import(ctx context.Context, open func() (io.ReadCloser, error), schema *Schema, sink Sink, opt ImportOptions) (ImportResult, error) {
	if opt.BatchSize <= 0 {
		opt.BatchSize = 5000
	}
	if opt.MaxListed <= 0 {
		opt.MaxListed = 100
	}
	if opt.Sep == 0 {
		opt.Sep = ','
	}
	if !opt.SkipBad {
		res, err := importPass(ctx, open, schema, nil, opt)
		if err != nil {
			return res, err
		}
		if res.Bad > 0 {
			return res, ErrBadRows
		}
	}
	return importPass(ctx, open, schema, sink, opt)
}

// rowReader yields records one at a time.
type rowReader interface {
	// next returns the next record, a bad row, or io.EOF.
	next() (Record, *BadRow, error)
}

func importPass(ctx context.Context, open func() (io.ReadCloser, error), schema *Schema, sink Sink, opt ImportOptions) (ImportResult, error) {
	var res ImportResult
	f, err := open()
	if err != nil {
		return res, err
	}
	defer f.Close()
	// A UTF-8 byte-order mark (spreadsheets write one) is not data.
	br := bufio.NewReaderSize(f, 1<<20)
	if bom, err := br.Peek(3); err == nil && string(bom) == "\ufeff" {
		_, _ = br.Discard(3) // peeked: cannot fail
	}
	var rr rowReader
	switch opt.Format {
	case "", "csv":
		rr, err = newCSVRows(br, opt.Sep, schema)
	case "jsonl":
		rr = newJSONLRows(br, schema)
	default:
		return res, fmt.Errorf("format %q: want csv or jsonl", opt.Format)
	}
	if err != nil {
		return res, err
	}
	now := time.Now().UTC()
	batch := make([]Record, 0, opt.BatchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if sink != nil {
			if err := sink.PutBatch(ctx, batch); err != nil {
				return fmt.Errorf("store: %w", err)
			}
			res.Imported += int64(len(batch))
		}
		batch = batch[:0]
		if opt.Progress != nil {
			opt.Progress(res.Rows)
		}
		return ctx.Err()
	}
	for {
		rec, bad, err := rr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, err
		}
		res.Rows++
		if bad == nil {
			if cerr := schema.Check(&rec); cerr != nil {
				bad = &BadRow{Msg: cerr.Error()}
			}
		}
		if bad != nil {
			res.Bad++
			if len(res.BadRows) < opt.MaxListed {
				res.BadRows = append(res.BadRows, *bad)
			}
			continue
		}
		if rec.UpdatedAt.IsZero() {
			rec.UpdatedAt = now
		}
		batch = append(batch, rec)
		if len(batch) == opt.BatchSize {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	return res, flush()
}
