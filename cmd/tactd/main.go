// Command tactd is the Tact server: gRPC on --grpc-addr, and REST, health
// and the OpenAPI document on --http-addr. With no configuration it serves
// the demo bank from ./tact-data. See the README for the configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/tact-nba/tact/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := server.Main(ctx, os.Args[1:])
	stop()
	if errors.Is(err, pflag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tactd:", err)
		os.Exit(1)
	}
}
