// SPDX-License-Identifier: MIT

package gldap

import (
	"net"
	"sync"
	"testing"
	"time"
)

// The idle timeout in these tests is far longer than any test runs, so a
// connection closed within it was closed by the limit under test.
const longIdle = time.Minute

// TestFirstRequestTimeout: a connection that sends nothing is closed after
// the first-request timeout, not the idle timeout; one that has sent a
// request may then wait longer than that.
func TestFirstRequestTimeout(t *testing.T) {
	const first = 300 * time.Millisecond
	mux := newTestMux(t)
	must(t, mux.Bind(bindSuccess))
	_, addr := startServer(t, mux, WithLimits(Limits{IdleTimeout: longIdle, FirstRequestTimeout: first}))

	active := dialRaw(t, addr)
	active.send(1, simpleBindOp())
	active.mustRead()

	silent := dialRaw(t, addr)
	start := time.Now()
	silent.expectClosed()
	if waited := time.Since(start); waited < first/2 {
		t.Fatalf("closed after %v, before the first-request timeout", waited)
	}

	time.Sleep(2 * first)
	active.send(2, simpleBindOp())
	if _, _, code := resultOf(t, active.mustRead()); code != ResultSuccess {
		t.Fatalf("bind after a pause: code %d", code)
	}
}

// TestMessageTimeout: a client sending its request a byte at a time is cut
// off after the message timeout, though each byte comes well within the
// idle timeout; a large request sent at once still gets through.
func TestMessageTimeout(t *testing.T) {
	const msg = 300 * time.Millisecond
	mux := newTestMux(t)
	must(t, mux.Bind(bindSuccess))
	must(t, mux.Search(func(w *ResponseWriter, r *Request) {
		_ = w.Write(r.NewSearchDoneResponse(WithResponseCode(ResultSuccess)))
	}))
	_, addr := startServer(t, mux, WithLimits(Limits{IdleTimeout: longIdle, MessageTimeout: msg}))

	big := dialRaw(t, addr)
	big.send(1, searchOp(t, "dc="+string(make([]byte, 64<<10))))
	if _, _, code := resultOf(t, big.mustRead()); code != ResultSuccess {
		t.Fatalf("large search: code %d", code)
	}

	// About 40 bytes at a third of the timeout each: without the limit
	// the request completes after some 13 timeouts and is answered.
	slow := dialRaw(t, addr)
	for _, b := range message(1, simpleBindOp()) {
		if _, err := slow.Write([]byte{b}); err != nil {
			break // closed, as it should be
		}
		time.Sleep(msg / 3)
	}
	slow.expectClosed()
}

// refusals records what WithOnRefuse reports.
type refusals struct {
	mu  sync.Mutex
	got []RefuseReason
}

func (r *refusals) record(_ net.Addr, reason RefuseReason) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, reason)
}

func (r *refusals) reasons() []RefuseReason {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RefuseReason(nil), r.got...)
}

// dialFrom connects to addr from the loopback address local.
func dialFrom(t *testing.T, local, addr string) *rawConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	must(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{t: t, Conn: c}
}

// bound asserts c is served: a bind succeeds.
func (c *rawConn) bound(id int64) {
	c.t.Helper()
	c.send(id, simpleBindOp())
	if _, _, code := resultOf(c.t, c.mustRead()); code != ResultSuccess {
		c.t.Fatalf("bind: code %d", code)
	}
}

// TestMaxConnectionsPerAddress: the N+1th connection from one address is
// refused while another address still connects, and a closed connection
// frees its address's slot.
func TestMaxConnectionsPerAddress(t *testing.T) {
	var refused refusals
	mux := newTestMux(t)
	must(t, mux.Bind(bindSuccess))
	s, addr := startServer(t, mux, WithLimits(Limits{MaxConnectionsPerAddress: 2}), WithOnRefuse(refused.record))

	first := dialFrom(t, "127.0.0.1", addr)
	first.bound(1)
	dialFrom(t, "127.0.0.1", addr).bound(1)
	dialFrom(t, "127.0.0.1", addr).expectClosed()
	if got := refused.reasons(); len(got) != 1 || got[0] != RefusedPerAddress {
		t.Fatalf("refusals %v, want one %s", got, RefusedPerAddress)
	}
	dialFrom(t, "127.0.0.2", addr).bound(1)

	must(t, first.Close())
	waitFor(t, 5*time.Second, func() bool {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return s.perAddress[addrKey(first.LocalAddr())] == 1
	})
	dialFrom(t, "127.0.0.1", addr).bound(1)
}

// TestIdleConnectionsDoNotStarveClients: connections that never send a
// byte fill every slot only until the first-request timeout; a real client
// then gets in, and meanwhile the per-address cap kept slots for others.
func TestIdleConnectionsDoNotStarveClients(t *testing.T) {
	const first = 300 * time.Millisecond
	mux := newTestMux(t)
	must(t, mux.Bind(bindSuccess))
	_, addr := startServer(t, mux, WithLimits(Limits{
		IdleTimeout: longIdle, FirstRequestTimeout: first, MaxConnections: 20, MaxConnectionsPerAddress: 10,
	}))
	for range 30 {
		c, err := net.Dial("tcp", addr) // from 127.0.0.1; 20 are refused
		must(t, err)
		t.Cleanup(func() { _ = c.Close() })
	}
	dialFrom(t, "127.0.0.2", addr).bound(1)
	waitFor(t, 10*time.Second, func() bool {
		c := dialFrom(t, "127.0.0.1", addr)
		c.send(1, simpleBindOp())
		p, err := c.read()
		return err == nil && p != nil
	})
}

// TestSetLimits: limits changed on a running server apply to new
// connections and to the next wait of open ones.
func TestSetLimits(t *testing.T) {
	var refused refusals
	mux := newTestMux(t)
	must(t, mux.Bind(bindSuccess))
	s, addr := startServer(t, mux, WithLimits(Limits{IdleTimeout: longIdle, MaxConnections: 1}), WithOnRefuse(refused.record))

	open := dialRaw(t, addr)
	open.bound(1)
	dialRaw(t, addr).expectClosed()
	if got := refused.reasons(); len(got) != 1 || got[0] != RefusedMaxConnections {
		t.Fatalf("refusals %v, want one %s", got, RefusedMaxConnections)
	}

	s.SetLimits(Limits{IdleTimeout: 300 * time.Millisecond, MaxConnections: 2})
	if got := s.Limits().MaxConnections; got != 2 {
		t.Fatalf("Limits().MaxConnections = %d", got)
	}
	dialRaw(t, addr).bound(1)
	// The open connection takes the shorter idle timeout with its next wait.
	open.bound(2)
	open.expectClosed()
}
