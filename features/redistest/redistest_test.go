package redistest

import (
	"os/exec"
	"testing"
)

// ours tells our redis-server from another process's answering on the
// port (the race Start retries on).
func TestOursTellsTheProcess(t *testing.T) {
	s := Start(t)
	if !s.ours() {
		t.Fatal("the server started here is not recognised as ours")
	}
	other := exec.Command("sleep", "5")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Process.Kill(); _ = other.Wait() }()
	impostor := &Server{Addr: s.Addr, cmd: other}
	if impostor.ours() {
		t.Error("a redis-server of another process taken for ours")
	}
}
