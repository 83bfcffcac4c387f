package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/pflag"

	"github.com/tact-nba/tact/model/demo"
)

// demoData writes the demo bank's simulated campaign histories as one
// training CSV per product, for tact train (see model/demo/make_bundle.sh);
// with --clients N, it writes N demo clients to clients.csv instead, for
// tact features import (benchmarks with a large population).
func demoData(_ context.Context, args []string, out io.Writer) error {
	fs := pflag.NewFlagSet("tact demo-data", pflag.ContinueOnError)
	dir := fs.String("out", "", "directory to write <product>.csv (or clients.csv) into (required)")
	seed := fs.Uint64("seed", demo.Seed, "generator seed")
	clients := fs.Int("clients", 0, "write this many demo clients to clients.csv (the demo schema) instead of the training files")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if *dir == "" {
		return &usageError{"--out is required"}
	}
	if *clients < 0 {
		return &usageError{"--clients must not be negative"}
	}
	if *clients > 0 {
		if err := os.MkdirAll(*dir, 0o755); err != nil {
			return err
		}
		path := filepath.Join(*dir, "clients.csv")
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := demo.WriteClientsCSV(f, *seed, *clients); err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s (%d clients)\n", path, *clients)
		return nil
	}
	hs, err := demo.Histories(*seed)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	for i := range hs {
		path := filepath.Join(*dir, hs[i].Product+".csv")
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := hs[i].WriteCSV(f); err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s (%d rows)\n", path, len(hs[i].Clients))
	}
	return nil
}

// trainedAt is the time stamped on a trained model: SOURCE_DATE_EPOCH
// (seconds) when set, so that a bundle can be rebuilt byte for byte, else
// now.
func trainedAt() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Now().UTC(), nil
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", v, err)
	}
	return time.Unix(sec, 0).UTC(), nil
}
