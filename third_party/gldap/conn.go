// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

// dirgate: this file is rewritten; upstream's conn.go shares only the shape of
// the read loop with it.  Each function is marked with the patches it carries.

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/hashicorp/go-hclog"
)

const (
	// flushThreshold is how many bytes of search result entries are buffered
	// before they are written out, so a search costs one write per ~32 KiB
	// rather than one per entry.
	// dirgate patch 9: flushThreshold, maxPooledBuffer and writeBufPool.
	flushThreshold = 32 << 10

	// maxPooledBuffer keeps buffers grown by a huge entry out of the pool.
	maxPooledBuffer = 4 * flushThreshold
)

// writeBufPool recycles connection write buffers: a buffer is only held while
// a connection has unflushed responses, so idle connections hold none.
var writeBufPool = sync.Pool{
	New: func() any {
		b := make([]byte, 0, flushThreshold)
		return &b
	},
}

// errProtocol marks a client message that isn't valid LDAP; the connection
// is answered with a Notice of Disconnection (protocolError) and closed.
// dirgate patches 4 and 8
var errProtocol = errors.New("protocol error")

// errShutdown is returned by the read loop when the server is stopping.
// dirgate patch 6
var errShutdown = errors.New("server stopping")

// conn is a connection to an ldap client
// dirgate patches 2, 5, 6, 8, 9, 12 and 16: every field but mu, connID,
// netConn, reader, logger, router, shutdownCtx, requestsWg and writerMu
// (upstream had a bufio.Writer where out and wbuf are).
type conn struct {
	mu sync.Mutex // guards netConn and reader, which StartTLS replaces

	connID      int
	netConn     net.Conn
	reader      *bufio.Reader
	logger      hclog.Logger
	router      *Mux
	shutdownCtx context.Context
	requestsWg  sync.WaitGroup

	// rawConn is the accepted conn.  Deadlines and forced closes go through it
	// because it underlies any TLS layer added by StartTLS, so they need no
	// locking against the swap of netConn.
	rawConn net.Conn
	// idleDeadline is the read deadline armIdleDeadline last set; only the
	// reading goroutine uses it.
	idleDeadline time.Time
	remoteAddr   net.Addr
	isTLS        atomic.Bool

	// inFlight counts dispatched requests whose handler hasn't returned: a
	// connection waiting on its own requests is not idle.
	inFlight atomic.Int64
	// lastDone is when the last dispatched handler returned, in nanoseconds
	// since born (monotonic clock); see idleLeft.
	lastDone atomic.Int64
	born     time.Time

	srv                  *Server     // for its limits, which SetLimits may change
	established          atomic.Bool // see Request.MarkEstablished; dirgate patch 17
	serialRequests       bool
	writeTimeout         time.Duration
	maxPacketSize        int
	disablePanicRecovery bool

	writerMu sync.Mutex // serializes responses from concurrent requests
	out      io.Writer  // guarded by writerMu; netConn as of the last StartTLS
	wbuf     *[]byte    // guarded by writerMu; pooled, nil when nothing is buffered
}

// newConn will create a new conn from an accepted net.Conn which will be used
// to serve requests to an ldap client.  The caller must hold s.mu.
// dirgate patches 5 to 9: takes its settings from the server and cannot fail (upstream validated its arguments).
func newConn(s *Server, connID int, netConn net.Conn) *conn {
	c := &conn{
		connID:               connID,
		netConn:              netConn,
		reader:               bufio.NewReader(netConn),
		out:                  netConn,
		rawConn:              netConn,
		remoteAddr:           netConn.RemoteAddr(),
		logger:               s.logger,
		router:               s.router,
		shutdownCtx:          s.shutdownCtx,
		srv:                  s,
		born:                 time.Now(),
		serialRequests:       s.serialRequests,
		writeTimeout:         s.writeTimeout,
		maxPacketSize:        s.maxPacketSize,
		disablePanicRecovery: s.disablePanicRecovery,
	}
	_, isTLS := netConn.(*tls.Conn)
	c.isTLS.Store(isTLS)
	return c
}

// serveRequests until the connection is closed, fails, idles out or the
// shutdownCtx is cancelled as the server stops.  Read errors are the client's
// doing (protocol errors, idle timeout, disconnects), so they end the
// connection with a debug line only.
// dirgate patches 4, 5, 6, 8, 12 and 16: abandon, deadlines, shutdown, protocol errors, serial requests.
func (c *conn) serveRequests() {
	const op = "gldap.serveRequests"

	requestID := 0
	for {
		requestID++
		w := newResponseWriter(c, requestID)
		r, err := c.readRequest(requestID)
		switch {
		case err == nil:
		case errors.Is(err, errShutdown):
			c.logger.Debug("received shutdown cancellation", "op", op, "conn", c.connID, "requestID", requestID)
			return
		case errors.Is(err, errProtocol):
			// dirgate patch 18: reported to the caller when it asks, so
			// that it can rate-limit the log.  Otherwise Info, not
			// debug: a client whose requests a server cannot read needs
			// an operator to see why it is disconnected.
			if h := c.srv.onProtocolError; h != nil {
				h(c.remoteAddr, err)
			} else {
				c.logger.Info("protocol error, closing connection", "op", op, "conn", c.connID, "remote", c.remoteAddr, "err", err)
			}
			_ = c.writeNotice(ResultProtocolError, "protocol error")
			return
		default:
			c.logger.Debug("connection closed", "op", op, "conn", c.connID, "remote", c.remoteAddr, "err", err)
			return
		}

		switch {
		// TODO: rate limit in-flight requests per conn and send a
		// BusyResponse when the limit is reached.  This limit per conn
		// should be configurable

		case r.routeOp == abandonRouteOperation:
			// RFC 4511 section 4.11: abandon has no response.  Handlers
			// aren't cancellable, so there is nothing else to do.
			continue

		case r.routeOp == unbindRouteOperation:
			// support an optional unbind route
			if c.router.unbindRoute != nil {
				c.handle(w, r, c.router.unbindRoute.handler())
			}
			// stop serving requests when UnbindRequest is received
			return

		// If it's a StartTLS request, then we can't dispatch it concurrently,
		// since the conn needs to complete it's TLS negotiation before handling
		// any other requests.
		// see: https://datatracker.ietf.org/doc/html/rfc4511#section-4.14.1
		case r.extendedName == ExtendedOperationStartTLS:
			c.handle(w, r, c.router.serve)
		default:
			c.requestsWg.Add(1)
			c.inFlight.Add(1)
			run := func() {
				defer func() {
					c.logger.Debug("requestsWg done", "op", op, "conn", c.connID, "requestID", w.requestID)
					// Stored before the decrement, so a reader that sees no
					// request in flight also sees when the last one ended.
					c.lastDone.Store(int64(time.Since(c.born)))
					c.inFlight.Add(-1)
					c.requestsWg.Done()
				}()
				c.handle(w, r, c.router.serve)
			}
			if c.serialRequests {
				run()
			} else {
				go run()
			}
		}
	}
}

// handle runs h for r.  A panicking handler is logged and, unless it already
// wrote its final response, answered with ResultOther, so one bad request
// neither kills the process nor leaves the client waiting; the connection
// keeps serving.  Entries the handler buffered without a final response are
// flushed when it returns.
// dirgate patches 3 and 9
func (c *conn) handle(w *ResponseWriter, r *Request, h HandlerFunc) {
	const op = "gldap.(conn).handle"
	defer func() {
		if err := c.flush(); err != nil {
			c.logger.Debug("unable to flush responses", "op", op, "conn", c.connID, "requestID", r.ID, "err", err)
		}
	}()
	if !c.disablePanicRecovery {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			c.logger.Error("recovered from panic in request handler", "op", op, "conn", c.connID, "requestID", r.ID, "routeOp", r.routeOp, "panic", fmt.Sprintf("%v", p), "stack", string(debug.Stack()))
			if r.routeOp == unbindRouteOperation || w.wroteResult() {
				return
			}
			resp := r.NewResponse(WithResponseCode(ResultOther), WithDiagnosticMessage("internal server error"))
			if err := w.Write(resp); err != nil {
				c.logger.Debug("unable to write response after panic", "op", op, "conn", c.connID, "requestID", r.ID, "err", err)
			}
		}()
	}
	h(w, r)
}

// readRequest waits for and reads the next request.
// dirgate patch 8: readRequest, readPacket, messageSize, messageBuffered, declaredSize and isNetError.
func (c *conn) readRequest(requestID int) (*Request, error) {
	const op = "gldap.(Conn).readRequest"

	p, err := c.readPacket(requestID)
	if err != nil {
		return nil, fmt.Errorf("%s: error reading packet for %d/%d: %w", op, c.connID, requestID, err)
	}
	r, err := newRequest(requestID, c, p)
	if err != nil {
		return nil, fmt.Errorf("%s: unable to create new in-memory request for %d/%d: %w: %w", op, c.connID, requestID, errProtocol, err)
	}

	return r, nil
}

func (c *conn) readPacket(requestID int) (*packet, error) {
	const op = "gldap.readPacket"

	c.mu.Lock()
	reader := c.reader
	c.mu.Unlock()

	if err := c.awaitRequest(reader); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := c.armMessageDeadline(reader); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	size, err := messageSize(reader)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if c.maxPacketSize > 0 && size > int64(c.maxPacketSize) {
		return nil, fmt.Errorf("%s: message of %d bytes exceeds the maximum of %d: %w", op, size, c.maxPacketSize, errProtocol)
	}
	// The limit keeps a lying inner length from reading past this message.
	body := &io.LimitedReader{R: reader, N: size}
	berPacket, err := ber.ReadPacket(body)
	if err != nil {
		// An EOF with the whole message consumed came from the limit: the
		// message's inner lengths overrun its own.
		if isNetError(err) && body.N > 0 {
			return nil, fmt.Errorf("%s: error reading ber packet for %d/%d: %w", op, c.connID, requestID, err)
		}
		return nil, fmt.Errorf("%s: error reading ber packet for %d/%d: %w: %w", op, c.connID, requestID, errProtocol, err)
	}

	p := &packet{Packet: berPacket}
	if c.logger.IsDebug() {
		c.logger.Debug("packet read", "op", op, "conn", c.connID, "requestID", requestID)
		p.Log(c.logger.StandardWriter(&hclog.StandardLoggerOptions{}), 0, false)
	}
	// Simple header is first... let's make sure it's an ldap packet with 2
	// children containing:
	//		[0] is a message ID
	//		[1] is a request header
	if err := p.basicValidation(); err != nil {
		return nil, fmt.Errorf("%s: failed validation: %w: %w", op, errProtocol, err)
	}
	return p, nil
}

// awaitRequest blocks until the first byte of the next request is available.
// A timeout while requests of this connection are still being handled, or
// less than the idle timeout after the last of them answered, is not
// idleness, so the wait goes on; any other timeout means the connection idled
// out, or Stop woke it up.
// dirgate patches 5 and 16: awaitRequest down to setIdleDeadline.
func (c *conn) awaitRequest(reader *bufio.Reader) error {
	if err := c.armIdleDeadline(); err != nil {
		return err
	}
	for {
		// Checked after arming the deadline: Stop cancels shutdownCtx before
		// it sets an immediate deadline, so either this check or the read
		// below sees the shutdown.
		if c.shutdownCtx.Err() != nil {
			return errShutdown
		}
		_, err := reader.Peek(1)
		if err == nil {
			return nil
		}
		if c.shutdownCtx.Err() != nil {
			return errShutdown
		}
		rest, busy := c.idleLeft(err)
		if !busy {
			return err
		}
		if err := c.setIdleDeadline(time.Now().Add(rest)); err != nil {
			return err
		}
	}
}

// idleLeft tells whether the read error err is a timeout that came too early
// to count as idleness, and if so how long the connection may still wait.
// The idle period starts when the last dispatched handler answered, not when
// the deadline was armed: a deadline that fires just after a slow handler
// answered must not close a client that is about to send its next request.
// A handler that established the connection meanwhile lengthened the wait.
func (c *conn) idleLeft(err error) (time.Duration, bool) {
	var ne net.Error
	idle := c.waitTimeout()
	if idle <= 0 || !errors.As(err, &ne) || !ne.Timeout() {
		return 0, false
	}
	if c.inFlight.Load() > 0 {
		return idle, true
	}
	done := c.lastDone.Load()
	if done == 0 {
		return 0, false
	}
	rest := idle - (time.Since(c.born) - time.Duration(done))
	return rest, rest > 0
}

// waitTimeout is how long the connection may wait for its next request:
// the idle timeout, or the shorter first-request timeout until a handler
// marked the connection established.  Beginning to send a request is not
// enough: a client whose one anonymous bind or abandon bought it the whole
// idle timeout could hold its slot with next to no traffic.
// dirgate patch 17: established, not a first byte, ends the shorter wait.
func (c *conn) waitTimeout() time.Duration {
	lim := c.srv.limits.Load()
	if c.established.Load() || lim.FirstRequestTimeout <= 0 {
		return lim.IdleTimeout
	}
	if lim.IdleTimeout > 0 {
		return min(lim.FirstRequestTimeout, lim.IdleTimeout)
	}
	return lim.FirstRequestTimeout
}

func (c *conn) armIdleDeadline() error {
	d := c.waitTimeout()
	if d <= 0 {
		// No wait limit; clear a message deadline left from the last read.
		if c.idleDeadline.IsZero() {
			return nil
		}
		return c.setIdleDeadline(time.Time{})
	}
	// Setting a deadline updates a timer in the runtime poller, twice per
	// request: a tenth of a small search's CPU. A deadline between half
	// and all of the timeout away is left as it is, so a connection is
	// closed after between half and all of the idle timeout without a
	// request. A farther one (the timeout was shortened by SetLimits) or a
	// nearer one is re-armed. Only the reading goroutine calls this (see
	// awaitRequest for how a shutdown's immediate deadline is still seen).
	now := time.Now()
	if left := c.idleDeadline.Sub(now); left > d/2 && left <= d {
		return nil
	}
	return c.setIdleDeadline(now.Add(d))
}

// armMessageDeadline bounds the reading of the rest of a message whose
// first byte has arrived by the message timeout, so a client sending a
// byte at a time cannot hold the connection.  A message already whole in
// the buffer, as small requests are, needs no deadline, which saves the
// timer updates.  Without a message timeout the wait deadline is re-armed
// instead, so the whole wait period isn't eaten by the wait before the
// first byte.
func (c *conn) armMessageDeadline(reader *bufio.Reader) error {
	d := c.srv.limits.Load().MessageTimeout
	switch {
	case d <= 0:
		return c.armIdleDeadline()
	case messageBuffered(reader):
		return nil
	}
	return c.setIdleDeadline(time.Now().Add(d))
}

// setIdleDeadline sets the read deadline and remembers it for armIdleDeadline.
func (c *conn) setIdleDeadline(t time.Time) error {
	c.idleDeadline = t
	return c.rawConn.SetReadDeadline(t)
}

// messageSize peeks at the header of the next LDAPMessage and returns its
// total encoded size.  RFC 4511 section 5.1 requires a SEQUENCE with a
// definite length, which lets the size be checked before the body is read.
func messageSize(reader *bufio.Reader) (int64, error) {
	const op = "gldap.messageSize"
	for need := 2; ; {
		hdr, err := reader.Peek(need)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", op, err)
		}
		size, more, err := declaredSize(hdr)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", op, err)
		}
		if more == 0 {
			return size, nil
		}
		need += more
	}
}

// messageBuffered reports whether the whole next message is in the buffer.
func messageBuffered(reader *bufio.Reader) bool {
	hdr, _ := reader.Peek(reader.Buffered())
	size, more, err := declaredSize(hdr)
	return err == nil && more == 0 && int64(len(hdr)) >= size
}

// declaredSize parses the header at the start of hdr: the message's total
// encoded size, or how many more header bytes it needs to tell.
func declaredSize(hdr []byte) (size int64, more int, err error) {
	const (
		tagSequence  = 0x30
		tlsHandshake = 0x16
		maxLenBytes  = 4
	)
	switch {
	case len(hdr) < 2:
		return 0, 2 - len(hdr), nil
	case hdr[0] == tlsHandshake:
		return 0, 0, fmt.Errorf("message starts with a TLS handshake (possible attempt to use TLS with a non-TLS server): %w", errProtocol)
	case hdr[0] != tagSequence:
		return 0, 0, fmt.Errorf("message tag 0x%02x is not a SEQUENCE: %w", hdr[0], errProtocol)
	case hdr[1]&0x80 == 0:
		return 2 + int64(hdr[1]), 0, nil
	}
	n := int(hdr[1] & 0x7f)
	if n == 0 || n > maxLenBytes {
		return 0, 0, fmt.Errorf("unsupported length encoding 0x%02x: %w", hdr[1], errProtocol)
	}
	if len(hdr) < 2+n {
		return 0, 2 + n - len(hdr), nil
	}
	var length int64
	for _, b := range hdr[2 : 2+n] {
		length = length<<8 | int64(b)
	}
	return int64(2+n) + length, 0, nil
}

// isNetError reports whether err comes from the network (disconnect, timeout,
// closed conn) rather than from the client's data.
func isNetError(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne)
}

// write queues b and, when flush is set or the buffer passed flushThreshold,
// writes everything queued to the client.  The caller must hold writerMu.
// dirgate patches 5 and 9: write, flush and flushLocked.
func (c *conn) write(b []byte, flush bool) error {
	if c.wbuf == nil {
		c.wbuf = writeBufPool.Get().(*[]byte)
	}
	*c.wbuf = append(*c.wbuf, b...)
	if !flush && len(*c.wbuf) < flushThreshold {
		return nil
	}
	return c.flushLocked()
}

// flush writes any buffered responses to the client.
func (c *conn) flush() error {
	c.writerMu.Lock()
	defer c.writerMu.Unlock()
	return c.flushLocked()
}

func (c *conn) flushLocked() error {
	const op = "gldap.(conn).flush"
	if c.wbuf == nil {
		return nil
	}
	buf := c.wbuf
	c.wbuf = nil
	defer func() {
		if cap(*buf) <= maxPooledBuffer {
			*buf = (*buf)[:0]
			writeBufPool.Put(buf)
		}
	}()
	if c.writeTimeout > 0 {
		if err := c.rawConn.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
			return fmt.Errorf("%s: unable to set write deadline: %w", op, err)
		}
	}
	if _, err := c.out.Write(*buf); err != nil {
		// A partial write leaves the stream unusable (and a timed out TLS
		// write corrupts the TLS state), so give up on the connection.
		_ = c.rawConn.Close()
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// writeNotice sends an unsolicited Notice of Disconnection (RFC 4511 section
// 4.4.1) before the server closes the connection.
// dirgate patches 4, 6 and 8
func (c *conn) writeNotice(code int, diagMessage string) error {
	resp := &ExtendedResponse{
		baseResponse: &baseResponse{code: int16(code), diagMessage: diagMessage},
		name:         ExtendedOperationDisconnection,
	}
	c.writerMu.Lock()
	defer c.writerMu.Unlock()
	return c.write(resp.packet().Bytes(), true)
}

// startTLS upgrades the connection with a server-side TLS handshake.
// dirgate patch 2 (upstream: initConn on the TLS conn).
func (c *conn) startTLS(tlsConfig *tls.Config) error {
	const op = "gldap.(conn).startTLS"
	// Responses still buffered belong to the plaintext stream.
	c.writerMu.Lock()
	defer c.writerMu.Unlock()
	if err := c.flushLocked(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	tlsConn := tls.Server(c.netConn, tlsConfig)
	if err := tlsConn.Handshake(); err != nil {
		return fmt.Errorf("%s: handshake error: %w", op, err)
	}
	c.netConn = tlsConn
	c.reader = bufio.NewReader(tlsConn)
	c.out = tlsConn
	c.isTLS.Store(true)
	return nil
}

// wakeReader makes a read blocked waiting for the next request return at
// once, so the connection notices that the server is stopping.
// dirgate patch 6: wakeReader, forceClose and close.
func (c *conn) wakeReader() {
	_ = c.rawConn.SetReadDeadline(time.Now())
}

// forceClose closes the connection under any reader or writer.
func (c *conn) forceClose() {
	_ = c.rawConn.Close()
}

// close waits for in-flight requests, sends a Notice of Disconnection if the
// server is stopping, and closes the connection.  Failures are only
// debug-logged: closing a connection the client already dropped fails
// routinely (e.g. TLS close_notify on a reset socket).
func (c *conn) close() {
	const op = "gldap.(Conn).close"
	c.requestsWg.Wait()
	if c.shutdownCtx.Err() != nil {
		if err := c.writeNotice(ResultUnavailable, "server stopping"); err != nil {
			c.logger.Debug("unable to send notice of disconnection", "op", op, "conn", c.connID, "err", err)
		}
	}
	if err := c.flush(); err != nil {
		c.logger.Debug("unable to flush responses", "op", op, "conn", c.connID, "err", err)
	}
	c.mu.Lock()
	netConn := c.netConn
	c.mu.Unlock()
	if err := netConn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		c.logger.Debug("error closing conn", "op", op, "conn", c.connID, "err", err)
	}
}
