package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// ErrClosedByServer is matched (errors.Is) by a Bind that failed because the
// server had closed the connection before answering: the bind was not
// processed, so it is safe to try again on another connection.
var ErrClosedByServer = errors.New("connection closed by the server")

// BindConn is an upstream connection that only checks passwords, with one
// simple bind at a time, reading each answer on the calling goroutine.
// go-ldap's Conn hands every request and answer between three goroutines
// (the caller, its message loop and its reader); for a pass-through bind,
// which is a single short exchange, those hand-offs cost more CPU than
// encoding and decoding the messages. A BindConn that saw any failure other
// than an answer is Broken and must be closed.
type BindConn struct {
	conn   net.Conn
	r      *bufio.Reader
	msgID  int64
	broken bool
}

// DialBind connects like Dial (failover, TLS, StartTLS) and returns a
// connection for password checks.
func (t *Target) DialBind(ctx context.Context) (*BindConn, string, error) {
	raw, host, err := t.dialAny(ctx)
	if err != nil {
		return nil, "", err
	}
	return &BindConn{conn: raw, r: bufio.NewReaderSize(raw, 1024)}, host, nil
}

// Broken reports whether the connection failed and must not be reused.
func (b *BindConn) Broken() bool { return b.broken }

// Close closes the connection.
func (b *BindConn) Close() error {
	b.broken = true
	return b.conn.Close()
}

// Bind checks password with a simple bind as dn, within timeout and ctx.
// It returns nil when the server accepted it, the server's answer as an
// *ldap.Error otherwise, and an *ldap.Error with ldap.ErrorNetwork when no
// answer came; that one matches ErrClosedByServer when the server had
// closed the connection, and os.ErrDeadlineExceeded on a timeout.
func (b *BindConn) Bind(ctx context.Context, timeout time.Duration, dn, password string) error {
	if b.broken {
		return ldap.NewError(ldap.ErrorNetwork, net.ErrClosed)
	}
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if err := b.conn.SetDeadline(deadline); err != nil {
		return b.fail(err)
	}
	// A cancelled ctx moves the deadline to the past, which wakes the read.
	stop := context.AfterFunc(ctx, func() { _ = b.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	b.msgID++
	if _, err := b.conn.Write(bindRequest(b.msgID, dn, password)); err != nil {
		return b.fail(err)
	}
	if _, err := b.r.Peek(1); err != nil {
		return b.fail(err) // no byte of the answer came
	}
	p, err := ber.ReadPacket(b.r)
	if err != nil {
		// The answer was cut short: the server did process the bind.
		b.broken = true
		return ldap.NewError(ldap.ErrorNetwork, err)
	}
	return b.answer(p)
}

// answer is the outcome of the bind that p answers: nil, the server's
// refusal, or a failure that leaves the connection broken.
func (b *BindConn) answer(p *ber.Packet) error {
	if err := b.check(p, ldap.ApplicationBindResponse); err != nil {
		b.broken = true
		return err
	}
	err := ldap.GetLDAPError(p)
	if ldap.IsErrorWithCode(err, ldap.ErrorNetwork) {
		b.broken = true // a malformed result
	}
	return err
}

// check verifies that p answers the last request with an op of type tag.
func (b *BindConn) check(p *ber.Packet, tag ber.Tag) error {
	if len(p.Children) < 2 {
		return ldap.NewError(ldap.ErrorNetwork, errors.New("malformed LDAP message"))
	}
	id, _ := p.Children[0].Value.(int64)
	op := p.Children[1]
	if id == 0 {
		// An unsolicited notification: the server is closing the
		// connection (RFC 4511 4.4.1), and did not process the bind.
		msg := "notice of disconnection"
		if e := ldap.GetLDAPError(p); e != nil {
			msg += ": " + e.Error()
		}
		return ldap.NewError(ldap.ErrorNetwork, fmt.Errorf("%w: %s", ErrClosedByServer, msg))
	}
	if id != b.msgID || op.ClassType != ber.ClassApplication || op.Tag != tag {
		return ldap.NewError(ldap.ErrorNetwork, fmt.Errorf("unexpected answer (message %d, tag %d) to message %d", id, op.Tag, b.msgID))
	}
	return nil
}

// fail marks the connection broken and wraps err, from sending the
// request or waiting for the first byte of the answer, as a network
// failure; an end of stream or a reset there means the server had closed
// the connection.
func (b *BindConn) fail(err error) error {
	b.broken = true
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		err = fmt.Errorf("%w: %w", ErrClosedByServer, err)
	}
	return ldap.NewError(ldap.ErrorNetwork, err)
}

// bindRequest encodes a simple BindRequest (RFC 4511 4.2), version 3.
func bindRequest(id int64, dn, password string) []byte {
	bind := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationBindRequest, nil, "")
	bind.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 3, ""))
	bind.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, ""))
	bind.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, password, ""))
	return envelope(id, bind).Bytes()
}

// envelope wraps op in an LDAPMessage with message ID id.
func envelope(id int64, op *ber.Packet) *ber.Packet {
	msg := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	msg.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, ""))
	msg.AppendChild(op)
	return msg
}

// oidStartTLS is the StartTLS extended operation (RFC 4511 4.14).
const oidStartTLS = "1.3.6.1.4.1.1466.20037"

// startTLS runs the StartTLS exchange on raw, before any other message, and
// the TLS handshake after it. It reads the answer without buffering, so no
// byte of the handshake is consumed early.
func startTLS(ctx context.Context, raw net.Conn, cfg *tls.Config) (net.Conn, error) {
	if dl, ok := ctx.Deadline(); ok {
		if err := raw.SetDeadline(dl); err != nil {
			return nil, err
		}
		defer raw.SetDeadline(time.Time{})
	}
	req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationExtendedRequest, nil, "")
	req.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, oidStartTLS, ""))
	if _, err := raw.Write(envelope(1, req).Bytes()); err != nil {
		return nil, err
	}
	p, err := ber.ReadPacket(raw)
	if err != nil {
		return nil, err
	}
	b := &BindConn{msgID: 1}
	if err := b.check(p, ldap.ApplicationExtendedResponse); err != nil {
		return nil, err
	}
	if err := ldap.GetLDAPError(p); err != nil {
		return nil, err
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}
