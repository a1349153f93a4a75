package integration

import (
	"io"
	"net"
	"sync"
	"testing"
)

// gate is a TCP relay between the replicas and slapd. Armed with a byte
// count, it stalls every connection that has carried that many bytes from
// slapd (a sync mid-read: the first pages arrived, the rest wait) until it
// is released, so a test can kill or stop a leader in the middle of a run
// however fast the machine reads. Small exchanges (binds of sign-ins) stay
// under the count and pass.
type gate struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	after    int64         // stall a connection after this many bytes from slapd; 0: never
	open     chan struct{} // closed by release
	stalled  int           // connections waiting now
	stalledC chan struct{} // signalled when a connection stalls
}

func newGate(t testing.TB, target string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{ln: ln, target: target, open: make(chan struct{}), stalledC: make(chan struct{}, 64)}
	close(g.open)
	t.Cleanup(func() {
		ln.Close()
		g.release()
	})
	go g.serve()
	return g
}

func (g *gate) port() string {
	_, p, _ := net.SplitHostPort(g.ln.Addr().String())
	return p
}

// arm makes connections stall once they carried n bytes from slapd.
func (g *gate) arm(n int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.after = n
	select {
	case <-g.open:
		g.open = make(chan struct{})
	default:
	}
}

// release lets stalled connections go on and disarms the gate.
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.after = 0
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

// disarm lets new connections pass freely; stalled ones stay stalled
// until release.
func (g *gate) disarm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.after = 0
}

func (g *gate) serve() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		go g.relay(c)
	}
}

func (g *gate) relay(client net.Conn) {
	defer client.Close()
	up, err := net.Dial("tcp", g.target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, client); done <- struct{}{} }()
	go func() { g.down(client, up); done <- struct{}{} }()
	<-done
}

// down copies slapd's bytes to the client, stalling past the armed count.
func (g *gate) down(client, up net.Conn) {
	buf := make([]byte, 16<<10)
	var n int64
	for {
		k, err := up.Read(buf)
		if k > 0 {
			n += int64(k)
			g.mu.Lock()
			after, open := g.after, g.open
			stall := after > 0 && n >= after
			if stall {
				g.stalled++
			}
			g.mu.Unlock()
			if stall {
				select {
				case g.stalledC <- struct{}{}:
				default:
				}
				<-open
				g.mu.Lock()
				g.stalled--
				g.mu.Unlock()
			}
			if _, werr := client.Write(buf[:k]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
