package features

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: caches
// and decision logs must stop when closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
