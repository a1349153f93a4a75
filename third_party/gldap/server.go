// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Server is an ldap server that you can add a mux (multiplexer) router to and
// then run it to accept and process requests.
//
// dirgate patches 6, 7, 12 and 16: listeners (was listener), conns,
// nextConnID, limits (was readTimeout), perAddress, onRefuse, serialRequests,
// shutdownTimeout and maxPacketSize.
type Server struct {
	mu              sync.RWMutex
	logger          hclog.Logger
	connWg          sync.WaitGroup
	listeners       map[net.Listener]struct{} // guarded by mu
	conns           map[*conn]struct{}        // guarded by mu
	nextConnID      atomic.Int64
	listenerReady   bool
	router          *Mux
	limits          atomic.Pointer[Limits]
	perAddress      map[netip.Addr]int // open connections by client address; guarded by mu
	onRefuse        OnRefuseHandler
	onProtocolError OnProtocolErrorHandler // dirgate patch 18
	serialRequests  bool
	writeTimeout    time.Duration
	shutdownTimeout time.Duration
	maxPacketSize   int
	onCloseHandler  OnCloseHandler

	disablePanicRecovery bool
	shutdownCancel       context.CancelFunc
	shutdownCtx          context.Context
}

// NewServer creates a new ldap server
//
// Options supported:
// - WithLogger allows you pass a logger with whatever hclog.Level you wish including hclog.Off to turn off all logging
// - WithIdleTimeout (alias WithReadTimeout) closes connections idle for longer than the timeout
// - WithWriteTimeout bounds every write (flush) to a connection
// - WithShutdownTimeout bounds how long Stop waits for in-flight requests
// - WithMaxConnections caps the number of concurrent connections
// - WithLimits sets the idle, first-request and message timeouts and the connection caps at once
// - WithOnRefuse reports connections refused for a limit
// - WithMaxPacketSize caps the size of a single request
// - WithDisablePanicRecovery lets handler panics crash the process (debugging)
// - WithOnClose will define a callback the server will call every time a connection is closed
func NewServer(opt ...Option) (*Server, error) {
	cancelCtx, cancel := context.WithCancel(context.Background())
	opts := getConfigOpts(opt...)

	if opts.withLogger == nil {
		opts.withLogger = hclog.New(&hclog.LoggerOptions{
			Name:  "Server-logger",
			Level: hclog.Error,
		})
	}

	s := &Server{
		router:               &Mux{}, // TODO: a better default router
		logger:               opts.withLogger,
		listeners:            map[net.Listener]struct{}{},
		conns:                map[*conn]struct{}{},
		perAddress:           map[netip.Addr]int{},
		onRefuse:             opts.withOnRefuse,
		onProtocolError:      opts.withOnProtocolError,
		shutdownCancel:       cancel,
		shutdownCtx:          cancelCtx,
		writeTimeout:         opts.withWriteTimeout,
		serialRequests:       opts.withSerialRequests,
		shutdownTimeout:      opts.withShutdownTimeout,
		maxPacketSize:        opts.withMaxPacketSize,
		disablePanicRecovery: opts.withDisablePanicRecovery,
		onCloseHandler:       opts.withOnClose,
	}
	// dirgate patch 16
	s.SetLimits(opts.withLimits)
	return s, nil
}

// Index of rightmost occurrence of b in s.
func last(s string, b byte) int {
	i := len(s)
	for i--; i >= 0; i-- {
		if s[i] == b {
			break
		}
	}
	return i
}

// validateAddrPort will not only validate the address+port, but if it's an ipv6
// literal without proper brackets, it will add them.
func validateAddrPort(addrPort string) (string, error) {
	const op = "gldap.parseAddr"

	lastColon := last(addrPort, ':')
	if lastColon < 0 {
		return "", fmt.Errorf("%s: missing port in addr \"%s\": %w", op, addrPort, ErrInvalidParameter)
	}
	rawHost := addrPort[0:lastColon]
	rawPort := addrPort[lastColon+1:]
	switch {
	case len(rawPort) == 0:
		return "", fmt.Errorf("%s: missing port in addr \"%s\": %w", op, addrPort, ErrInvalidParameter)
	case len(rawHost) == 0:
		return fmt.Sprintf(":%s", rawPort), nil
	case addrPort[0] == '[' && addrPort[len(addrPort)-1] == ']':
		return "", fmt.Errorf("%s: missing port in ipv6 addr : \"%s\": %w", op, addrPort, ErrInvalidParameter)
	}
	// ipv6 literal with proper brackets
	if rawHost[0] == '[' {
		// Expect the first ']' just before the last ':'.
		end := strings.IndexByte(rawHost, ']')
		if end < 0 {
			return "", fmt.Errorf("%s: missing ']' in ipv6 address \"%s\": %w", op, addrPort, ErrInvalidParameter)
		}
		// Note: netip.ParseAddr requires ipv6 addresses without brackets []
		trimmedIp := strings.Trim(rawHost, "[]")
		if _, err := netip.ParseAddr(trimmedIp); err != nil {
			// if net.ParseIP(trimmedIp) == nil {
			return "", fmt.Errorf("%s: invalid ipv6 address \"%s\": %w", op, rawHost, err)
		}
		// ipv6 literal has enclosing brackets, and it's a valid ipv6 address, so we're good
		return fmt.Sprintf("%s:%s", rawHost, rawPort), nil
	}

	// see if we're dealing with a hostname
	ctx, cancel := context.WithTimeout(context.Background(), 1*time.Second)
	defer cancel()
	hostnames, _ := net.DefaultResolver.LookupHost(ctx, rawHost)
	if len(hostnames) > 0 {
		if rawHost == "::1" {
			// special case for localhost
			return fmt.Sprintf("[%s]:%s", rawHost, rawPort), nil
		}
		return fmt.Sprintf("%s:%s", rawHost, rawPort), nil
	}

	lastColon = last(rawHost, ':')
	if lastColon >= 0 {
		// ipv6 literal without proper brackets.  Note: netip.ParseAddr requires
		// ipv6 addresses without brackets []
		if _, err := netip.ParseAddr(rawHost); err != nil {
			return "", fmt.Errorf("%s: invalid ipv6 address + port \"%s\": %w", op, addrPort, err)
		}
		return fmt.Sprintf("[%s]:%s", rawHost, rawPort), nil
	}
	// ipv4
	if net.ParseIP(rawHost) == nil {
		return "", fmt.Errorf("%s: invalid IP address \"%s\": %w", op, rawHost, ErrInvalidParameter)
	}
	return fmt.Sprintf("%s:%s", rawHost, rawPort), nil
}

// Run will listen on addr and serve requests until Stop is called; see Serve.
//
// Options supported: WithTLSConfig (serve LDAPS on addr)
func (s *Server) Run(addr string, opt ...Option) error {
	const op = "gldap.(Server).Run"
	opts := getConfigOpts(opt...)

	var err error
	addr, err = validateAddrPort(addr)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: unable to listen to addr %s: %w", op, addr, err)
	}
	if opts.withTLSConfig != nil {
		s.logger.Debug("setting up TLS listener", "op", op)
		ln = tls.NewListener(ln, opts.withTLSConfig)
	}
	// dirgate patch 7: Run is Serve on a new listener.
	return s.Serve(ln)
}

// Serve accepts connections on ln and serves their requests until Stop is
// called, when it returns nil; ln is closed when Serve returns.  Connections accepted from a crypto/tls
// listener report Request.IsTLS() == true.  Serve may be called concurrently
// with several listeners (e.g. LDAP and LDAPS) which then share the router,
// the connection limit and Stop.  Temporary accept errors (e.g. EMFILE) are
// retried with a backoff from 5ms doubling to 1s, as net/http does; any other
// accept error is returned.
// dirgate patch 7: several listeners, accept backoff.
func (s *Server) Serve(ln net.Listener) error {
	const (
		op         = "gldap.(Server).Serve"
		minBackoff = 5 * time.Millisecond
		maxBackoff = time.Second
	)
	if ln == nil {
		return fmt.Errorf("%s: missing listener: %w", op, ErrInvalidParameter)
	}
	s.mu.Lock()
	if s.shutdownCtx.Err() != nil {
		s.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.listenerReady = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		_ = ln.Close()
	}()
	s.logger.Info("listening", "op", op, "addr", ln.Addr())

	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.shutdownCtx.Err() != nil {
				return nil
			}
			// Temporary is deprecated, but it is how net/http still tells
			// retryable accept errors such as EMFILE from fatal ones.
			if ne, ok := err.(net.Error); ok && ne.Temporary() { //nolint:staticcheck
				backoff = min(max(2*backoff, minBackoff), maxBackoff)
				s.logger.Error("accept error, retrying", "op", op, "backoff", backoff, "err", err)
				select {
				case <-time.After(backoff):
				case <-s.shutdownCtx.Done():
					return nil
				}
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				s.logger.Debug("accept on closed listener", "op", op)
				return nil
			}
			return fmt.Errorf("%s: error accepting conn: %w", op, err)
		}
		backoff = 0
		s.serveConn(c)
	}
}

// serveConn starts serving the newly accepted c, unless the server is
// stopping or at one of its connection limits, in which case c is closed.
// dirgate patches 7 and 16: the connection caps; upstream did this inline in Run.
func (s *Server) serveConn(c net.Conn) {
	const op = "gldap.(Server).serveConn"
	lim := s.limits.Load()
	addr := addrKey(c.RemoteAddr())
	s.mu.Lock()
	// Checking under mu orders connWg.Add before Stop's connWg.Wait.
	if s.shutdownCtx.Err() != nil {
		s.mu.Unlock()
		_ = c.Close()
		return
	}
	var refused RefuseReason
	switch {
	case lim.MaxConnections > 0 && len(s.conns) >= lim.MaxConnections:
		refused = RefusedMaxConnections
	case lim.MaxConnectionsPerAddress > 0 && addr.IsValid() && s.perAddress[addr] >= lim.MaxConnectionsPerAddress:
		refused = RefusedPerAddress
	}
	if refused != "" {
		s.mu.Unlock()
		// Reported before the close, so whoever sees the connection closed
		// (a test, a health check) also sees it counted.
		if s.onRefuse != nil {
			s.onRefuse(c.RemoteAddr(), refused)
		} else {
			s.logger.Warn("connection limit reached, closing new connection", "op", op, "remote", c.RemoteAddr(), "reason", refused)
		}
		_ = c.Close()
		return
	}
	if addr.IsValid() {
		s.perAddress[addr]++
	}
	connID := int(s.nextConnID.Add(1))
	conn := newConn(s, connID, c)
	s.conns[conn] = struct{}{}
	s.connWg.Add(1)
	s.mu.Unlock()
	s.logger.Debug("new connection accepted", "op", op, "conn", connID)

	go func() {
		defer func() {
			s.logger.Debug("connWg done", "op", op, "conn", connID)
			s.mu.Lock()
			delete(s.conns, conn)
			if addr.IsValid() {
				if s.perAddress[addr]--; s.perAddress[addr] == 0 {
					delete(s.perAddress, addr)
				}
			}
			s.mu.Unlock()
			s.connWg.Done()
			if s.onCloseHandler != nil {
				s.onCloseHandler(connID)
			}
		}()
		defer conn.close()

		if !s.disablePanicRecovery {
			// catch and report panics - we don't want it to crash the server if
			// handling a single conn causes a panic
			defer func() {
				if r := recover(); r != nil {
					s.logger.Error("Caught panic while serving request", "op", op, "conn", connID, "conn/req", fmt.Sprintf("%+v: %+v", c, r), "stack", string(debug.Stack()))
				}
			}()
		}
		conn.serveRequests()
	}()
}

// Ready will return true when the server is ready to accept connection
func (s *Server) Ready() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.listenerReady
}

// Stop a running ldap server: it closes the listeners, wakes up connections
// blocked waiting for their next request so they close at once, lets in-flight
// requests finish (each connection then gets a Notice of Disconnection) and
// returns when every connection is closed.  Connections still open after the
// shutdown timeout (WithShutdownTimeout, default 5s) are force-closed and Stop
// returns without waiting for their handlers to return.
// dirgate patch 6: Stop wakes idle readers and is bounded by the shutdown timeout.
func (s *Server) Stop() error {
	const op = "gldap.(Server).Stop"
	s.logger.Debug("shutting down")

	s.mu.Lock()
	// cancel before touching deadlines: a connection re-arming its idle
	// deadline checks shutdownCtx afterwards, so it can't miss the wake-up.
	s.shutdownCancel()
	var closeErr error
	for ln := range s.listeners {
		s.logger.Debug("closing listener", "addr", ln.Addr())
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			closeErr = errors.Join(closeErr, fmt.Errorf("%s: %w", op, err))
		}
		delete(s.listeners, ln)
	}
	for c := range s.conns {
		c.wakeReader()
	}
	s.mu.Unlock()

	s.logger.Debug("waiting on connections to close")
	done := make(chan struct{})
	go func() {
		s.connWg.Wait()
		close(done)
	}()
	timer := time.NewTimer(s.shutdownTimeout)
	defer timer.Stop()
	select {
	case <-done:
		s.logger.Debug("stopped")
	case <-timer.C:
		s.mu.RLock()
		s.logger.Warn("shutdown timeout reached, force-closing connections", "op", op, "open", len(s.conns))
		for c := range s.conns {
			c.forceClose()
		}
		s.mu.RUnlock()
	}
	return closeErr
}

// Router sets the mux (multiplexer) router for matching inbound requests
// to handlers.
func (s *Server) Router(r *Mux) error {
	const op = "gldap.(Server).HandleRoutes"
	if r == nil {
		return fmt.Errorf("%s: missing router: %w", op, ErrInvalidParameter)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.router = r
	return nil
}
