// SPDX-License-Identifier: MIT

package gldap

import (
	"crypto/tls"
	"net"
	"sync"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// peerRecorder is a bind handler recording what the request says about its
// client.
type peerRecorder struct {
	mu     sync.Mutex
	remote net.Addr
	isTLS  bool
}

func (p *peerRecorder) bind(w *ResponseWriter, r *Request) {
	p.mu.Lock()
	p.remote, p.isTLS = r.RemoteAddr(), r.IsTLS()
	p.mu.Unlock()
	bindSuccess(w, r)
}

func (p *peerRecorder) get() (net.Addr, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.remote, p.isTLS
}

func TestRequest_RemoteAddrPlain(t *testing.T) {
	rec := &peerRecorder{}
	mux := newTestMux(t)
	must(t, mux.Bind(rec.bind))
	_, addr := startServer(t, mux)

	c, err := net.Dial("tcp", addr)
	must(t, err)
	l := ldap.NewConn(c, false)
	l.Start()
	defer l.Close()
	must(t, l.Bind("cn=admin", "secret"))

	remote, isTLS := rec.get()
	if remote == nil || remote.String() != c.LocalAddr().String() {
		t.Fatalf("RemoteAddr: got %v, want %v", remote, c.LocalAddr())
	}
	if isTLS {
		t.Fatal("IsTLS on a plain connection")
	}
}

func TestRequest_IsTLSOnLDAPSListener(t *testing.T) {
	rec := &peerRecorder{}
	mux := newTestMux(t)
	must(t, mux.Bind(rec.bind))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	_, addr := startServerOn(t, tls.NewListener(ln, testTLSConfig(t)), mux)

	l, err := ldap.DialURL("ldaps://"+addr, ldap.DialWithTLSConfig(&tls.Config{InsecureSkipVerify: true}))
	must(t, err)
	defer l.Close()
	must(t, l.Bind("cn=admin", "secret"))

	if remote, isTLS := rec.get(); !isTLS || remote == nil {
		t.Fatalf("got IsTLS %v, RemoteAddr %v", isTLS, remote)
	}
}

func TestRequest_IsTLSAfterStartTLS(t *testing.T) {
	serverTLS := testTLSConfig(t)
	rec := &peerRecorder{}
	mux := newTestMux(t)
	must(t, mux.Bind(rec.bind))
	must(t, mux.ExtendedOperation(func(w *ResponseWriter, r *Request) {
		_ = w.Write(r.NewExtendedResponse(WithResponseCode(ResultSuccess)))
		if err := r.StartTLS(serverTLS); err != nil {
			t.Errorf("StartTLS: %v", err)
		}
	}, ExtendedOperationStartTLS))
	_, addr := startServer(t, mux)

	l := dialLDAP(t, addr)
	must(t, l.Bind("cn=admin", "secret"))
	if _, isTLS := rec.get(); isTLS {
		t.Fatal("IsTLS before StartTLS")
	}
	must(t, l.StartTLS(&tls.Config{InsecureSkipVerify: true}))
	must(t, l.Bind("cn=admin", "secret"))
	if _, isTLS := rec.get(); !isTLS {
		t.Fatal("IsTLS false after StartTLS")
	}
}
