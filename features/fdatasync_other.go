//go:build !linux

package features

import "os"

// fdatasync is fsync where there is no fdatasync.
func fdatasync(f *os.File) error { return f.Sync() }

// preallocate does nothing where there is no fallocate: the file grows as
// it is written.
func preallocate(*os.File, int64) error { return nil }
