// The servers under test, each a child process of tactload: started,
// measured (CPU, RSS) and stopped.

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is a server process started by tactload.
type child struct {
	cmd                *exec.Cmd
	grpcAddr, httpAddr string
	stderr             *bytes.Buffer
	dir                string // tactd's data directory, removed at stop
	// metrics: the server keeps engineMetric on httpAddr's /metrics
	// (tactd, and journal-echo for the time its Decide takes).
	metrics bool
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func startChild(ctx context.Context, serve string, o *options) (*child, error) {
	g, err := freeAddr()
	if err != nil {
		return nil, err
	}
	h, err := freeAddr()
	if err != nil {
		return nil, err
	}
	c := &child{grpcAddr: g, httpAddr: h, stderr: &bytes.Buffer{}, metrics: serve == "serve-tactd" || serve == "serve-journal-echo" || serve == "serve-redis-store-echo"}
	args := []string{serve}
	switch serve {
	case "serve-grpc-echo":
		args = append(args, g)
	case "serve-redis-echo":
		args = append(args, g, o.redisMode, o.redisAddrs)
	case "serve-redis-store-echo":
		args = append(args, g, h, o.redisMode, o.redisAddrs)
	case "serve-journal-echo":
		// The journal beside tactd's data (same disk) when --tactd-args
		// names a --data-dir, else in the system's temporary directory.
		dir, err := os.MkdirTemp(journalEchoBase(o.tactdArgs), "tactload-journal-")
		if err != nil {
			return nil, err
		}
		c.dir = dir
		args = append(args, g, h, dir)
	case "serve-http-echo":
		args = append(args, h)
	default:
		dir, err := os.MkdirTemp("", "tactload-")
		if err != nil {
			return nil, err
		}
		c.dir = dir
		// A --data-dir in --tactd-args comes later and wins.
		args = append(args, "--grpc-addr", g, "--http-addr", h, "--data-dir", dir, "--demo=true", "--drain-delay=0s", "--log-level", "warn")
		args = append(args, strings.Fields(o.tactdArgs)...)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	c.cmd = exec.CommandContext(ctx, exe, args...)
	if o.serverCPUs != "" {
		n, err := countCPUs(o.serverCPUs)
		if err != nil {
			return nil, fmt.Errorf("--server-cpus: %w", err)
		}
		c.cmd = exec.CommandContext(ctx, "taskset", append([]string{"-c", o.serverCPUs, exe}, args...)...)
		c.cmd.Env = append(os.Environ(), fmt.Sprintf("GOMAXPROCS=%d", n))
	}
	if o.cpuProfile != "" {
		if c.cmd.Env == nil {
			c.cmd.Env = os.Environ()
		}
		c.cmd.Env = append(c.cmd.Env, cpuProfileEnv+"="+o.cpuProfile)
	}
	c.cmd.Stderr = c.stderr
	if o.serverStderr {
		c.cmd.Stderr = io.MultiWriter(c.stderr, os.Stderr)
	}
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(2 * time.Minute) // tactd may open a large store
	for {
		addr := g
		if serve == "serve-http-echo" {
			addr = h
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			if serve != "serve-tactd" || ready(h) {
				return c, nil
			}
		}
		if time.Now().After(deadline) || c.cmd.ProcessState != nil {
			c.stop()
			return nil, fmt.Errorf("server not ready: %s", c.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ready(httpAddr string) bool {
	resp, err := http.Get("http://" + httpAddr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
	if c.dir != "" {
		_ = os.RemoveAll(c.dir) // a temporary directory; nothing to report
	}
}

// cpuSeconds is the process's user + system CPU time so far.
func (c *child) cpuSeconds() float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces: fields start after its ")".
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // clock ticks (USER_HZ, 100 on Linux)
}

// peakRSSMiB is the process's peak resident set (VmHWM).
func (c *child) peakRSSMiB() float64 { return c.status("VmHWM") }

// status reads a kB field of /proc/<pid>/status, in MiB.
func (c *child) status(field string) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func machine() (cpus int, model, goVersion, kernel string) {
	cpus = runtimeNumCPU()
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(raw))
	}
	return cpus, model, goVersionString(), kernel
}

// cpuProfileEnv tells a child server where to write its CPU profile.
const cpuProfileEnv = "TACTLOAD_CPUPROFILE"

// startCPUProfile writes this process's CPU profile to path until stop, and
// at stop its allocations (the runtime's "allocs" profile, sampled since the
// process started) beside it, the ".pprof" replaced by ".allocs.pprof".
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--server-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--server-cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		if a, err := os.Create(strings.TrimSuffix(path, ".pprof") + ".allocs.pprof"); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(a, 0)
			a.Close()
		}
	}, nil
}

// countCPUs counts the CPUs of a taskset list such as "0", "0,2" or "1-3".
func countCPUs(list string) (int, error) {
	n := 0
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return 0, fmt.Errorf("%q is not a CPU list like 0 or 0,2 or 1-3", list)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0, fmt.Errorf("%q is not a CPU list like 0 or 0,2 or 1-3", list)
			}
		}
		n += b - a + 1
	}
	return n, nil
}
