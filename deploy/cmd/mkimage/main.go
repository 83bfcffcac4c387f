// Command mkimage writes tactd's container image as an OCI archive,
// without a container runtime (see package image). `make image` runs it:
//
//	CGO_ENABLED=0 go build -trimpath -o build/tactd ./cmd/tactd
//	cd deploy && go run ./cmd/mkimage --binary ../build/tactd --out ../build/tact-image.tar
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/tact-nba/tact/deploy/image"
)

func main() {
	bin := flag.String("binary", "", "the static tactd binary (required)")
	certs := flag.String("ca-certs", "/etc/ssl/certs/ca-certificates.crt", "PEM bundle of CA certificates to include")
	out := flag.String("out", "tact-image.tar", "the OCI archive to write")
	tag := flag.String("tag", "tact:dev", "the image's name in the archive")
	version := flag.String("version", "dev", "the image's version label")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "mkimage: --binary is required")
		os.Exit(2)
	}
	created := time.Unix(0, 0)
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mkimage: SOURCE_DATE_EPOCH:", err)
			os.Exit(2)
		}
		created = time.Unix(sec, 0)
	}
	img, err := image.Build(image.Options{Binary: *bin, CACerts: *certs, Version: *version, Created: created})
	if err == nil {
		err = image.WriteArchive(img, *tag, *out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
	d, _ := img.Digest() // computed already by the write
	fmt.Printf("wrote %s: %s (%s)\n", *out, *tag, d)
}
