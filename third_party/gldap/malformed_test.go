// SPDX-License-Identifier: MIT

package gldap

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
)

func control(controlType *ber.Packet, value *ber.Packet) *ber.Packet {
	c := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Control")
	c.AppendChild(controlType)
	if value != nil {
		c.AppendChild(value)
	}
	return c
}

func TestMalformedRequest_ProtocolErrorClosesOnlyThatConnection(t *testing.T) {
	// a paging control value missing its cookie
	pagingValue := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Paging")
	pagingValue.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 10, "Size"))
	badPaging := control(
		ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, ControlTypePaging, "Type"),
		ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(pagingValue.Bytes()), "Value"),
	)
	// a control type that isn't a string
	badType := control(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 1, "Type"), nil)
	// a bind asking for LDAPv2
	v2Bind := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ApplicationBindRequest, nil, "Bind Request")
	v2Bind.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 2, "Version"))
	v2Bind.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "User Name"))
	v2Bind.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "", "Password"))

	tests := map[string]func(c *rawConn){
		"paging control without cookie": func(c *rawConn) { c.send(1, searchOp(t, "dc=y"), badPaging) },
		"non-string control type":       func(c *rawConn) { c.send(1, searchOp(t, "dc=y"), badType) },
		"LDAPv2 bind":                   func(c *rawConn) { c.send(1, v2Bind) },
		"indefinite length":             func(c *rawConn) { c.sendBytes([]byte{0x30, 0x80, 0x02, 0x01, 0x01, 0x42, 0x00, 0x00, 0x00}) },
		"inner length overruns message": func(c *rawConn) { c.sendBytes([]byte{0x30, 0x05, 0x02, 0x01, 0x01, 0x60, 0x10}) },
		"TLS client hello":              func(c *rawConn) { c.sendBytes([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00}) },
		"not a sequence":                func(c *rawConn) { c.sendBytes([]byte{0x02, 0x01, 0x01}) },
	}

	mux := newTestMux(t)
	must(t, mux.Bind(bindSuccess))
	must(t, mux.Search(func(w *ResponseWriter, r *Request) {
		_ = w.Write(r.NewSearchDoneResponse(WithResponseCode(ResultSuccess)))
	}))
	// Without panic recovery a decoding panic would crash the test binary.
	_, addr := startServer(t, mux, WithDisablePanicRecovery())
	bystander := dialLDAP(t, addr)
	must(t, bystander.Bind("cn=admin", "secret"))

	for name, send := range tests {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, addr)
			send(c)
			expectNotice(t, c.mustRead(), ResultProtocolError)
			c.expectClosed()
		})
	}
	must(t, bystander.Bind("cn=admin", "secret"))
}

func TestMaxPacketSize(t *testing.T) {
	mux := newTestMux(t)
	must(t, mux.Bind(bindSuccess))
	must(t, mux.Search(func(w *ResponseWriter, r *Request) {
		_ = w.Write(r.NewSearchDoneResponse(WithResponseCode(ResultSuccess)))
	}))
	_, addr := startServer(t, mux, WithMaxPacketSize(512))

	c := dialRaw(t, addr)
	c.send(1, searchOp(t, "dc="+strings.Repeat("y", 400)))
	if _, tag, code := resultOf(t, c.mustRead()); tag != ApplicationSearchResultDone || code != ResultSuccess {
		t.Fatalf("request under the limit: got tag %d code %d", tag, code)
	}
	c.send(2, searchOp(t, "dc="+strings.Repeat("y", 600)))
	expectNotice(t, c.mustRead(), ResultProtocolError)
	c.expectClosed()
}

// FuzzReadRequest feeds arbitrary bytes through the request decoding path: it
// must fail with errors, never panic.
func FuzzReadRequest(f *testing.F) {
	f.Add([]byte{0x30, 0x05, 0x02, 0x01, 0x01, 0x60, 0x00})
	f.Add([]byte{0x30, 0x05, 0x02, 0x01, 0x01, 0x60, 0x10})
	f.Add([]byte{0x30, 0x80, 0x02, 0x01, 0x01, 0x42, 0x00, 0x00, 0x00})
	f.Add([]byte{0x30, 0x84, 0x00, 0x00, 0x00, 0x06, 0x02, 0x01, 0x01, 0x50, 0x01, 0x07})
	f.Fuzz(func(t *testing.T, data []byte) {
		reader := bufio.NewReader(bytes.NewReader(data))
		size, err := messageSize(reader)
		if err != nil {
			return
		}
		p, err := ber.ReadPacket(&io.LimitedReader{R: reader, N: size})
		if err != nil {
			return
		}
		_, _ = newRequest(1, &conn{}, &packet{Packet: p})
	})
}
