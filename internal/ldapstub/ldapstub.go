// Package ldapstub serves scripted LDAP answers on loopback, for tests of
// what real servers do not show on demand: a hang-up in the middle of a
// bind, a notice of disconnection, a refused StartTLS, a diagnostic that
// quotes the password.
package ldapstub

import (
	"io"
	"net"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"

	"github.com/dirgate/dirgate/internal/testnet"
)

// Handler answers one request, the protocol op op of message id, on c. It
// returns false to hang up.
type Handler func(c net.Conn, id int64, op *ber.Packet) bool

// Serve accepts connections on a loopback port until the test ends and
// runs h on every request read from them; it returns the port.
func Serve(t testing.TB, h Handler) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return testnet.Serve(t, ln, func(c net.Conn) { serve(c, h) })
}

// ServeConn runs h on every request read from c, until h or the reader
// gives up; for a test that first upgrades the connection (StartTLS).
func ServeConn(c net.Conn, h Handler) { serve(c, h) }

func serve(c net.Conn, h Handler) {
	defer c.Close()
	for {
		p, err := ber.ReadPacket(c)
		if err != nil || len(p.Children) < 2 {
			return
		}
		id, _ := p.Children[0].Value.(int64)
		if !h(c, id, p.Children[1]) {
			return
		}
	}
}

// Result is an LDAPResult of the response op type tag.
func Result(tag ber.Tag, code uint16, diag string) *ber.Packet {
	r := ber.Encode(ber.ClassApplication, ber.TypeConstructed, tag, nil, "Result")
	r.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(code), "resultCode"))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "matchedDN"))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, diag, "diagnosticMessage"))
	return r
}

// Write sends op, with controls when not nil, as message id.
func Write(w io.Writer, id int64, op, controls *ber.Packet) {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Response")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "MessageID"))
	p.AppendChild(op)
	if controls != nil {
		p.AppendChild(controls)
	}
	_, _ = w.Write(p.Bytes())
}
