// SPDX-License-Identifier: MIT

package gldap

import (
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// countingListener counts the writes made to the connections it accepts.
type countingListener struct {
	net.Listener
	writes atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, writes: &l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

func writeEntries(w *ResponseWriter, r *Request, n int, value string) {
	for i := 0; i < n; i++ {
		_ = w.Write(r.NewSearchResponseEntry(fmt.Sprintf("cn=%d,dc=y", i), WithAttributes(map[string][]string{"description": {value}})))
	}
}

func TestSearchEntries_BufferedUntilDone(t *testing.T) {
	mux := newTestMux(t)
	must(t, mux.Search(func(w *ResponseWriter, r *Request) {
		writeEntries(w, r, 100, "small")
		_ = w.Write(r.NewSearchDoneResponse(WithResponseCode(ResultSuccess)))
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	counting := &countingListener{Listener: ln}
	_, addr := startServerOn(t, counting, mux)

	res, err := dialLDAP(t, addr).Search(ldap.NewSearchRequest("dc=y", ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", nil, nil))
	must(t, err)
	if len(res.Entries) != 100 {
		t.Fatalf("got %d entries", len(res.Entries))
	}
	if n := counting.writes.Load(); n != 1 {
		t.Fatalf("100 entries + done took %d writes, want 1", n)
	}
}

func TestSearchEntries_FlushedPastThreshold(t *testing.T) {
	release := make(chan struct{})
	mux := newTestMux(t)
	must(t, mux.Search(func(w *ResponseWriter, r *Request) {
		writeEntries(w, r, 100, strings.Repeat("x", 1024)) // ~100 KiB
		<-release
		_ = w.Write(r.NewSearchDoneResponse(WithResponseCode(ResultSuccess)))
	}))
	_, addr := startServer(t, mux)
	c := dialRaw(t, addr)
	c.send(1, searchOp(t, "dc=y"))

	// past ~32 KiB entries go out before the handler finishes
	if _, tag, _ := resultOf(t, c.mustRead()); tag != ApplicationSearchResultEntry {
		t.Fatalf("expected an entry, got tag %d", tag)
	}
	close(release)
	for entries := 1; ; {
		_, tag, code := resultOf(t, c.mustRead())
		if tag == ApplicationSearchResultEntry {
			entries++
			continue
		}
		if tag != ApplicationSearchResultDone || code != ResultSuccess || entries != 100 {
			t.Fatalf("got tag %d code %d after %d entries", tag, code, entries)
		}
		break
	}
}

func TestSearchEntries_FlushedWhenHandlerReturns(t *testing.T) {
	mux := newTestMux(t)
	must(t, mux.Search(func(w *ResponseWriter, r *Request) {
		writeEntries(w, r, 3, "small") // and no SearchResultDone
	}))
	_, addr := startServer(t, mux)
	c := dialRaw(t, addr)
	c.send(1, searchOp(t, "dc=y"))
	for i := 0; i < 3; i++ {
		if _, tag, _ := resultOf(t, c.mustRead()); tag != ApplicationSearchResultEntry {
			t.Fatalf("expected an entry, got tag %d", tag)
		}
	}
}
