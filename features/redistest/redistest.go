// Package redistest runs a real redis-server for tests (alone, as a Redis
// Cluster, or as a master and replica watched by a sentinel), on free
// ports on 127.0.0.1 with its data in the test's temporary directory. When
// redis-server is not installed the test is skipped, unless
// TACT_REQUIRE_REDIS=1 (as in CI), when it fails.
//
// TACT_REDIS_SERVER names another server speaking Redis's protocol to run
// instead: CI runs the Redis tests a second time with valkey-server (and
// valkey-cli for a cluster's creation).
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ServerBinary is the server the tests run: redis-server, or the one
// TACT_REDIS_SERVER names.
func ServerBinary() string {
	if b := os.Getenv("TACT_REDIS_SERVER"); b != "" {
		return b
	}
	return "redis-server"
}

// cliBinary is the command-line client beside ServerBinary: redis-cli,
// or valkey-cli beside valkey-server.
func cliBinary() string { return strings.Replace(ServerBinary(), "-server", "-cli", 1) }

// Server is a running redis-server.
type Server struct {
	Addr string
	tb   testing.TB
	dir  string
	cmd  *exec.Cmd
	// release lets go of the port held while the server is killed (see
	// holdPort); nil when none is held.
	release func()
	// extra are more redis-server arguments (a replica's --replicaof).
	extra []string
	// password is the one the server requires (StartSecure), "" for none.
	password string
	// TLSAddr is the server's TLS port (StartSecure), "" for none.
	TLSAddr string
}

// Start starts redis-server with an append-only file fsynced on every
// write, so that data survives Kill and Restart. It is stopped when the
// test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return start(tb, nil, "")
}

// StartSecure starts redis-server requiring password, and serving TLS
// with the PEM certificate and key given on TLSAddr besides its plain
// port (Addr, for the harness); clients need no certificate of their own.
func StartSecure(tb testing.TB, password, certFile, keyFile string) *Server {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tlsAddr := l.Addr().String()
	l.Close()
	_, tlsPort, _ := net.SplitHostPort(tlsAddr)
	s := start(tb, []string{"--requirepass", password, "--tls-port", tlsPort,
		"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-auth-clients", "no"}, password)
	s.TLSAddr = tlsAddr
	return s
}

// start starts redis-server with the extra arguments, requiring password
// when it is not "".
func start(tb testing.TB, extra []string, password string) *Server {
	tb.Helper()
	if _, err := exec.LookPath(ServerBinary()); err != nil {
		if Required() {
			tb.Fatalf("TACT_REQUIRE_REDIS=1 but %s is not installed: %v", ServerBinary(), err)
		}
		tb.Skipf("%s is not installed (apt-get install %[1]s)", ServerBinary())
	}
	s := &Server{tb: tb, dir: tb.TempDir(), extra: extra, password: password}
	tb.Cleanup(s.stop)
	// The port is free when chosen, but another test's redis-server may
	// take it before this one binds it: then the PING is answered by that
	// other server. Only our process's answer counts; else another port.
	for try := 1; ; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		s.Addr = l.Addr().String()
		l.Close()
		s.start()
		if s.ours() {
			return s
		}
		s.stop()
		if try == 5 {
			tb.Fatalf("redistest: another process answered on each of 5 ports")
		}
	}
}

// ours reports whether the redis-server answering on Addr is the process
// started here (INFO server's process_id).
func (s *Server) ours() bool {
	c, r, err := s.dial(time.Second, 2*time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	if _, err := fmt.Fprint(c, "*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n"); err != nil {
		return false
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return false
		}
		if pid, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return s.cmd != nil && pid == strconv.Itoa(s.cmd.Process.Pid)
		}
	}
}

func (s *Server) start() {
	s.tb.Helper()
	s.letGo()
	_, port, _ := net.SplitHostPort(s.Addr)
	args := []string{"--port", port, "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "no", "--loglevel", "warning"}
	s.cmd = exec.Command(ServerBinary(), append(args, s.extra...)...)
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("redistest: start redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !s.ping() {
		if time.Now().After(deadline) {
			s.tb.Fatalf("redistest: redis-server on %s not answering after 10 s", s.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping sends PING in the Redis protocol and expects PONG.
func (s *Server) ping() bool {
	c, r, err := s.dial(200*time.Millisecond, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	if _, err := fmt.Fprint(c, "*1\r\n$4\r\nPING\r\n"); err != nil {
		return false
	}
	line, err := r.ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// dial connects to the plain port, within the deadline for what follows,
// and authenticates when the server requires a password.
func (s *Server) dial(timeout, deadline time.Duration) (net.Conn, *bufio.Reader, error) {
	c, err := net.DialTimeout("tcp", s.Addr, timeout)
	if err != nil {
		return nil, nil, err
	}
	_ = c.SetDeadline(time.Now().Add(deadline))
	r := bufio.NewReader(c)
	if s.password != "" {
		_, err := fmt.Fprintf(c, "*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(s.password), s.password)
		line := ""
		if err == nil {
			line, err = r.ReadString('\n')
		}
		if err == nil && !strings.HasPrefix(line, "+OK") {
			err = fmt.Errorf("redistest: AUTH: %q", line)
		}
		if err != nil {
			c.Close()
			return nil, nil, err
		}
	}
	return c, r, nil
}

// Kill stops redis-server at once (SIGKILL), as a crash would. Its port
// stays held, unanswered, until Restart: a client's connection is refused
// as by a dead server, and no other process is given the port meanwhile.
func (s *Server) Kill() {
	s.tb.Helper()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait() // killed: the exit error is expected
	s.cmd = nil
	s.release = holdPort(s.Addr)
}

// Restart starts redis-server again on the same port and data. The test
// fails if the server answering there is not the one started (another
// process took the port while it was down: its PING would have passed for
// ours, with none of our data).
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	s.start()
	if !s.ours() {
		s.tb.Fatalf("redistest: another process answers on %s after the restart: the port was taken while redis-server was down", s.Addr)
	}
}

// letGo lets go of the port held since Kill, if any.
func (s *Server) letGo() {
	if s.release != nil {
		s.release()
		s.release = nil
	}
}

func (s *Server) stop() {
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
	s.letGo()
}

// TTL returns a key's time to live, asked over the Redis protocol.
func (s *Server) TTL(tb testing.TB, key string) time.Duration {
	tb.Helper()
	c, r, err := s.dial(time.Second, time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "*2\r\n$4\r\nPTTL\r\n$%d\r\n%s\r\n", len(key), key)
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, ":") {
		tb.Fatalf("redistest: PTTL %s: %q, %v", key, line, err)
	}
	ms, err := strconv.ParseInt(strings.TrimSpace(line[1:]), 10, 64)
	if err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ms) * time.Millisecond
}
