package redistest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy relays TCP connections to a server and delays what the server
// sends back by a settable time: a slow reply, as a loaded Redis or
// network gives one. It is closed when the test ends.
type Proxy struct {
	Addr  string
	delay atomic.Int64 // ns
	l     net.Listener
	wg    sync.WaitGroup
}

// StartProxy relays connections on a free loopback port to target.
func StartProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{Addr: l.Addr().String(), l: l}
	p.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.relay(c, target) })
		}
	})
	tb.Cleanup(func() { l.Close(); p.wg.Wait() })
	return p
}

// SetReplyDelay delays every reply sent from now on by d.
func (p *Proxy) SetReplyDelay(d time.Duration) { p.delay.Store(int64(d)) }

func (p *Proxy) relay(client net.Conn, target string) {
	defer client.Close()
	server, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer server.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(server, client) // ends when either side closes
		server.Close()
		close(done)
	}()
	type chunk struct {
		at time.Time
		b  []byte
	}
	chunks := make(chan chunk, 64)
	go func() {
		defer close(chunks)
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 {
				chunks <- chunk{at: time.Now().Add(time.Duration(p.delay.Load())), b: append([]byte(nil), buf[:n]...)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range chunks {
		time.Sleep(time.Until(c.at))
		if _, err := client.Write(c.b); err != nil {
			break
		}
	}
	client.Close()
	<-done
}
