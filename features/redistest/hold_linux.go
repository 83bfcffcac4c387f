//go:build linux

package redistest

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// holdPort binds addr's port without listening on it, so that while the
// server is down the kernel gives the port to no other process's listener
// (another test's redis-server or gRPC server asking for a free port), and
// a client's connection is still refused, as by a dead server. It returns
// the function that lets the port go; nil when the port could not be held.
func holdPort(addr string) func() {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return nil
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	// The killed server's connections linger in TIME_WAIT on the port:
	// without SO_REUSEADDR the bind would fail, as redis-server's own does
	// not (it sets it too).
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		_ = unix.Close(fd)
		return nil
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		_ = unix.Close(fd)
		return nil
	}
	return func() { _ = unix.Close(fd) }
}
