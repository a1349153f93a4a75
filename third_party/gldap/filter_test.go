// SPDX-License-Identifier: MIT

package gldap

import (
	"errors"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	"github.com/hashicorp/go-hclog"
)

// filterStrings round-trip: go-ldap encodes each, DecodeFilter must give
// the same string back.
var filterStrings = []string{
	"(ou:dn:=people)",
	"(ou:DN:=people)",
	"(cn:dn:2.5.13.5:=Alice)",
	"(:dn:2.5.13.5:=x)",
	"(:caseExactMatch:=x)",
	"(cn:caseExactMatch:=x)",
	"(cn:=x)",
	"(cn=alice)",
	"(cn>=a)",
	"(cn<=z)",
	"(cn~=alise)",
	"(cn=*)",
	"(cn=a*)",
	"(cn=*a)",
	"(cn=a*b*c)",
	"(cn=*b*)",
	"(cn=a\\2ab\\28\\29\\5c\\00)",
	"(cn=J\\c3\\bcrgen)",
	"(cn;lang-en=x)",
	"(2.5.4.3=x)",
	"(&(objectClass=person)(|(uid=a)(!(uid=b))))",
	"(&)",
	"(|)",
}

func TestDecodeFilter_RoundTrip(t *testing.T) {
	for _, s := range filterStrings {
		t.Run(s, func(t *testing.T) {
			p, err := ldap.CompileFilter(s)
			must(t, err)
			got, err := DecodeFilter(p)
			if err != nil {
				t.Fatalf("DecodeFilter: %v", err)
			}
			// go-ldap keeps ":DN" as a matching rule named DN; that is
			// what it sent, and the string says so.
			if got != s {
				t.Fatalf("got %q, want %q", got, s)
			}
		})
	}
}

// TestDecodeFilter_DNAttributes: dnAttributes is decoded from its BER
// BOOLEAN, whatever non-zero octet encodes TRUE, and an explicit FALSE
// leaves it out.
func TestDecodeFilter_DNAttributes(t *testing.T) {
	for _, tc := range []struct {
		octet byte
		want  string
	}{{0xff, "(ou:dn:=people)"}, {0x01, "(ou:dn:=people)"}, {0x00, "(ou:=people)"}} {
		p := extensible(ctxString(ruleType, "ou"), ctxString(ruleMatchValue, "people"), ctxBytes(ruleDNAttributes, tc.octet))
		got, err := DecodeFilter(p)
		if err != nil || got != tc.want {
			t.Errorf("octet %#x: got %q, %v; want %q", tc.octet, got, err, tc.want)
		}
	}
}

func TestDecodeFilter_Malformed(t *testing.T) {
	ava := func(tag ber.Tag, children ...*ber.Packet) *ber.Packet {
		p := ber.Encode(ber.ClassContext, ber.TypeConstructed, tag, nil, "")
		for _, c := range children {
			p.AppendChild(c)
		}
		return p
	}
	str := func(s string) *ber.Packet {
		return ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, s, "")
	}
	subs := func(children ...*ber.Packet) *ber.Packet {
		return ava(filterSubstrings, str("cn"), ava(ber.TagSequence, children...))
	}
	tests := map[string]*ber.Packet{
		"universal class":             str("cn"),
		"unknown choice":              ava(10, str("cn"), str("x")),
		"not with two filters":        ava(filterNot, ava(filterPresent), ava(filterPresent)),
		"equality with one part":      ava(filterEqualityMatch, str("cn")),
		"equality primitive":          ber.NewString(ber.ClassContext, ber.TypePrimitive, filterEqualityMatch, "cn", ""),
		"present constructed":         ava(filterPresent, str("cn")),
		"present empty":               ber.NewString(ber.ClassContext, ber.TypePrimitive, filterPresent, "", ""),
		"attribute with a paren":      ava(filterEqualityMatch, str("cn=x)(uid"), str("y")),
		"attribute with a space":      ava(filterEqualityMatch, str("c n"), str("y")),
		"constructed value":           ava(filterEqualityMatch, str("cn"), ava(ber.TagSequence)),
		"no substrings":               subs(),
		"final before any":            subs(ctxString(substringFinal, "a"), ctxString(substringAny, "b")),
		"initial after any":           subs(ctxString(substringAny, "a"), ctxString(substringInitial, "b")),
		"unknown substring":           subs(ctxString(3, "a")),
		"extensible without value":    extensible(ctxString(ruleType, "cn")),
		"extensible without type":     extensible(ctxString(ruleMatchValue, "x")),
		"extensible out of order":     extensible(ctxString(ruleMatchValue, "x"), ctxString(ruleType, "cn")),
		"extensible unknown part":     extensible(ctxString(ruleType, "cn"), ctxString(ruleMatchValue, "x"), ctxString(5, "y")),
		"dnAttributes of two octets":  extensible(ctxString(ruleType, "cn"), ctxString(ruleMatchValue, "x"), ctxBytes(ruleDNAttributes, 1, 1)),
		"matching rule with a colon":  extensible(ctxString(ruleMatchingRule, "a:b"), ctxString(ruleMatchValue, "x")),
		"malformed filter inside and": ava(filterAnd, ava(filterPresent)),
	}
	for name, p := range tests {
		t.Run(name, func(t *testing.T) {
			if s, err := DecodeFilter(p); !errors.Is(err, errFilter) {
				t.Fatalf("got %q, %v; want errFilter", s, err)
			}
		})
	}
}

// TestSearch_DNAttributesFilterKeepsConnection: a search with a :dn:
// extensible match reached the handler as its string form; before, the
// decoding panicked and the client lost its connection.
func TestSearch_DNAttributesFilterKeepsConnection(t *testing.T) {
	mux := newTestMux(t)
	filters := make(chan string, 2)
	must(t, mux.Search(func(w *ResponseWriter, r *Request) {
		m, err := r.GetSearchMessage()
		must(t, err)
		filters <- m.Filter
		_ = w.Write(r.NewSearchDoneResponse(WithResponseCode(ResultSuccess)))
	}))
	_, addr := startServer(t, mux)
	l := dialLDAP(t, addr)
	for _, f := range []string{"(ou:dn:=people)", "(&(cn:dn:2.5.13.5:=Alice)(objectClass=*))"} {
		if _, err := l.Search(ldap.NewSearchRequest("dc=x", ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, f, []string{"1.1"}, nil)); err != nil {
			t.Fatalf("search %s: %v", f, err)
		}
		if got := <-filters; got != f {
			t.Fatalf("handler got filter %q, want %q", got, f)
		}
	}
}

// FuzzDecodeFilter feeds BER-encoded filters to DecodeFilter: it must not
// panic, and whatever it accepts must be a string go-ldap compiles back to
// a filter that decodes to the same string.  The parser that receives the
// strings in dirgate is fuzzed on them by dirgate's FuzzWireFilter.
func FuzzDecodeFilter(f *testing.F) {
	for _, s := range filterStrings {
		p, err := ldap.CompileFilter(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p.Bytes())
	}
	f.Add(extensible(ctxString(ruleType, "ou"), ctxString(ruleMatchValue, "x"), ctxBytes(ruleDNAttributes, 7)).Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ber.DecodePacketErr(data)
		if err != nil {
			return
		}
		s, err := DecodeFilter(p)
		if err != nil {
			if !errors.Is(err, errFilter) {
				t.Fatalf("error %v is not errFilter", err)
			}
			return
		}
		again, err := ldap.CompileFilter(s)
		if err != nil {
			t.Fatalf("decoded %q, which go-ldap does not compile: %v", s, err)
		}
		if s2, err := DecodeFilter(again); err != nil || s2 != s {
			t.Fatalf("decoded %q, recompiled and decoded %q, %v", s, s2, err)
		}
	})
}

func extensible(children ...*ber.Packet) *ber.Packet {
	p := ber.Encode(ber.ClassContext, ber.TypeConstructed, filterExtensibleMatch, nil, "")
	for _, c := range children {
		p.AppendChild(c)
	}
	return p
}

func ctxString(tag ber.Tag, s string) *ber.Packet {
	return ber.NewString(ber.ClassContext, ber.TypePrimitive, tag, s, "")
}

func ctxBytes(tag ber.Tag, b ...byte) *ber.Packet {
	p := ber.Encode(ber.ClassContext, ber.TypePrimitive, tag, nil, "")
	p.Data.Write(b)
	return p
}

// TestSearch_MalformedFilterLogged: a filter that is not valid BER for a
// Filter is a protocol error (RFC 4511 section 4.1.1), and is logged at info
// level with the reason, where before it was logged only at debug.
func TestSearch_MalformedFilterLogged(t *testing.T) {
	logger, logs := bufferLogger(hclog.Info)
	mux := newTestMux(t)
	must(t, mux.Search(func(w *ResponseWriter, r *Request) {
		_ = w.Write(r.NewSearchDoneResponse(WithResponseCode(ResultSuccess)))
	}))
	_, addr := startServer(t, mux, WithLogger(logger))
	op := searchOp(t, "dc=x")
	bad := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ApplicationSearchRequest, nil, "Search Request")
	for i, c := range op.Children {
		if i == 6 { // the filter
			c = extensible(ctxString(ruleType, "ou"), ctxString(ruleMatchValue, "x"), ctxBytes(ruleDNAttributes, 1, 1))
		}
		bad.AppendChild(c)
	}
	c := dialRaw(t, addr)
	c.send(1, bad)
	expectNotice(t, c.mustRead(), ResultProtocolError)
	c.expectClosed()
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(logs.String(), "dnAttributes is not a BOOLEAN") })
	if !strings.Contains(logs.String(), "[INFO]") {
		t.Fatalf("protocol error not logged at info: %s", logs.String())
	}
}
