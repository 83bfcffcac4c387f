// Command genfeatures writes a synthetic client-features file and its
// schema for import and load tests: N clients (C0000001...) with 40
// features (30 numbers, 5 categories, 3 booleans, 2 dates), seeded and
// deterministic.
//
//	go run ./bench/cmd/genfeatures --rows 1000000 --out /tmp/clients.csv --schema /tmp/schema.yaml
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"time"
)

func main() {
	rows := flag.Int("rows", 1_000_000, "clients to write")
	out := flag.String("out", "clients.csv", "CSV file to write")
	schema := flag.String("schema", "schema.yaml", "schema file to write")
	seed := flag.Uint64("seed", 1, "generator seed")
	flag.Parse()
	if err := run(*rows, *out, *schema, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "genfeatures:", err)
		os.Exit(1)
	}
}

func run(rows int, out, schemaPath string, seed uint64) error {
	sf, err := os.Create(schemaPath)
	if err != nil {
		return err
	}
	fmt.Fprintln(sf, "id_column: client_id\nfeatures:")
	header := "client_id"
	for i := range 30 {
		fmt.Fprintf(sf, "  - {name: num_%02d, type: number}\n", i)
		header += fmt.Sprintf(",num_%02d", i)
	}
	for i := range 5 {
		fmt.Fprintf(sf, "  - {name: cat_%d, type: string}\n", i)
		header += fmt.Sprintf(",cat_%d", i)
	}
	for i := range 3 {
		fmt.Fprintf(sf, "  - {name: flag_%d, type: bool, default: \"false\"}\n", i)
		header += fmt.Sprintf(",flag_%d", i)
	}
	for i := range 2 {
		fmt.Fprintf(sf, "  - {name: date_%d, type: time}\n", i)
		header += fmt.Sprintf(",date_%d", i)
	}
	if err := sf.Close(); err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, header)
	rng := rand.New(rand.NewPCG(seed, seed))
	cats := []string{"alpha", "beta", "gamma", "delta", "epsilon"}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	buf := make([]byte, 0, 512)
	for r := range rows {
		buf = append(buf[:0], 'C')
		buf = append(buf, fmt.Sprintf("%07d", r+1)...)
		for range 30 {
			buf = append(buf, ',')
			buf = strconv.AppendFloat(buf, float64(rng.IntN(1_000_000))/100, 'f', -1, 64)
		}
		for range 5 {
			buf = append(buf, ',')
			buf = append(buf, cats[rng.IntN(len(cats))]...)
		}
		for range 3 {
			buf = append(buf, ',')
			buf = strconv.AppendBool(buf, rng.IntN(2) == 1)
		}
		for range 2 {
			buf = append(buf, ',')
			buf = base.AddDate(0, 0, rng.IntN(700)).AppendFormat(buf, time.DateOnly)
		}
		buf = append(buf, '\n')
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}
