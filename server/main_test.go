package server

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// server, cache, watcher and decision log must stop when it is told to.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
