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

// TestServerIsTheOneAsked: the server started is the one TACT_REDIS_SERVER
// names (CI's Valkey pass runs Valkey, not Redis under its name).
func TestServerIsTheOneAsked(t *testing.T) {
	info, err := Info(Start(t).Addr, "server")
	if err != nil {
		t.Fatal(err)
	}
	valkey := infoField(info, "server_name") == "valkey"
	if valkey != (ServerBinary() == "valkey-server") {
		t.Errorf("%s started; INFO server says server_name %q, version %s", ServerBinary(), infoField(info, "server_name"), infoField(info, "redis_version"))
	}
	t.Logf("%s: redis_version %s, valkey_version %q", ServerBinary(), infoField(info, "redis_version"), infoField(info, "valkey_version"))
}
