//go:build linux

package redistest

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// While killed, the server's port is held: connections are refused as by
// a dead server, and no other socket is given the port (another test's
// listener once took it, and Restart's PING was answered by that other
// server); Restart gets it back.
func TestKillHoldsThePort(t *testing.T) {
	s := Start(t)
	s.Kill()
	if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		c.Close()
		t.Fatal("a killed server's port accepted a connection")
	}
	ap := netip.MustParseAddrPort(s.Addr)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err == nil {
		t.Fatalf("another socket bound %s while the server was down", s.Addr)
	}
	s.Restart()
	if !s.ours() {
		t.Fatal("after Restart the server answering is not ours")
	}
}
