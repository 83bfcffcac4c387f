package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Sentinel is a Redis master with one replica, watched by one Sentinel
// (quorum 1, a master is down after 1 s unanswered), all real processes
// on loopback: what tactd's redis_mode sentinel connects to. It is
// stopped when the test ends.
type Sentinel struct {
	// Addr is the sentinel's address (tactd's redis_addrs).
	Addr string
	// MasterName is the name the sentinel watches (tactd's redis_master).
	MasterName      string
	Master, Replica *Server
	proc            *Server // the sentinel process
}

// StartSentinel starts the master, its replica and the sentinel, and
// returns once the sentinel knows the replica (so that it can fail over
// to it).
func StartSentinel(tb testing.TB) *Sentinel {
	tb.Helper()
	s := &Sentinel{MasterName: "tact", Master: Start(tb)}
	host, port, _ := net.SplitHostPort(s.Master.Addr)
	s.Replica = start(tb, []string{"--replicaof", host, port}, "")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.Addr = l.Addr().String()
	l.Close()
	_, sport, _ := net.SplitHostPort(s.Addr)
	dir := tb.TempDir()
	conf := filepath.Join(dir, "sentinel.conf") // the sentinel rewrites it
	body := fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor %s %s %s 1\n"+
		"sentinel down-after-milliseconds %[3]s 1000\nsentinel failover-timeout %[3]s 5000\n",
		sport, dir, s.MasterName, host, port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		tb.Fatal(err)
	}
	s.proc = &Server{Addr: s.Addr, tb: tb, cmd: exec.Command(ServerBinary(), conf, "--sentinel", "--loglevel", "warning")}
	if err := s.proc.cmd.Start(); err != nil {
		tb.Fatalf("redistest: start the sentinel: %v", err)
	}
	tb.Cleanup(s.proc.stop)
	for deadline := time.Now().Add(10 * time.Second); !s.proc.ping(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: sentinel on %s not answering after 10 s", s.Addr)
		}
	}
	if !s.proc.ours() {
		tb.Fatalf("redistest: another process answers on %s, the sentinel's port", s.Addr)
	}
	// The sentinel learns the replica from the master within a few
	// seconds (its INFO every 10 s at first, sooner once connected).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		info, err := Info(s.Addr, "sentinel")
		if err == nil && strings.Contains(info, "status=ok") && strings.Contains(info, "slaves=1") {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: the sentinel does not know the replica after 30 s: %q, %v", info, err)
		}
	}
	return s
}

// WaitReplicated waits until the replica has every write the master has
// taken, so that a failover loses none of them.
func (s *Sentinel) WaitReplicated(tb testing.TB) {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		m, err1 := Info(s.Master.Addr, "replication")
		r, err2 := Info(s.Replica.Addr, "replication")
		mo, ro := infoField(m, "master_repl_offset"), infoField(r, "slave_repl_offset")
		if err1 == nil && err2 == nil && mo != "" && mo == ro {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: the replica has not caught up after 10 s (master offset %q, replica %q; %v, %v)", mo, ro, err1, err2)
		}
	}
}

// MasterAddr is the master's address as the sentinel gives it now
// (SENTINEL get-master-addr-by-name).
func (s *Sentinel) MasterAddr() (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	const cmd = "get-master-addr-by-name"
	if _, err := fmt.Fprintf(c, "*3\r\n$8\r\nSENTINEL\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(cmd), cmd, len(s.MasterName), s.MasterName); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	if head, err := r.ReadString('\n'); err != nil || strings.TrimSpace(head) != "*2" {
		return "", fmt.Errorf("redistest: SENTINEL %s: %q, %v", cmd, head, err)
	}
	var hostPort [2]string
	for i := range hostPort {
		if hostPort[i], err = readBulk(r); err != nil {
			return "", err
		}
	}
	return net.JoinHostPort(hostPort[0], hostPort[1]), nil
}

// readBulk reads one bulk string of the Redis protocol.
func readBulk(r *bufio.Reader) (string, error) {
	head, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
	if !strings.HasPrefix(head, "$") || err != nil || n < 0 {
		return "", fmt.Errorf("redistest: want a bulk string, got %q", head)
	}
	body := make([]byte, n+2) // and its CRLF
	if _, err := io.ReadFull(r, body); err != nil {
		return "", err
	}
	return string(body[:n]), nil
}

// Info returns a section of INFO from the Redis (or sentinel) at addr.
func Info(addr, section string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(c, "*2\r\n$4\r\nINFO\r\n$%d\r\n%s\r\n", len(section), section); err != nil {
		return "", err
	}
	return readBulk(bufio.NewReader(c))
}

// infoField returns the value of name in an INFO text, "" when absent.
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}
