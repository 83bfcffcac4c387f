package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/tact-nba/tact/features"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
	"github.com/tact-nba/tact/server/wire"
)

// featuresCmd runs `tact features SUBCOMMAND`.
func featuresCmd(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "import" {
		return &usageError{"want: tact features import [flags] FILE"}
	}
	return featuresImport(ctx, args[1:], out)
}

func featuresImport(ctx context.Context, args []string, out io.Writer) error {
	fs := pflag.NewFlagSet("tact features import", pflag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "import into the embedded store of this data directory (tactd must not be running on it)")
	redisAddr := fs.String("redis-addr", "", "import into Redis at host:port (password from TACT_REDIS_PASSWORD)")
	redisPrefix := fs.String("redis-prefix", "tact:", "prefix of the Redis keys")
	var cf connFlags
	cf.register(fs, "")
	fs.Lookup("addr").Usage = "import through a running tactd's admin API (gRPC host:port); rows are checked there against tactd's schema too"
	addr := &cf.addr
	schemaPath := fs.String("schema", "", "YAML feature schema (required)")
	format := fs.String("format", "auto", "csv, jsonl, or auto: by the file's extension (.csv, .jsonl, .ndjson), else by its first character ({ is JSON Lines)")
	sep := fs.String("sep", ",", "CSV field separator")
	skipBad := fs.Bool("skip-bad", false, "import the good rows and list the bad ones, instead of rejecting the file")
	batch := fs.Int("batch", 5000, "records per store write")
	fs.SetOutput(out)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	if fs.NArg() != 1 {
		return &usageError{"want exactly one FILE to import"}
	}
	file := fs.Arg(0)
	targets := 0
	for _, s := range []string{*dataDir, *redisAddr, *addr} {
		if s != "" {
			targets++
		}
	}
	switch {
	case targets != 1:
		return &usageError{"give one of --data-dir, --redis-addr or --addr"}
	case *schemaPath == "":
		return &usageError{"--schema is required"}
	case *format != "csv" && *format != "jsonl" && *format != "auto":
		return &usageError{fmt.Sprintf("--format %q: want csv, jsonl or auto", *format)}
	case *batch < 1:
		return &usageError{"--batch must be at least 1"}
	}
	r, err := parseSep(*sep)
	if err != nil {
		return err
	}
	sf, err := os.Open(*schemaPath)
	if err != nil {
		return err
	}
	schema, err := features.ReadSchema(sf)
	sf.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", *schemaPath, err)
	}
	if _, err := os.Stat(file); err != nil {
		return err
	}
	if *format == "auto" {
		if *format, err = detectFormat(file); err != nil {
			return err
		}
	}

	var sink features.Sink
	switch {
	case *addr != "":
		conn, err := cf.dial()
		if err != nil {
			return err
		}
		defer conn.Close()
		sink = &adminSink{client: tactv1.NewFeatureServiceClient(conn), conn: &cf}
		if *batch > 1000 {
			*batch = 1000 // the API's limit per call
		}
	case *dataDir != "":
		st, err := features.OpenBolt(filepath.Join(*dataDir, "tact.db"))
		if err != nil {
			return err
		}
		defer st.Close()
		sink = st
	default:
		st, err := features.OpenRedis(ctx, features.RedisConfig{Addr: *redisAddr, Password: os.Getenv("TACT_REDIS_PASSWORD"), Prefix: *redisPrefix, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}, nil)
		if err != nil {
			return err
		}
		defer st.Close()
		sink = st
	}

	start := time.Now()
	opt := features.ImportOptions{Format: *format, Sep: r, SkipBad: *skipBad, BatchSize: *batch}
	prog := newProgress("rows")
	opt.Progress = prog.at
	res, err := features.Import(ctx, func() (io.ReadCloser, error) { return os.Open(file) }, schema, sink, opt)
	prog.done()
	for _, b := range res.BadRows {
		fmt.Fprintf(out, "bad row: %s\n", b)
	}
	if res.Bad > int64(len(res.BadRows)) {
		fmt.Fprintf(out, "... and %d more bad rows\n", res.Bad-int64(len(res.BadRows)))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	secs := time.Since(start).Seconds()
	fmt.Fprintf(out, "imported %d of %d rows from %s in %.1fs (%.0f rows/s); %d bad rows skipped\n",
		res.Imported, res.Rows, file, secs, float64(res.Rows)/secs, res.Bad)
	return nil
}

// adminSink writes batches through a running tactd's FeatureService.
type adminSink struct {
	client tactv1.FeatureServiceClient
	conn   *connFlags
}

func (a *adminSink) PutBatch(ctx context.Context, recs []features.Record) error {
	req := &tactv1.BatchPutClientFeaturesRequest{Clients: make([]*tactv1.ClientFeatures, len(recs))}
	for i := range recs {
		req.Clients[i] = wire.ClientToProto(&recs[i])
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := a.client.BatchPutClientFeatures(ctx, req); err != nil {
		return a.conn.callError("batch put", err)
	}
	return nil
}

// detectFormat tells a CSV file from a JSON Lines one: by the extension,
// else by the first character that is not a space or a byte-order mark.
func detectFormat(path string) (string, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv", ".tsv":
		return "csv", nil
	case ".jsonl", ".ndjson":
		return "jsonl", nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	text := strings.TrimLeft(strings.TrimPrefix(string(head[:n]), "\ufeff"), " \t\r\n")
	if strings.HasPrefix(text, "{") {
		return "jsonl", nil
	}
	return "csv", nil
}
