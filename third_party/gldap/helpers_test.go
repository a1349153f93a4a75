// SPDX-License-Identifier: MIT

package gldap

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	"github.com/hashicorp/go-hclog"
)

// startServer serves mux on a fresh loopback listener and stops the server
// when the test ends.  Logging is off unless opt carries a WithLogger.
func startServer(t *testing.T, mux *Mux, opt ...Option) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startServerOn(t, ln, mux, opt...)
}

func startServerOn(t *testing.T, ln net.Listener, mux *Mux, opt ...Option) (*Server, string) {
	t.Helper()
	s, err := NewServer(append([]Option{WithLogger(hclog.NewNullLogger())}, opt...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Router(mux); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

func newTestMux(t *testing.T) *Mux {
	t.Helper()
	mux, err := NewMux()
	if err != nil {
		t.Fatal(err)
	}
	return mux
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func bindSuccess(w *ResponseWriter, r *Request) {
	_ = w.Write(r.NewBindResponse(WithResponseCode(ResultSuccess)))
}

func dialLDAP(t *testing.T, addr string) *ldap.Conn {
	t.Helper()
	l, err := ldap.DialURL("ldap://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	l.SetTimeout(10 * time.Second)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// syncBuffer is a log sink safe for the server's concurrent goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func bufferLogger(level hclog.Level) (hclog.Logger, *syncBuffer) {
	out := &syncBuffer{}
	return hclog.New(&hclog.LoggerOptions{Output: out, Level: level}), out
}

func testTLSConfig(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// rawConn is a client speaking hand-built BER, for what go-ldap can't send.
type rawConn struct {
	t *testing.T
	net.Conn
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	must(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{t: t, Conn: c}
}

func (c *rawConn) send(messageID int64, protocolOp *ber.Packet, controls ...*ber.Packet) {
	c.t.Helper()
	c.sendBytes(message(messageID, protocolOp, controls...))
}

// message encodes an LDAPMessage.
func message(messageID int64, protocolOp *ber.Packet, controls ...*ber.Packet) []byte {
	msg := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	msg.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, messageID, "MessageID"))
	msg.AppendChild(protocolOp)
	if len(controls) > 0 {
		ctrls := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "Controls")
		for _, ctrl := range controls {
			ctrls.AppendChild(ctrl)
		}
		msg.AppendChild(ctrls)
	}
	return msg.Bytes()
}

func (c *rawConn) sendBytes(b []byte) {
	c.t.Helper()
	if _, err := c.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the next LDAPMessage from the server.
func (c *rawConn) read() (*ber.Packet, error) {
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return nil, err
	}
	return ber.ReadPacket(c)
}

func (c *rawConn) mustRead() *ber.Packet {
	c.t.Helper()
	p, err := c.read()
	if err != nil {
		c.t.Fatalf("reading response: %v", err)
	}
	return p
}

// expectClosed asserts the server closes the connection without sending
// anything more.
func (c *rawConn) expectClosed() {
	c.t.Helper()
	if p, err := c.read(); err == nil {
		c.t.Fatalf("expected the connection to be closed, got message %d tag %d", p.Children[0].Value, p.Children[1].Tag)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		c.t.Fatal("connection still open")
	}
}

func simpleBindOp() *ber.Packet {
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ApplicationBindRequest, nil, "Bind Request")
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 3, "Version"))
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "cn=admin", "User Name"))
	op.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "secret", "Password"))
	return op
}

func searchOp(t *testing.T, baseDN string) *ber.Packet {
	t.Helper()
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ApplicationSearchRequest, nil, "Search Request")
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, baseDN, "Base DN"))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(WholeSubtree), "Scope"))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, "Deref Aliases"))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "Size Limit"))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "Time Limit"))
	op.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, "Types Only"))
	filter, err := ldap.CompileFilter("(objectClass=*)")
	must(t, err)
	op.AppendChild(filter)
	op.AppendChild(ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Attributes"))
	return op
}

// resultOf returns the message ID, protocolOp tag and result code of a
// response.
func resultOf(t *testing.T, p *ber.Packet) (int64, ber.Tag, int64) {
	t.Helper()
	if len(p.Children) < 2 || len(p.Children[1].Children) < 1 {
		t.Fatalf("malformed response: %d children", len(p.Children))
	}
	id, _ := p.Children[0].Value.(int64)
	op := p.Children[1]
	code, _ := op.Children[0].Value.(int64)
	return id, op.Tag, code
}

// expectNotice asserts p is a Notice of Disconnection with the given code.
func expectNotice(t *testing.T, p *ber.Packet, code int64) {
	t.Helper()
	id, tag, gotCode := resultOf(t, p)
	if id != 0 || tag != ApplicationExtendedResponse || gotCode != code {
		t.Fatalf("expected notice of disconnection (id 0, tag %d, code %d), got id %d tag %d code %d", ApplicationExtendedResponse, code, id, tag, gotCode)
	}
	op := p.Children[1]
	var name string
	for _, child := range op.Children {
		if child.ClassType == ber.ClassContext && child.Tag == 10 {
			name = child.Data.String()
		}
	}
	if name != string(ExtendedOperationDisconnection) {
		t.Fatalf("expected responseName %s, got %q", ExtendedOperationDisconnection, name)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
