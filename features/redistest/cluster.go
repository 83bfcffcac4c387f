package redistest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Cluster is a running Redis Cluster of real redis-server processes on
// loopback, made by redis-cli --cluster create. Start one per package
// (StartCluster, from TestMain) and give each test its own key prefix.
type Cluster struct {
	// Addrs are the nodes' addresses, masters first.
	Addrs []string
	dir   string
	nodes []*exec.Cmd
}

// StartCluster starts masters master nodes with replicas replicas each and
// waits until the cluster answers. It needs redis-server and redis-cli;
// without them it returns an error (a TestMain decides to skip or fail:
// see Required). Stop it with Stop.
func StartCluster(masters, replicas int) (*Cluster, error) {
	for _, bin := range []string{ServerBinary(), cliBinary()} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("redistest: %s is not installed (apt-get install %s): %w", bin, ServerBinary(), err)
		}
	}
	dir, err := os.MkdirTemp("", "redis-cluster-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	n := masters * (1 + replicas)
	for i := range n {
		port, err := clusterPort()
		if err != nil {
			return nil, err
		}
		nodeDir := filepath.Join(dir, strconv.Itoa(i))
		if err := os.MkdirAll(nodeDir, 0o755); err != nil {
			return nil, err
		}
		cmd := exec.Command(ServerBinary(), "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", nodeDir,
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
			"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "no", "--loglevel", "warning")
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("redistest: start a cluster node: %w", err)
		}
		c.nodes = append(c.nodes, cmd)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		c.Addrs = append(c.Addrs, addr)
		s := &Server{Addr: addr, cmd: cmd}
		for deadline := time.Now().Add(10 * time.Second); !s.ping(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("redistest: cluster node %s not answering", addr)
			}
		}
		if !s.ours() {
			return nil, fmt.Errorf("redistest: another process answers on %s, the port chosen for a cluster node", addr)
		}
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command(cliBinary(), args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redistest: %s --cluster create: %w\n%s", cliBinary(), err, out)
	}
	// Every node must see every slot covered before the cluster is used.
	for _, addr := range c.Addrs {
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			host, port, _ := net.SplitHostPort(addr)
			out, _ := exec.Command(cliBinary(), "-h", host, "-p", port, "cluster", "info").Output()
			if bytes.Contains(out, []byte("cluster_state:ok")) {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("redistest: cluster node %s not ok after 20 s:\n%s", addr, out)
			}
		}
	}
	ok = true
	return c, nil
}

// clusterPort picks a free port whose cluster bus port (+10000) is free
// too.
func clusterPort() (int, error) {
	for range 100 {
		p := 20000 + rand.IntN(20000)
		l1, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l2, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+10000)))
		l1.Close()
		if err != nil {
			continue
		}
		l2.Close()
		return p, nil
	}
	return 0, errors.New("redistest: no free port pair for a cluster node")
}

// Kill stops node i at once (SIGKILL), as a crash would.
func (c *Cluster) Kill(i int) {
	if c.nodes[i] != nil {
		_ = c.nodes[i].Process.Kill()
		_ = c.nodes[i].Wait() // killed: the exit error is expected
		c.nodes[i] = nil
	}
}

// Seeds returns the nodes' addresses as tactd's redis_addrs takes them.
func (c *Cluster) Seeds() string { return strings.Join(c.Addrs, ",") }

// Stop kills every node and removes their files.
func (c *Cluster) Stop() {
	for i := range c.nodes {
		c.Kill(i)
	}
	_ = os.RemoveAll(c.dir)
}

// Required reports whether tests that need redis-server must fail rather
// than skip without it (CI sets TACT_REQUIRE_REDIS=1).
func Required() bool { return os.Getenv("TACT_REQUIRE_REDIS") == "1" }
