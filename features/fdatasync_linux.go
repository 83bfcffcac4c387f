package features

import (
	"os"

	"golang.org/x/sys/unix"
)

// fdatasync writes f's data, and the metadata needed to read it back
// (its size), to the disk: cheaper than fsync, which also writes times.
func fdatasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
