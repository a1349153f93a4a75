// SPDX-License-Identifier: MIT

package gldap

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestRun_ServesUntilStop(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	must(t, ln.Close())

	mux := newTestMux(t)
	must(t, mux.Bind(bindSuccess))
	s, err := NewServer(WithLogger(hclog.NewNullLogger()))
	must(t, err)
	must(t, s.Router(mux))
	ran := make(chan error, 1)
	go func() { ran <- s.Run(addr) }()
	waitFor(t, 5*time.Second, s.Ready)

	l := dialLDAP(t, addr)
	must(t, l.Bind("cn=admin", "secret"))
	must(t, s.Stop())
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestMaxConnections(t *testing.T) {
	logger, logs := bufferLogger(hclog.Warn)
	mux := newTestMux(t)
	must(t, mux.Bind(bindSuccess))
	s, addr := startServer(t, mux, WithMaxConnections(1), WithLogger(logger))

	first := dialLDAP(t, addr)
	must(t, first.Bind("cn=admin", "secret"))

	over := dialRaw(t, addr)
	over.send(1, simpleBindOp())
	over.expectClosed()
	if !strings.Contains(logs.String(), "connection limit reached") {
		t.Fatalf("rejected connection not logged: %s", logs.String())
	}

	// first still works, and its slot is freed when it closes
	must(t, first.Bind("cn=admin", "secret"))
	must(t, first.Unbind())
	waitFor(t, 5*time.Second, func() bool {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return len(s.conns) == 0
	})
	must(t, dialLDAP(t, addr).Bind("cn=admin", "secret"))
}

type temporaryError struct{}

func (temporaryError) Error() string   { return "temporary accept error" }
func (temporaryError) Timeout() bool   { return false }
func (temporaryError) Temporary() bool { return true }

// flakyListener fails its first accepts with errs before delegating.
type flakyListener struct {
	net.Listener
	errs    []error
	accepts atomic.Int32
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if n := int(l.accepts.Add(1)); n <= len(l.errs) {
		return nil, l.errs[n-1]
	}
	return l.Listener.Accept()
}

func TestServe_RetriesTemporaryAcceptErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	flaky := &flakyListener{Listener: ln, errs: []error{temporaryError{}, temporaryError{}, temporaryError{}}}
	mux := newTestMux(t)
	must(t, mux.Bind(bindSuccess))
	_, addr := startServerOn(t, flaky, mux)

	must(t, dialLDAP(t, addr).Bind("cn=admin", "secret"))
}

func TestServe_ReturnsPermanentAcceptErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	permanent := errors.New("permanent accept error")
	s, err := NewServer(WithLogger(hclog.NewNullLogger()))
	must(t, err)
	err = s.Serve(&flakyListener{Listener: ln, errs: []error{fmt.Errorf("wrapped: %w", permanent)}})
	if !errors.Is(err, permanent) {
		t.Fatalf("expected the accept error, got %v", err)
	}
}
