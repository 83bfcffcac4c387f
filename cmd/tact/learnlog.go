package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/pflag"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model"
	"github.com/tact-nba/tact/model/offpolicy"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
	"github.com/tact-nba/tact/server/wire"
)

// logFlags are the flags of the commands that read tactd's decision log.
type logFlags struct {
	common
	since    string
	noAnswer time.Duration
}

func (l *logFlags) register(fs *pflag.FlagSet, envAddr string) {
	l.common.register(fs, envAddr)
	fs.Lookup("timeout").DefValue, l.timeout = "10m0s", 10*time.Minute
	fs.StringVar(&l.since, "since", "", "RFC 3339 time or YYYY-MM-DD (UTC), or a duration back from now such as 720h or 30d (required)")
	fs.DurationVar(&l.noAnswer, "no-answer-after", 24*time.Hour, "an offer presented and not answered this long counts as declined (0: left out)")
}

// fetch reads the decisions made and the outcomes recorded since --since
// over the export API.
func (l *logFlags) fetch(ctx context.Context) (time.Time, []features.DecisionRecord, []features.OutcomeRecord, error) {
	now := time.Now()
	from, err := parseSince(l.since, now)
	if err != nil {
		return now, nil, nil, &usageError{"--since: " + err.Error()}
	}
	conn, err := l.dial()
	if err != nil {
		return now, nil, nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	decisions, outcomes, err := wire.ReadLog(ctx, tactv1.NewExportServiceClient(conn), from)
	if err != nil {
		return now, nil, nil, l.callError("read the log", err)
	}
	return now, decisions, outcomes, nil
}

// evaluateCmd is tact evaluate: a challenger bundle judged off-policy on
// the decision log.
func evaluateCmd(ctx context.Context, args []string, out io.Writer, envAddr string) error {
	fs := pflag.NewFlagSet("tact evaluate", pflag.ContinueOnError)
	var l logFlags
	l.register(fs, envAddr)
	dir := fs.String("model", "", "the challenger: a model bundle directory (with bundle.json) (required)")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if *dir == "" {
		return &usageError{"--model is required"}
	}
	b, err := model.LoadBundle(os.DirFS(*dir), ".")
	if err != nil {
		return err
	}
	now, decisions, outcomes, err := l.fetch(ctx)
	if err != nil {
		return err
	}
	samples := offpolicy.Samples(decisions, offpolicy.NewAnswers(outcomes), l.noAnswer, now)
	res, err := offpolicy.Evaluate(samples, offpolicy.BundlePolicy(b))
	if errors.Is(err, offpolicy.ErrNoSamples) {
		return fmt.Errorf("evaluate: none of the %d decisions since %s offered a product now, with its detail and an answer: nothing to judge by", len(decisions), l.since)
	}
	if err != nil {
		return err
	}
	if l.json {
		return json.NewEncoder(out).Encode(res)
	}
	fmt.Fprintf(out, "Challenger %s judged on %d answered offers of %d decisions since %s\n", b.Version(), res.N, len(decisions), l.since)
	fmt.Fprintf(out, "(it would have made the same first offer in %d; the served policy could have made its choice in %.0f%%)\n\n", res.Matched, 100*res.Support)
	row := func(name string, e offpolicy.Estimate) {
		if math.IsNaN(e.Value) {
			fmt.Fprintf(out, "  %-32s      -    no decision matches its choices\n", name)
			return
		}
		fmt.Fprintf(out, "  %-32s %6.2f%%   95%% interval [%.2f%%, %.2f%%]\n", name, 100*e.Value, 100*e.Low, 100*e.High)
	}
	fmt.Fprintln(out, "Acceptance of the first offer:")
	row("served policy (observed)", res.Logged)
	row("challenger, self-normalised IPS", res.SNIPS)
	row("challenger, IPS", res.IPS)
	row("challenger, doubly robust", res.DR)
	switch {
	case res.Support < 0.95:
		fmt.Fprintf(out, "\nWarning: in %.0f%% of the decisions the served policy could never have made the challenger's choice;\n"+
			"those count as misses, so the estimates are low. Explore more (exploration_rate) before judging.\n", 100*(1-res.Support))
	case res.Matched < 100:
		fmt.Fprintf(out, "\nWarning: only %d decisions match the challenger's choices: the intervals are wide. Log more, or explore more.\n", res.Matched)
	}
	return nil
}

// trainFromLog is tact train --from-log: one logistic model per product
// from the offers in tactd's log and their answers, written as a bundle.
func trainFromLog(ctx context.Context, args []string, out io.Writer, envAddr string) error {
	fs := pflag.NewFlagSet("tact train --from-log", pflag.ContinueOnError)
	fs.Bool("from-log", true, "train from tactd's decision log and outcomes")
	var l logFlags
	l.register(fs, envAddr)
	outDir := fs.String("out", "", "bundle directory to write (required; created)")
	base := fs.String("base", "", "a bundle whose models are kept for the products with too few answers (e.g. the one served)")
	version := fs.String("version", "", "the bundle's version (default log-<date>)")
	minRows := fs.Int("min-rows", 200, "fewest answered offers to train a product's model on")
	holdout := fs.Float64("holdout-tail", 0.2, "report metrics on the latest x of each product's rows (trained on the rest)")
	l2 := fs.Float64("l2", 1e-4, "L2 penalty per row")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	switch {
	case *outDir == "":
		return &usageError{"--out is required"}
	case *holdout < 0 || *holdout >= 1:
		return &usageError{fmt.Sprintf("--holdout-tail %v: want 0 <= x < 1", *holdout)}
	case *minRows < 10:
		return &usageError{fmt.Sprintf("--min-rows %d: want at least 10", *minRows)}
	}
	var baseBundle *model.Bundle
	if *base != "" {
		b, err := model.LoadBundle(os.DirFS(*base), ".")
		if err != nil {
			return fmt.Errorf("--base: %w", err)
		}
		baseBundle = b
	}
	now, decisions, outcomes, err := l.fetch(ctx)
	if err != nil {
		return err
	}
	rows, skipped := offpolicy.Rows(decisions, offpolicy.NewAnswers(outcomes), l.noAnswer, now)
	fmt.Fprintf(out, "log: %d decisions, %d outcomes since %s: %d answered offers", len(decisions), len(outcomes), l.since, len(rows))
	if skipped > 0 {
		fmt.Fprintf(out, " (%d more logged without their features, left out: tactd keeps them with decision_detail: full)", skipped)
	}
	fmt.Fprintln(out)
	byProduct := map[string][]offpolicy.Row{}
	for _, r := range rows {
		byProduct[r.Product] = append(byProduct[r.Product], r)
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return err
	}
	if *version == "" {
		*version = "log-" + now.UTC().Format("2006-01-02-1504")
	}
	man := model.Manifest{Format: model.FormatBundle, Version: *version, CreatedAt: now.UTC().Truncate(time.Second),
		Description: "trained by tact train --from-log on the offers since " + l.since, Models: map[string]model.ManifestModel{}}
	products := make([]string, 0, len(byProduct))
	for p := range byProduct {
		products = append(products, p)
	}
	slices.Sort(products)
	for _, p := range products {
		rs := byProduct[p]
		pos := 0
		for _, r := range rs {
			if r.Label == 1 {
				pos++
			}
		}
		if len(rs) < *minRows || pos == 0 || pos == len(rs) {
			fmt.Fprintf(out, "%s: %d answered offers (%d accepted): too few to train on\n", p, len(rs), pos)
			continue
		}
		ds := rowsDataset(rs)
		labels, _, err := ds.Labels("accepted", "1")
		if err != nil {
			return err
		}
		specs, err := ds.InferInputs([]string{"accepted"}, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		opt := model.TrainOptions{L2: *l2, MaxCategories: 100}
		n := len(ds.Rows)
		cut := n - int(float64(n)**holdout)
		m, err := fit(ds.Subset(seq(0, cut)), labels[:cut], specs, opt)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		m.Meta.Label, m.Meta.Positive, m.Meta.TrainedAt = "accepted", "1", now.UTC().Truncate(time.Second)
		m.Meta.DataFingerprint = fmt.Sprintf("tact-log:%s..%s:%d", rs[0].At.UTC().Format(time.RFC3339), rs[n-1].At.UTC().Format(time.RFC3339), n)
		line := fmt.Sprintf("%s: %d answered offers (%.1f%% accepted)", p, n, 100*float64(pos)/float64(n))
		if cut < n {
			e, err := evaluate(m, ds.Subset(seq(cut, n)), labels[cut:], 0)
			if err == nil {
				m.Meta.Metrics = map[string]float64{"roc_auc": e.ROCAUC, "pr_auc": e.PRAUC, "log_loss": e.LogLoss, "brier": e.Brier}
				line += fmt.Sprintf(", holdout (latest %.0f%%) ROC AUC %.4f", 100**holdout, e.ROCAUC)
			}
		}
		if err := writeModel(filepath.Join(*outDir, p+".json"), m); err != nil {
			return err
		}
		man.Models[p] = model.ManifestModel{Type: "logistic", File: p + ".json"}
		fmt.Fprintln(out, line)
	}
	if baseBundle != nil {
		for _, p := range baseBundle.Products() {
			if _, ok := man.Models[p]; ok {
				continue
			}
			mm := baseBundle.Manifest.Models[p]
			raw, err := os.ReadFile(filepath.Join(*base, mm.File))
			if err != nil {
				return fmt.Errorf("--base: %w", err)
			}
			file := "base-" + filepath.Base(mm.File)
			if err := os.WriteFile(filepath.Join(*outDir, file), raw, 0o644); err != nil {
				return err
			}
			mm.File = file
			man.Models[p] = mm
			fmt.Fprintf(out, "%s: kept from %s\n", p, baseBundle.Version())
		}
	}
	if len(man.Models) == 0 {
		return errors.New("train --from-log: no product had enough answered offers, and no --base: no bundle written")
	}
	raw, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*outDir, model.ManifestFile), append(raw, '\n'), 0o644); err != nil {
		return err
	}
	if _, err := model.LoadBundle(os.DirFS(*outDir), "."); err != nil {
		return fmt.Errorf("the bundle written does not load: %w", err)
	}
	fmt.Fprintf(out, "wrote bundle %s to %s (%d models): put it under --model-dir and point current at it to serve it\n", *version, *outDir, len(man.Models))
	return nil
}

// rowsDataset lays the rows out as a table: a column per feature (numbers
// and booleans as numbers, strings as they are, times left out) and the
// label, accepted, 1 or 0.
func rowsDataset(rows []offpolicy.Row) *model.Dataset {
	cols := map[string]bool{}
	for i := range rows {
		for name, v := range rows[i].Features.All {
			if v.Kind != features.KindTime {
				cols[name] = true
			}
		}
	}
	names := make([]string, 0, len(cols)+1)
	for c := range cols {
		names = append(names, c)
	}
	slices.Sort(names)
	names = append(names, "accepted")
	ds := &model.Dataset{Columns: names, Index: map[string]int{}, Rows: make([][]string, len(rows)), Lines: make([]int, len(rows))}
	for i, c := range names {
		ds.Index[c] = i
	}
	for i := range rows {
		r := make([]string, len(names))
		for j, c := range names[:len(names)-1] {
			v, ok := rows[i].Features.Value(c)
			if !ok {
				continue
			}
			switch v.Kind {
			case features.KindNumber:
				r[j] = strconv.FormatFloat(v.Num, 'g', -1, 64)
			case features.KindBool:
				r[j] = "0"
				if v.Bool {
					r[j] = "1"
				}
			case features.KindString:
				r[j] = v.Str
			}
		}
		r[len(r)-1] = strconv.Itoa(int(rows[i].Label))
		ds.Rows[i], ds.Lines[i] = r, i+2
	}
	return ds
}
