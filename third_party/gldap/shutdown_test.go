// SPDX-License-Identifier: MIT

package gldap

import (
	"net"
	"testing"
	"time"
)

// stopWithin calls s.Stop and fails the test if it takes longer than d.
func stopWithin(t *testing.T, s *Server, d time.Duration) {
	t.Helper()
	start := time.Now()
	must(t, s.Stop())
	if took := time.Since(start); took > d {
		t.Fatalf("Stop took %v, want < %v", took, d)
	}
}

func TestStop_IdleClient(t *testing.T) {
	mux := newTestMux(t)
	must(t, mux.Bind(bindSuccess))
	s, addr := startServer(t, mux)
	c := dialRaw(t, addr)
	c.send(1, simpleBindOp())
	c.mustRead()

	stopWithin(t, s, time.Second)
	expectNotice(t, c.mustRead(), ResultUnavailable)
	c.expectClosed()
}

func TestStop_IdleClientWithIdleTimeout(t *testing.T) {
	mux := newTestMux(t)
	must(t, mux.Bind(bindSuccess))
	s, addr := startServer(t, mux, WithIdleTimeout(time.Hour))
	dialLDAP(t, addr)
	c := dialRaw(t, addr)
	c.send(1, simpleBindOp())
	c.mustRead()

	stopWithin(t, s, time.Second)
}

func TestStop_WaitsForInFlightRequest(t *testing.T) {
	started := make(chan struct{})
	mux := newTestMux(t)
	must(t, mux.Bind(func(w *ResponseWriter, r *Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		bindSuccess(w, r)
	}))
	s, addr := startServer(t, mux)
	c := dialRaw(t, addr)
	c.send(1, simpleBindOp())
	<-started

	stopWithin(t, s, 2*time.Second)
	if id, tag, code := resultOf(t, c.mustRead()); id != 1 || tag != ApplicationBindResponse || code != ResultSuccess {
		t.Fatalf("in-flight request: got id %d tag %d code %d", id, tag, code)
	}
	expectNotice(t, c.mustRead(), ResultUnavailable)
	c.expectClosed()
}

func TestStop_ForceClosesAfterShutdownTimeout(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	mux := newTestMux(t)
	must(t, mux.Bind(func(w *ResponseWriter, r *Request) {
		close(started)
		<-release
	}))
	s, addr := startServer(t, mux, WithShutdownTimeout(200*time.Millisecond))
	t.Cleanup(func() { close(release) })
	c := dialRaw(t, addr)
	c.send(1, simpleBindOp())
	<-started

	stopWithin(t, s, 2*time.Second)
	c.expectClosed()
}

func TestStop_BeforeServe(t *testing.T) {
	s, err := NewServer()
	must(t, err)
	must(t, s.Stop())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	if err := s.Serve(ln); err != nil {
		t.Fatalf("Serve after Stop: %v", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("listener still open after Serve returned")
	}
}
