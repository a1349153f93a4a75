package hub

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dirgate/dirgate/agent/wire"
	"github.com/dirgate/dirgate/cache"
	dirsync "github.com/dirgate/dirgate/sync"
)

// serverFixture is newFixture served by the hub's own Server (its
// timeouts and HTTP/2 settings), with cfg edited by edit.
func serverFixture(t *testing.T, edit func(*Config)) *fixture {
	t.Helper()
	ca, store := newCAAndStore(t)
	var err error
	f := &fixture{store: store, ca: ca}
	cfg := Config{CA: ca, Replica: "r1"}
	if edit != nil {
		edit(&cfg)
	}
	if f.h, err = New(cfg, store, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	srv, err := f.h.Server([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTLS(ln, "", "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	f.url = "https://" + ln.Addr().String()
	return f
}

func heapMiB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

// openConnect opens a connect stream of cl whose body starts with first
// and then waits; it returns the response's status (0 while none came)
// and closes the stream at the test's end.
func openConnect(t *testing.T, f *fixture, cl *http.Client, first []byte) *atomic.Int32 {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	req, _ := http.NewRequest(http.MethodPost, f.url+"/agent/v1/connect", pr)
	var status atomic.Int32
	go func() {
		if resp, err := cl.Do(req); err == nil {
			status.Store(int32(resp.StatusCode))
			resp.Body.Close()
		}
	}()
	go pw.Write(first)
	return &status
}

// An enrolled agent's connect streams that announce a large hello and
// send one byte of it cost the hub little memory (8 MiB each before), and
// only a few may wait for their hello at once.
func TestPreHelloBounded(t *testing.T) {
	f := serverFixture(t, func(c *Config) { c.HelloTimeout = time.Minute })
	a := f.newAgent(t, "ad")
	cl := f.client(&a.cert)
	announce := func(n uint32) []byte { return append(binary.BigEndian.AppendUint32(nil, n), '{') }
	before := heapMiB()
	const n = 25
	for range n {
		openConnect(t, f, cl, announce(wire.MaxFrame))
	}
	time.Sleep(2 * time.Second)
	if grown := heapMiB() - before; grown > 50 {
		t.Fatalf("the hub's heap grew by %.0f MiB for %d connect streams of 5 bytes", grown, n)
	}

	var waiting []*atomic.Int32
	for range maxHelloPerAgent {
		waiting = append(waiting, openConnect(t, f, cl, announce(100)))
	}
	waitFor(t, "the streams to wait for their hello", func() bool {
		f.h.hellos.mu.Lock()
		defer f.h.hellos.mu.Unlock()
		return f.h.hellos.byAgent[a.id] == maxHelloPerAgent
	})
	extra := openConnect(t, f, cl, announce(100))
	waitFor(t, "the refusal of one stream too many", func() bool { return extra.Load() == http.StatusTooManyRequests })
	for _, s := range waiting {
		if s.Load() != 0 {
			t.Fatalf("a stream within the limit was answered %d", s.Load())
		}
	}
}

// A connect stream that never says hello is answered after HelloTimeout.
func TestHelloTimeout(t *testing.T) {
	f := serverFixture(t, func(c *Config) { c.HelloTimeout = 300 * time.Millisecond })
	a := f.newAgent(t, "ad")
	s := openConnect(t, f, f.client(&a.cert), nil)
	waitFor(t, "the hello timeout", func() bool { return s.Load() == http.StatusBadRequest })
}

// Connections without a stream (an HTTP/2 client that sends its preface
// and nothing, an idle HTTP/1.1 keep-alive) are closed after IdleTimeout;
// before, they were kept forever. An agent's connection stays.
func TestIdleConnectionsClosed(t *testing.T) {
	f := serverFixture(t, func(c *Config) { c.IdleTimeout = time.Second; c.Heartbeat = 5 * time.Second })
	a := f.newAgent(t, "ad")
	a.connect(t, nil, answerChecks(0))
	addr := f.url[len("https://"):]
	closed := map[string]chan struct{}{}
	for proto, first := range map[string][]byte{
		"h2":       append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 0, 0, 0, 4, 0, 0, 0, 0, 0),
		"http/1.1": []byte("GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"),
	} {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{proto}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write(first); err != nil {
			t.Fatal(err)
		}
		ch := make(chan struct{})
		closed[proto] = ch
		go func() { io.Copy(io.Discard, c); close(ch) }()
	}
	for proto, ch := range closed {
		select {
		case <-ch:
		case <-time.After(20 * time.Second):
			t.Fatalf("an idle %s connection is still open after 20s", proto)
		}
	}
	if n, _ := f.h.Connected("ad"); n != 1 {
		t.Fatalf("the agent's connection was closed with the idle ones")
	}
}

// While the engine is slow over a sync read's batches, the agent's check
// answers still reach the hub: the reply stream's unread data used to
// fill the HTTP/2 connection's receive window, which the connection
// stream shares.
func TestChecksNotBlockedBehindReplyStream(t *testing.T) {
	f := serverFixture(t, nil)
	a := f.newAgent(t, "ad")
	cl := f.client(&a.cert) // one HTTP/2 connection for every stream, as a real agent's
	a.cl = cl
	a.connect(t, nil, func(ac *agentConn, id uint64, req *wire.Request) {
		if req.Kind == wire.KindCheck {
			ac.result(id, &wire.Result{Host: "dc1"})
			return
		}
		pr, pw := io.Pipe()
		go func() {
			bw := wire.NewBatchWriter(wire.NewWriter(pw), id)
			for i := range 30000 {
				e := &cache.Entry{Connector: "ad", ID: "u" + strconv.Itoa(i), DN: "cn=user", Kind: cache.KindUser,
					Attrs: []cache.Attr{{Name: "description", Values: []string{string(make([]byte, 200))}}}}
				if bw.Entry(e) != nil {
					return
				}
			}
			bw.Finish(&wire.Result{Listing: &dirsync.Listing{Host: "dc1"}})
			pw.Close()
		}()
		if resp, err := cl.Post(f.url+"/agent/v1/reply/"+strconv.FormatUint(id, 10), "application/octet-stream", pr); err == nil {
			resp.Body.Close()
		}
	})
	check := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		call, err := f.h.Do(ctx, "ad", &wire.Request{Kind: wire.KindCheck, Check: &wire.CheckRequest{Password: "x"}})
		if err != nil {
			return err
		}
		_, err = call.Wait(ctx)
		return err
	}
	if err := check(); err != nil {
		t.Fatalf("a check with no read running: %v", err)
	}
	call, err := f.h.Do(context.Background(), "ad", &wire.Request{Kind: wire.KindFull})
	if err != nil {
		t.Fatal(err)
	}
	busy, release := make(chan struct{}), make(chan struct{})
	streamDone := make(chan error, 1)
	go func() {
		first := true
		_, err := call.Stream(context.Background(), func(*cache.Entry) error {
			if first { // the engine busy with a batch while the agent sends on
				first = false
				close(busy)
				<-release
			}
			return nil
		}, nil)
		streamDone <- err
	}()
	<-busy
	time.Sleep(time.Second) // the agent fills whatever window it has
	for i := range 3 {
		if err := check(); err != nil {
			t.Errorf("check %d while the engine is busy with a batch: %v", i, err)
		}
	}
	close(release)
	if err := <-streamDone; err != nil {
		t.Fatalf("the full read: %v", err)
	}
}

// The hub sends the replica list again on every ping, so that an agent
// learns of a replica that joined after it connected.
func TestPingsCarryPeers(t *testing.T) {
	var peers atomic.Pointer[[]string]
	peers.Store(&[]string{"https://r1"})
	f := newFixture(t, time.Hour)
	f.h.cfg.Peers = func() []string { return *peers.Load() }
	a := f.newAgent(t, "ad")
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	w := wire.NewWriter(pw)
	go w.Write(&wire.Message{Type: wire.TypeHello, Hello: &wire.Hello{AgentID: a.id, Connector: a.connector}})
	req, _ := http.NewRequest(http.MethodPost, f.url+"/agent/v1/connect", pr)
	resp, err := f.client(&a.cert).Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("connect: %v %v", resp, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	rd := wire.NewReader(resp.Body)
	if m, err := rd.Read(); err != nil || !slices.Equal(m.Welcome.Peers, []string{"https://r1"}) {
		t.Fatalf("welcome: %+v %v", m, err)
	}
	peers.Store(&[]string{"https://r1", "https://r2"})
	for deadline := time.Now().Add(10 * time.Second); ; {
		m, err := rd.Read()
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("no ping named the new replica: %v", err)
		}
		if m.Type != wire.TypePing {
			continue
		}
		if slices.Equal(m.Peers, []string{"https://r1", "https://r2"}) {
			return
		}
		go w.Write(&wire.Message{Type: wire.TypePong, ID: m.ID, Sent: m.Sent})
	}
}

// Do sends the time left as Timeout besides the deadline on the hub's
// clock, which the agent's clock may read differently.
func TestDoSendsTimeout(t *testing.T) {
	f := newFixture(t, time.Hour)
	a := f.newAgent(t, "ad")
	got := make(chan *wire.Request, 1)
	a.connect(t, nil, func(ac *agentConn, id uint64, req *wire.Request) {
		got <- req
		ac.result(id, &wire.Result{})
	})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	call, err := f.h.Do(ctx, "ad", &wire.Request{Kind: wire.KindCheck, Check: &wire.CheckRequest{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := call.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if req := <-got; req.Timeout <= 10*time.Second || req.Timeout > 20*time.Second || req.Deadline.IsZero() {
		t.Fatalf("request sent with timeout %v, deadline %v", req.Timeout, req.Deadline)
	}
}
