package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/tact-nba/tact/model"
)

// dataFlags are the flags of the commands that read a CSV file.
type dataFlags struct {
	data string
	sep  string
}

func (d *dataFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&d.data, "data", "", "CSV file with a header row (required)")
	fs.StringVar(&d.sep, "sep", ",", "field separator, one character (';' for the UCI bank data)")
}

func (d *dataFlags) comma() (rune, error) { return parseSep(d.sep) }

// parseSep reads a --sep flag: one character that can separate CSV fields.
func parseSep(sep string) (rune, error) {
	r, n := utf8.DecodeRuneInString(sep)
	if n == 0 || n != len(sep) || r == '"' || r == '\n' || r == '\r' {
		return 0, &usageError{fmt.Sprintf("--sep %q: want one character (not a quote or line break)", sep)}
	}
	return r, nil
}

// read loads the CSV file and returns it with its sha256 fingerprint.
func (d *dataFlags) read() (*model.Dataset, string, error) {
	if d.data == "" {
		return nil, "", &usageError{"--data is required"}
	}
	sep, err := d.comma()
	if err != nil {
		return nil, "", err
	}
	f, err := os.Open(d.data)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	h := sha256.New()
	ds, err := model.ReadCSV(io.TeeReader(bufio.NewReaderSize(f, 1<<20), h), sep)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", d.data, err)
	}
	if len(ds.Rows) == 0 {
		return nil, "", fmt.Errorf("%s: no data rows", d.data)
	}
	return ds, "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func train(_ context.Context, args []string, out io.Writer) error {
	fs := pflag.NewFlagSet("tact train", pflag.ContinueOnError)
	var d dataFlags
	d.register(fs)
	label := fs.String("label", "", "label column (required)")
	positive := fs.String("positive", "", "label value that counts as positive (guessed for 0/1, no/yes, false/true)")
	drop := fs.String("drop", "", "columns to leave out, comma-separated")
	log1p := fs.String("log1p", "", "numeric columns to take log1p of before standardising, comma-separated")
	var buckets, missing []string
	fs.StringArrayVar(&buckets, "bucketize", nil, "COL=E1:E2:... one-hot encodes a numeric column into buckets at ascending edges (repeatable)")
	fs.StringArrayVar(&missing, "missing", nil, "COL=VALUE scores a missing numeric value as VALUE instead of the mean (repeatable)")
	l2 := fs.Float64("l2", 1e-4, "L2 penalty per row (1/rows matches scikit-learn's C=1)")
	holdout := fs.Float64("holdout-tail", 0, "train on the first 1-x of rows, report metrics on the last x (a forward-in-time split)")
	cv := fs.Int("cv", 0, "also report K-fold cross-validated metrics on shuffled rows (K >= 2)")
	seed := fs.Uint64("seed", 1, "seed of the --cv shuffle")
	maxCats := fs.Int("max-categories", 100, "most frequent values kept per categorical column")
	outPath := fs.String("out", "", "model file to write (required)")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	switch {
	case *label == "":
		return &usageError{"--label is required"}
	case *outPath == "":
		return &usageError{"--out is required"}
	case *holdout < 0 || *holdout >= 1:
		return &usageError{fmt.Sprintf("--holdout-tail %v: want 0 <= x < 1", *holdout)}
	case *cv == 1 || *cv < 0:
		return &usageError{fmt.Sprintf("--cv %d: want 0 or at least 2", *cv)}
	case *l2 < 0:
		return &usageError{fmt.Sprintf("--l2 %v: want >= 0", *l2)}
	}
	ds, fingerprint, err := d.read()
	if err != nil {
		return err
	}
	labels, pos, err := ds.Labels(*label, *positive)
	if err != nil {
		return err
	}
	specs, err := ds.InferInputs(append(splitList(*drop), *label), splitList(*log1p))
	if err != nil {
		return err
	}
	if err := applyInputFlags(specs, buckets, missing); err != nil {
		return err
	}
	opt := model.TrainOptions{L2: *l2, MaxCategories: *maxCats}
	fmt.Fprintf(out, "data: %s, %d rows, %d inputs, label %s = %q (%.2f%% positive)\n", d.data, len(ds.Rows), len(specs), *label, pos, 100*share(labels))

	if *cv >= 2 {
		prog := newProgress("folds")
		aucs, err := crossValidate(ds, labels, specs, opt, *cv, *seed, prog.step)
		prog.done()
		if err != nil {
			return err
		}
		var mean float64
		for _, a := range aucs {
			mean += a
		}
		mean /= float64(len(aucs))
		fmt.Fprintf(out, "%d-fold cross-validation (shuffled, seed %d): ROC AUC %.4f (folds %s)\n", *cv, *seed, mean, fmtList(aucs))
	}

	n := len(ds.Rows)
	cut := n - int(float64(n)**holdout)
	trainIdx := seq(0, cut)
	m, err := fit(ds.Subset(trainIdx), pick(labels, trainIdx), specs, opt)
	if err != nil {
		return err
	}
	m.Meta.Label, m.Meta.Positive, m.Meta.DataFingerprint = *label, pos, fingerprint
	if m.Meta.TrainedAt, err = trainedAt(); err != nil {
		return err
	}
	if cut < n {
		testIdx := seq(cut, n)
		e, err := evaluate(m, ds.Subset(testIdx), pick(labels, testIdx), 0)
		if err != nil {
			return fmt.Errorf("holdout: %w", err)
		}
		m.Meta.Metrics = map[string]float64{"roc_auc": e.ROCAUC, "pr_auc": e.PRAUC, "log_loss": e.LogLoss, "brier": e.Brier}
		fmt.Fprintf(out, "trained on rows 1-%d, holdout rows %d-%d (last %.0f%%):\n", cut, cut+1, n, 100**holdout)
		printEvaluation(out, e, false)
	} else {
		fmt.Fprintf(out, "trained on all %d rows (no holdout)\n", n)
	}
	if err := writeModel(*outPath, m); err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s (%d encoded columns)\n", *outPath, m.Width())
	return nil
}

func fit(ds *model.Dataset, labels []bool, specs []model.Input, opt model.TrainOptions) (*model.Logistic, error) {
	rows := make([]model.Features, len(ds.Rows))
	for i := range rows {
		rows[i] = ds.Row(i)
	}
	return model.Train(specs, rows, labels, opt)
}

func evaluate(m *model.Logistic, ds *model.Dataset, labels []bool, top int) (model.Evaluation, error) {
	scores := make([]float64, len(ds.Rows))
	for i := range scores {
		scores[i] = m.Score(ds.Row(i))
	}
	return model.Evaluate(scores, labels, top)
}

func crossValidate(ds *model.Dataset, labels []bool, specs []model.Input, opt model.TrainOptions, k int, seed uint64, stepDone func(done, of int)) ([]float64, error) {
	n := len(ds.Rows)
	if n < k {
		return nil, fmt.Errorf("--cv %d: only %d rows", k, n)
	}
	perm := rand.New(rand.NewPCG(seed, seed)).Perm(n)
	aucs := make([]float64, k)
	for f := range k {
		var tr, te []int
		for i, r := range perm {
			if i%k == f {
				te = append(te, r)
			} else {
				tr = append(tr, r)
			}
		}
		m, err := fit(ds.Subset(tr), pick(labels, tr), specs, opt)
		if err != nil {
			return nil, fmt.Errorf("fold %d: %w", f+1, err)
		}
		e, err := evaluate(m, ds.Subset(te), pick(labels, te), 0)
		if err != nil {
			return nil, fmt.Errorf("fold %d: %w", f+1, err)
		}
		aucs[f] = e.ROCAUC
		stepDone(f+1, k)
	}
	return aucs, nil
}

func writeModel(path string, m *model.Logistic) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := m.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readModel(path string) (*model.Logistic, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := model.ReadLogistic(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

func eval(_ context.Context, args []string, out io.Writer) error {
	fs := pflag.NewFlagSet("tact eval", pflag.ContinueOnError)
	var d dataFlags
	d.register(fs)
	modelPath := fs.String("model", "", "model file (required)")
	label := fs.String("label", "", "label column (required)")
	positive := fs.String("positive", "", "label value that counts as positive")
	top := fs.Int("top", 0, "report hits among the k best-scored rows (default 10% of rows)")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if *modelPath == "" || *label == "" {
		return &usageError{"--model and --label are required"}
	}
	m, err := readModel(*modelPath)
	if err != nil {
		return err
	}
	ds, _, err := d.read()
	if err != nil {
		return err
	}
	pos := *positive
	if pos == "" {
		pos = m.Meta.Positive
	}
	labels, _, err := ds.Labels(*label, pos)
	if err != nil {
		return err
	}
	e, err := evaluate(m, ds, labels, *top)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "model %s on %s: %d rows, %d positive\n", *modelPath, d.data, e.N, e.Positives)
	printEvaluation(out, e, true)
	return nil
}

func printEvaluation(out io.Writer, e model.Evaluation, tables bool) {
	fmt.Fprintf(out, "  ROC AUC %.4f  PR AUC %.4f  log loss %.4f  Brier %.4f  top %d hits %d (%.1f%%)\n",
		e.ROCAUC, e.PRAUC, e.LogLoss, e.Brier, e.TopK, e.TopKHits, 100*float64(e.TopKHits)/float64(e.TopK))
	if !tables {
		return
	}
	fmt.Fprintln(out, "\nLift by decile (best scores first):")
	fmt.Fprintf(out, "  %-7s %7s %10s %9s %6s\n", "decile", "rows", "mean score", "positive", "lift")
	for i, g := range e.Deciles {
		fmt.Fprintf(out, "  %-7d %7d %10.4f %8.2f%% %6.2f\n", i+1, g.N, g.MeanScore, 100*g.Rate, g.Lift)
	}
	fmt.Fprintln(out, "\nCalibration:")
	fmt.Fprintf(out, "  %-9s %7s %10s %9s\n", "score", "rows", "mean score", "observed")
	for _, g := range e.Calibration {
		if g.N == 0 {
			continue
		}
		fmt.Fprintf(out, "  %.1f-%.1f %7d %10.4f %8.2f%%\n", g.Lo, g.Hi, g.N, g.MeanScore, 100*g.Rate)
	}
}

// score streams a CSV of scores: one row per input row, in input order.
func score(_ context.Context, args []string, out io.Writer) error {
	fs := pflag.NewFlagSet("tact score", pflag.ContinueOnError)
	var d dataFlags
	d.register(fs)
	modelPath := fs.String("model", "", "model file (required)")
	outPath := fs.String("out", "", "CSV of scores to write, - for standard output (required)")
	idCol := fs.String("id", "", "column to copy into the output beside the score")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if *modelPath == "" || *outPath == "" || d.data == "" {
		return &usageError{"--model, --data and --out are required"}
	}
	sep, err := d.comma()
	if err != nil {
		return err
	}
	m, err := readModel(*modelPath)
	if err != nil {
		return err
	}
	in, err := os.Open(d.data)
	if err != nil {
		return err
	}
	defer in.Close()
	cr := model.NewCSVReader(bufio.NewReaderSize(in, 1<<20), sep)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("%s: header: %w", d.data, err)
	}
	idx := make(map[string]int, len(header))
	for i, c := range header {
		idx[strings.TrimSpace(c)] = i
	}
	idPos := -1
	if *idCol != "" {
		p, ok := idx[*idCol]
		if !ok {
			return &usageError{fmt.Sprintf("--id %s: no such column", *idCol)}
		}
		idPos = p
	}
	var w io.Writer = out
	var f *os.File
	if *outPath != "-" {
		if f, err = os.Create(*outPath); err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	if idPos >= 0 {
		fmt.Fprintf(bw, "%s,score\n", csvField(*idCol))
	} else {
		fmt.Fprintln(bw, "score")
	}
	rows := 0
	buf := make([]byte, 0, 64)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", d.data, err)
		}
		s := m.Score(model.CSVRow{Index: idx, Values: rec})
		if idPos >= 0 {
			bw.WriteString(csvField(rec[idPos]))
			bw.WriteByte(',')
		}
		buf = strconv.AppendFloat(buf[:0], s, 'g', 10, 64)
		bw.Write(buf)
		bw.WriteByte('\n')
		rows++
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "scored %d rows into %s\n", rows, *outPath)
	}
	return nil
}

func csvField(s string) string {
	if strings.ContainsAny(s, ",\"\n\r") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

func share(b []bool) float64 {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return float64(n) / float64(len(b))
}

func seq(from, to int) []int {
	out := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func pick(b []bool, idx []int) []bool {
	out := make([]bool, len(idx))
	for k, i := range idx {
		out[k] = b[i]
	}
	return out
}

func fmtList(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 4, 64)
	}
	return strings.Join(parts, " ")
}

// applyInputFlags sets --bucketize edges and --missing values on the
// inferred inputs; each flag must name a numeric input column.
func applyInputFlags(specs []model.Input, buckets, missing []string) error {
	find := func(flag, arg string) (*model.Input, string, error) {
		col, val, ok := strings.Cut(arg, "=")
		if !ok || col == "" || val == "" {
			return nil, "", &usageError{fmt.Sprintf("--%s %q: want COL=VALUE", flag, arg)}
		}
		for i := range specs {
			if specs[i].Name == col {
				if specs[i].Kind != model.Numeric {
					return nil, "", fmt.Errorf("--%s %s: the column is not numeric", flag, col)
				}
				return &specs[i], val, nil
			}
		}
		return nil, "", fmt.Errorf("--%s %s: no such input column", flag, col)
	}
	for _, b := range buckets {
		in, val, err := find("bucketize", b)
		if err != nil {
			return err
		}
		var edges []float64
		for _, e := range strings.Split(val, ":") {
			x, err := strconv.ParseFloat(e, 64)
			if err != nil {
				return &usageError{fmt.Sprintf("--bucketize %s: edge %q is not a number", in.Name, e)}
			}
			if len(edges) > 0 && x <= edges[len(edges)-1] {
				return &usageError{fmt.Sprintf("--bucketize %s: edges must ascend", in.Name)}
			}
			edges = append(edges, x)
		}
		in.Transform, in.Edges = model.TransformBucketize, edges
	}
	for _, m := range missing {
		in, val, err := find("missing", m)
		if err != nil {
			return err
		}
		x, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return &usageError{fmt.Sprintf("--missing %s: %q is not a number", in.Name, val)}
		}
		in.Missing = &x
	}
	return nil
}
