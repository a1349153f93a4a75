// SPDX-License-Identifier: MIT

package gldap

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The timeouts below are generous multiples of the client's pauses so a
// loaded machine can't make a busy client look idle.

func TestIdleTimeout_BusyClientNotCutOff(t *testing.T) {
	const idle = time.Second
	for name, opt := range map[string]Option{
		"WithIdleTimeout": WithIdleTimeout(idle),
		"WithReadTimeout": WithReadTimeout(idle),
	} {
		t.Run(name, func(t *testing.T) {
			mux := newTestMux(t)
			must(t, mux.Bind(bindSuccess))
			_, addr := startServer(t, mux, opt)
			l := dialLDAP(t, addr)
			// keep going past the timeout, which upstream applied as an
			// absolute deadline from accept
			for end := time.Now().Add(idle + idle/2); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
				must(t, l.Bind("cn=admin", "secret"))
			}
		})
	}
}

func TestIdleTimeout_IdleClientClosed(t *testing.T) {
	const idle = 200 * time.Millisecond
	mux := newTestMux(t)
	must(t, mux.Bind(bindSuccess))
	_, addr := startServer(t, mux, WithIdleTimeout(idle))
	c := dialRaw(t, addr)
	c.send(1, simpleBindOp())
	c.mustRead()

	start := time.Now()
	c.expectClosed()
	if waited := time.Since(start); waited < idle/2 {
		t.Fatalf("closed after %v, before the idle timeout", waited)
	}
}

func TestIdleTimeout_OutstandingRequestIsNotIdle(t *testing.T) {
	var slow atomic.Bool
	slow.Store(true)
	mux := newTestMux(t)
	must(t, mux.Bind(func(w *ResponseWriter, r *Request) {
		if slow.Swap(false) {
			time.Sleep(1200 * time.Millisecond)
		}
		bindSuccess(w, r)
	}))
	_, addr := startServer(t, mux, WithIdleTimeout(400*time.Millisecond))
	l := dialLDAP(t, addr)
	must(t, l.Bind("cn=admin", "secret"))
	must(t, l.Bind("cn=admin", "secret"))
}

// A deadline that fires just after a slow handler answered is not the end of
// an idle period: that period starts at the answer. The first version of this
// patch only asked whether a request was still in flight, so a client that
// paused briefly after a slow answer was cut off.
func TestIdleTimeout_CountsFromTheAnswer(t *testing.T) {
	const idle = 300 * time.Millisecond
	var slow atomic.Bool
	slow.Store(true)
	mux := newTestMux(t)
	must(t, mux.Bind(func(w *ResponseWriter, r *Request) {
		if slow.Swap(false) {
			// answers before the deadline armed when this request was read
			time.Sleep(idle * 4 / 5)
		}
		bindSuccess(w, r)
	}))
	_, addr := startServer(t, mux, WithIdleTimeout(idle))
	l := dialLDAP(t, addr)
	must(t, l.Bind("cn=admin", "secret"))
	// past that deadline, well within the idle timeout after the answer
	time.Sleep(idle / 2)
	must(t, l.Bind("cn=admin", "secret"))
}

func TestWriteTimeout_PerWrite(t *testing.T) {
	mux := newTestMux(t)
	must(t, mux.Bind(bindSuccess))
	_, addr := startServer(t, mux, WithWriteTimeout(300*time.Millisecond))
	l := dialLDAP(t, addr)
	must(t, l.Bind("cn=admin", "secret"))
	time.Sleep(700 * time.Millisecond)
	must(t, l.Bind("cn=admin", "secret"))
}

func TestWriteTimeout_StalledClient(t *testing.T) {
	writeErr := make(chan error, 1)
	mux := newTestMux(t)
	must(t, mux.Search(func(w *ResponseWriter, r *Request) {
		value := strings.Repeat("x", 16<<10)
		for i := 0; i < 8<<10; i++ { // up to 128 MiB, far beyond socket buffers
			if err := w.Write(r.NewSearchResponseEntry("cn=e,dc=y", WithAttributes(map[string][]string{"description": {value}}))); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}))
	_, addr := startServer(t, mux, WithWriteTimeout(200*time.Millisecond))
	c := dialRaw(t, addr)
	c.send(1, searchOp(t, "dc=y"))
	// never read: the server's writes must time out rather than block
	select {
	case err := <-writeErr:
		if err == nil {
			t.Fatal("writes to a stalled client never failed")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("write to a stalled client blocked")
	}
	must(t, dialLDAP(t, addr).Unbind())
}
