package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// BindConn is an upstream connection that only checks passwords, with one
// simple bind at a time, reading each answer on the calling goroutine.
// go-ldap's Conn hands every request and answer between three goroutines
// (the caller, its message loop and its reader); for a pass-through bind,
// which is a single short exchange, those hand-offs cost more CPU than
// encoding and decoding the messages. A BindConn that saw any failure other
// than an answer is Broken and must be closed. Having no reader of its own,
// it learns that the server closed it while idle from Alive.
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

// Alive reports, without blocking, whether an idle connection is still
// usable: not Broken, and nothing waiting to be read from it (the end of
// the stream or a reset when the server closed it, or a notice of
// disconnection or TLS alert before it does). A connection that is not
// alive must be closed before a bind is sent on it, because after that a
// failure could no longer tell whether the server processed the bind.
func (b *BindConn) Alive() bool {
	if b.broken || b.r.Buffered() > 0 {
		return false
	}
	if !socketIdle(b.conn) {
		b.broken = true
		return false
	}
	return true
}

// Close closes the connection.
func (b *BindConn) Close() error {
	b.broken = true
	return b.conn.Close()
}

// Bind checks password with a simple bind as dn, within timeout and ctx.
// It returns nil when the server accepted it, the server's answer as an
// *ldap.Error otherwise, and an *ldap.Error with ldap.ErrorNetwork when no
// answer came (matching os.ErrDeadlineExceeded on a timeout or a
// cancellation); the connection is then Broken. An empty password is
// refused without a request: servers take it for an unauthenticated bind
// (RFC 4513 5.1.2) and answer success.
func (b *BindConn) Bind(ctx context.Context, timeout time.Duration, dn, password string) error {
	if password == "" {
		return ldap.NewError(ldap.ErrorEmptyPassword, errors.New("empty password"))
	}
	return b.exchange(ctx, timeout, bindOp(dn, password), ldap.ApplicationBindResponse)
}

// oidWhoAmI is the "Who am I?" extended operation (RFC 4532).
const oidWhoAmI = "1.3.6.1.4.1.4203.1.11.3"

// Ping sends a "Who am I?" request and reads its answer, to learn whether
// the server accepts the session at all: one that demands a TLS client
// certificate refuses ours (under TLS 1.3) only when it reads the first
// request. Any answer, a refusal of the operation included, is nil; an
// error is an *ldap.Error with ldap.ErrorNetwork (explained by Explain).
func (b *BindConn) Ping(ctx context.Context, timeout time.Duration) error {
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationExtendedRequest, nil, "")
	op.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, oidWhoAmI, ""))
	if err := b.exchange(ctx, timeout, op, ldap.ApplicationExtendedResponse); ldap.IsErrorWithCode(err, ldap.ErrorNetwork) {
		return err
	}
	return nil
}

// exchange sends op and reads its answer, of type tag, within timeout and
// ctx: nil when the server answered success, its answer as an *ldap.Error
// otherwise, and an *ldap.Error with ldap.ErrorNetwork when no answer came.
func (b *BindConn) exchange(ctx context.Context, timeout time.Duration, op *ber.Packet, tag ber.Tag) error {
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
	// When that fires too late to stop (the answer came just before), the
	// past deadline stays on the connection: it must not be reused.
	stop := context.AfterFunc(ctx, func() { _ = b.conn.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if !stop() && ctx.Err() != nil {
			b.broken = true
		}
	}()

	b.msgID++
	if _, err := b.conn.Write(envelope(b.msgID, op).Bytes()); err != nil {
		return b.fail(err)
	}
	p, err := ber.ReadPacket(b.r)
	if err != nil {
		return b.fail(err)
	}
	return b.answer(p, tag)
}

// answer is the outcome of the request that p answers with an op of type
// tag: nil, the server's refusal, or a failure that leaves the connection
// broken.
func (b *BindConn) answer(p *ber.Packet, tag ber.Tag) error {
	if err := checkAnswer(p, b.msgID, tag); err != nil {
		b.broken = true
		return err
	}
	err := ldap.GetLDAPError(p)
	if ldap.IsErrorWithCode(err, ldap.ErrorNetwork) {
		b.broken = true // a malformed result
	}
	return err
}

// oidNoticeOfDisconnection names the unsolicited notification a server
// sends before it closes a connection (RFC 4511 4.4.1).
const oidNoticeOfDisconnection = "1.3.6.1.4.1.1466.20036"

// checkAnswer verifies that p answers the request with message ID msgID
// with an op of type tag.
func checkAnswer(p *ber.Packet, msgID int64, tag ber.Tag) error {
	if len(p.Children) < 2 {
		return ldap.NewError(ldap.ErrorNetwork, errors.New("malformed LDAP message"))
	}
	idp, op := p.Children[0], p.Children[1]
	id, ok := idp.Value.(int64)
	if !ok || idp.ClassType != ber.ClassUniversal || idp.Tag != ber.TagInteger {
		return ldap.NewError(ldap.ErrorNetwork, errors.New("malformed LDAP message ID"))
	}
	if id == 0 && op.ClassType == ber.ClassApplication && op.Tag == ldap.ApplicationExtendedResponse && responseName(op) == oidNoticeOfDisconnection {
		msg := "notice of disconnection"
		if e := ldap.GetLDAPError(p); e != nil {
			msg += ": " + e.Error()
		}
		return ldap.NewError(ldap.ErrorNetwork, errors.New(msg))
	}
	if id != msgID || op.ClassType != ber.ClassApplication || op.Tag != tag {
		return ldap.NewError(ldap.ErrorNetwork, fmt.Errorf("unexpected answer (message %d, tag %d) to message %d", id, op.Tag, msgID))
	}
	return nil
}

// responseName is the responseName ([10]) of an ExtendedResponse, or "".
func responseName(op *ber.Packet) string {
	for _, c := range op.Children {
		if c.ClassType == ber.ClassContext && c.Tag == 10 && c.Data != nil {
			return c.Data.String()
		}
	}
	return ""
}

// fail marks the connection broken and wraps err as a network failure,
// explained when it is the server refusing our TLS client certificate.
func (b *BindConn) fail(err error) error {
	b.broken = true
	return ldap.NewError(ldap.ErrorNetwork, Explain(err))
}

// bindOp encodes a simple BindRequest (RFC 4511 4.2), version 3.
func bindOp(dn, password string) *ber.Packet {
	bind := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationBindRequest, nil, "")
	bind.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 3, ""))
	bind.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, ""))
	bind.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, password, ""))
	return bind
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
	}
	// The caller closes raw on an error, so a cancellation needs no care
	// about a deadline left behind.
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if stop() {
			_ = raw.SetDeadline(time.Time{})
		}
	}()
	req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationExtendedRequest, nil, "")
	req.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, oidStartTLS, ""))
	if _, err := raw.Write(envelope(1, req).Bytes()); err != nil {
		return nil, err
	}
	p, err := ber.ReadPacket(raw)
	if err != nil {
		return nil, err
	}
	if err := checkAnswer(p, 1, ldap.ApplicationExtendedResponse); err != nil {
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
