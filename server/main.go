package server

import (
	"context"
	"os"
)

// Main is tactd's whole run from its command line: the configuration from
// args, the environment and the file they name, the logger and memory
// limit it sets, then the server until ctx ends. cmd/tactd and tactload's
// child process both run it.
func Main(ctx context.Context, args []string) error {
	cfg, err := LoadConfig(args, os.Environ())
	if err != nil {
		return err
	}
	logger := cfg.Logger(os.Stderr)
	ApplyMemoryLimit(cfg, logger)
	srv, err := New(ctx, cfg, logger, Deps{})
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}
