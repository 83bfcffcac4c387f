package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	"github.com/tact-nba/tact/model"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// modelsCmd is tact models: the models' health, a snapshot of what they
// learned as a bundle version, and a rollback to a version.
func modelsCmd(ctx context.Context, args []string, out io.Writer, envAddr string) error {
	sub := "list"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "list":
		return modelsList(ctx, args, out, envAddr)
	case "snapshot":
		return modelsSnapshot(ctx, args, out, envAddr)
	case "rollback":
		return modelsRollback(args, out)
	default:
		return &usageError{fmt.Sprintf("tact models %s: want list, snapshot or rollback", sub)}
	}
}

func modelsList(ctx context.Context, args []string, out io.Writer, envAddr string) error {
	fs := pflag.NewFlagSet("tact models", pflag.ContinueOnError)
	var c common
	c.register(fs, envAddr)
	calibration := fs.Bool("calibration", false, "also print each learning model's calibration by tenth")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	resp, err := call(ctx, &c, "models", func(ctx context.Context, conn *grpc.ClientConn) (*tactv1.ListModelsResponse, error) {
		return tactv1.NewModelServiceClient(conn).ListModels(ctx, &tactv1.ListModelsRequest{})
	})
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(out, resp)
	}
	fmt.Fprintf(out, "Bundle %s, learning %s, exploration %s", resp.GetBundleVersion(), resp.GetLearning(), map[bool]string{true: "on", false: "off"}[resp.GetExploration()])
	if v := resp.GetRestoredSnapshot(); v != "" {
		fmt.Fprintf(out, " (learning resumed from snapshot %s)", v)
	}
	fmt.Fprintln(out)
	learning := resp.GetLearning() == "adaptive"
	fmt.Fprintf(out, "\n  %-18s %-9s %11s", "PRODUCT", "MODEL", "BUNDLE AUC")
	if learning {
		fmt.Fprintf(out, " %9s %9s %19s", "ACCEPTED", "DECLINED", "RECENT AUC")
	}
	fmt.Fprintln(out)
	for _, m := range resp.GetModels() {
		auc := "-"
		if a, ok := m.GetMetrics()["roc_auc"]; ok {
			auc = fmt.Sprintf("%.3f", a)
		}
		fmt.Fprintf(out, "  %-18s %-9s %11s", m.GetProductId(), m.GetType(), auc)
		if learning {
			recent := "-"
			if m.GetRecentAuc() > 0 {
				recent = fmt.Sprintf("%.3f (last %d)", m.GetRecentAuc(), m.GetRecentOutcomes())
			}
			fmt.Fprintf(out, " %9.0f %9.0f %19s", m.GetAccepted(), m.GetDeclined(), recent)
		}
		fmt.Fprintln(out)
	}
	if *calibration && learning {
		fmt.Fprintln(out, "\nCalibration (recent outcomes by tenth of the propensity: predicted -> observed):")
		for _, m := range resp.GetModels() {
			if len(m.GetCalibration()) == 0 {
				continue
			}
			var bins []string
			for _, b := range m.GetCalibration() {
				bins = append(bins, fmt.Sprintf("%.2f->%.2f", b.GetPredicted(), b.GetObserved()))
			}
			fmt.Fprintf(out, "  %-18s %s\n", m.GetProductId(), strings.Join(bins, " "))
		}
	}
	return nil
}

// modelsSnapshot writes model_dir/<version>: the bundle served (model_dir's
// current) with what the adaptive models learned on top of it
// (learning.json), for audit and rollback.
func modelsSnapshot(ctx context.Context, args []string, out io.Writer, envAddr string) error {
	fs := pflag.NewFlagSet("tact models snapshot", pflag.ContinueOnError)
	var c common
	c.register(fs, envAddr)
	dir := fs.String("model-dir", "", "tactd's model_dir, as mounted here (required)")
	version := fs.String("version", "", "the snapshot's version and directory name (default <bundle>-learned-<UTC time>)")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if *dir == "" {
		return &usageError{"--model-dir is required"}
	}
	served, err := model.LoadBundle(os.DirFS(*dir), "current")
	if err != nil {
		return fmt.Errorf("--model-dir: %w", err)
	}
	resp, err := call(ctx, &c, "models snapshot", func(ctx context.Context, conn *grpc.ClientConn) (*tactv1.ExportLearningResponse, error) {
		return tactv1.NewModelServiceClient(conn).ExportLearning(ctx, &tactv1.ExportLearningRequest{})
	})
	if err != nil {
		return err
	}
	if resp.GetBundleVersion() != served.Version() {
		return fmt.Errorf("tactd serves bundle %s, but %s/current holds %s: is --model-dir tactd's model_dir?", resp.GetBundleVersion(), *dir, served.Version())
	}
	if *version == "" {
		*version = served.Version() + "-learned-" + time.Now().UTC().Format("20060102-150405")
	}
	if strings.ContainsAny(*version, `/\`) || *version == "." || *version == ".." || *version == "current" {
		return &usageError{fmt.Sprintf("--version %q: want a directory name", *version)}
	}
	to := filepath.Join(*dir, *version)
	if _, err := os.Stat(to); err == nil {
		return fmt.Errorf("%s exists: a snapshot never overwrites a version", to)
	}
	tmp, err := os.MkdirTemp(*dir, "."+*version+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	man := served.Manifest
	man.Version, man.CreatedAt = *version, time.Now().UTC().Truncate(time.Second)
	man.Description = fmt.Sprintf("snapshot of %s with what learning adaptive had learned on it", served.Version())
	models := make(map[string]model.ManifestModel, len(man.Models))
	for p, mm := range man.Models {
		raw, err := os.ReadFile(filepath.Join(*dir, "current", mm.File))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(tmp, filepath.Base(mm.File)), raw, 0o644); err != nil {
			return err
		}
		mm.File = filepath.Base(mm.File)
		models[p] = mm
	}
	man.Models = models
	man.Learning = "learning.json"
	if err := os.WriteFile(filepath.Join(tmp, man.Learning), resp.GetState(), 0o644); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, model.ManifestFile), append(raw, '\n'), 0o644); err != nil {
		return err
	}
	if _, err := model.LoadBundle(os.DirFS(tmp), "."); err != nil {
		return fmt.Errorf("the snapshot does not load: %w", err)
	}
	if err := os.Rename(tmp, to); err != nil {
		return err
	}
	var states map[string]struct{ Accepted, Refused float64 }
	_ = json.Unmarshal(resp.GetState(), &states)
	products := make([]string, 0, len(states))
	for p, st := range states {
		products = append(products, fmt.Sprintf("%s %.0f/%.0f", p, st.Accepted, st.Refused))
	}
	slices.Sort(products)
	learned := "nothing learned yet"
	if len(products) > 0 {
		learned = "accepted/declined: " + strings.Join(products, ", ")
	}
	fmt.Fprintf(out, "wrote snapshot %s to %s: bundle %s and what was learned on it (%s)\n", *version, to, served.Version(), learned)
	fmt.Fprintf(out, "roll back to it with: tact models rollback --model-dir %s --to %s\n", *dir, *version)
	return nil
}

// modelsRollback points model_dir's current at another version (a
// snapshot or a trained bundle), atomically; tactd loads it at its next
// poll and, for a snapshot, learning resumes from the state it carries.
func modelsRollback(args []string, out io.Writer) error {
	fs := pflag.NewFlagSet("tact models rollback", pflag.ContinueOnError)
	dir := fs.String("model-dir", "", "tactd's model_dir, as mounted here (required)")
	to := fs.String("to", "", "the version (a directory in model_dir) to serve (required)")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if *dir == "" || *to == "" {
		return &usageError{"--model-dir and --to are required"}
	}
	if strings.ContainsAny(*to, `/\`) || *to == "current" {
		return &usageError{fmt.Sprintf("--to %q: want a version directory's name", *to)}
	}
	b, err := model.LoadBundle(os.DirFS(*dir), *to)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	if b.Version() != *to {
		return fmt.Errorf("%s/%s holds version %q: tactd serves a version only from the directory of its name", *dir, *to, b.Version())
	}
	cur := filepath.Join(*dir, "current")
	if fi, err := os.Lstat(cur); err == nil && fi.Mode()&os.ModeSymlink == 0 {
		return fmt.Errorf("%s is a directory, not a symlink: move it to a version directory and link current to it first", cur)
	}
	prev, _ := os.Readlink(cur)
	next := filepath.Join(*dir, ".current-next")
	_ = os.Remove(next)
	if err := os.Symlink(*to, next); err != nil {
		return err
	}
	if err := os.Rename(next, cur); err != nil {
		return errors.Join(err, os.Remove(next))
	}
	fmt.Fprintf(out, "current now points at %s (was %s); tactd serves it at its next poll", *to, prev)
	if b.Learning() != nil {
		fmt.Fprint(out, ", and learning resumes from the state it carries")
	}
	fmt.Fprintln(out)
	return nil
}
