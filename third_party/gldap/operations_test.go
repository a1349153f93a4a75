// SPDX-License-Identifier: MIT

package gldap

import (
	"sync"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

func TestAbandon_IgnoredWithoutResponse(t *testing.T) {
	mux := newTestMux(t)
	must(t, mux.Bind(bindSuccess))
	_, addr := startServer(t, mux)
	c := dialRaw(t, addr)

	c.send(1, ber.NewInteger(ber.ClassApplication, ber.TypePrimitive, ApplicationAbandonRequest, 7, "Abandon Request"))
	c.send(2, simpleBindOp())
	id, tag, code := resultOf(t, c.mustRead())
	if id != 2 || tag != ApplicationBindResponse || code != ResultSuccess {
		t.Fatalf("expected only the bind response, got id %d tag %d code %d", id, tag, code)
	}
}

func TestCompare_Route(t *testing.T) {
	var (
		mu  sync.Mutex
		got CompareMessage
	)
	mux := newTestMux(t)
	must(t, mux.Compare(func(w *ResponseWriter, r *Request) {
		m, err := r.GetCompareMessage()
		if err != nil {
			t.Errorf("GetCompareMessage: %v", err)
			return
		}
		mu.Lock()
		got = *m
		mu.Unlock()
		code := ResultCompareFalse
		if m.AssertionValue == "yes" {
			code = ResultCompareTrue
		}
		_ = w.Write(r.NewResponse(WithResponseCode(code)))
	}))
	_, addr := startServer(t, mux)
	l := dialLDAP(t, addr)

	ok, err := l.Compare("cn=x,dc=y", "description", "yes")
	must(t, err)
	if !ok {
		t.Fatal("expected compareTrue")
	}
	mu.Lock()
	if got.DN != "cn=x,dc=y" || got.Attribute != "description" || got.AssertionValue != "yes" {
		t.Fatalf("unexpected compare message: %+v", got)
	}
	mu.Unlock()
	ok, err = l.Compare("cn=x,dc=y", "description", "no")
	must(t, err)
	if ok {
		t.Fatal("expected compareFalse")
	}
}

func TestCompare_FallsToDefaultRoute(t *testing.T) {
	mux := newTestMux(t)
	must(t, mux.DefaultRoute(func(w *ResponseWriter, r *Request) {
		if _, err := r.GetCompareMessage(); err != nil {
			t.Errorf("default route got a non-compare request: %v", err)
		}
		_ = w.Write(r.NewResponse(WithResponseCode(ResultCompareTrue)))
	}))
	_, addr := startServer(t, mux)

	ok, err := dialLDAP(t, addr).Compare("cn=x,dc=y", "cn", "x")
	must(t, err)
	if !ok {
		t.Fatal("expected compareTrue from the default route")
	}
}

func TestUnroutedOperations_AnsweredWithTheirResponseType(t *testing.T) {
	mux := newTestMux(t)
	must(t, mux.Bind(bindSuccess))
	_, addr := startServer(t, mux)
	l := dialLDAP(t, addr)

	_, err := l.Compare("cn=x,dc=y", "cn", "x")
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultUnwillingToPerform) {
		t.Fatalf("compare: expected unwillingToPerform, got %v", err)
	}
	err = l.ModifyDN(ldap.NewModifyDNRequest("cn=x,dc=y", "cn=z", true, ""))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultUnwillingToPerform) {
		t.Fatalf("modify DN: expected unwillingToPerform, got %v", err)
	}
	// go-ldap only ends a search on SearchResultDone.
	_, err = l.Search(ldap.NewSearchRequest("dc=y", ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", nil, nil))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultUnwillingToPerform) {
		t.Fatalf("search: expected unwillingToPerform, got %v", err)
	}
	must(t, l.Bind("cn=admin", "secret"))
}

func TestDefaultRoute_SearchAndBind(t *testing.T) {
	mux := newTestMux(t)
	must(t, mux.Bind(bindSuccess))
	must(t, mux.DefaultRoute(func(w *ResponseWriter, r *Request) {
		_ = w.Write(r.NewResponse(WithResponseCode(ResultNoSuchObject)))
	}))
	_, addr := startServer(t, mux)
	l := dialLDAP(t, addr)

	must(t, l.Bind("cn=admin", "secret"))
	_, err := l.Search(ldap.NewSearchRequest("dc=y", ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", nil, nil))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		t.Fatalf("expected noSuchObject from the default route, got %v", err)
	}
}

func TestModifyDN_Route(t *testing.T) {
	got := make(chan ModifyDNMessage, 1)
	mux := newTestMux(t)
	must(t, mux.ModifyDN(func(w *ResponseWriter, r *Request) {
		m, err := r.GetModifyDNMessage()
		if err != nil {
			t.Errorf("GetModifyDNMessage: %v", err)
			return
		}
		got <- *m
		_ = w.Write(r.NewResponse(WithResponseCode(ResultSuccess)))
	}))
	_, addr := startServer(t, mux)

	must(t, dialLDAP(t, addr).ModifyDN(ldap.NewModifyDNRequest("cn=x,dc=y", "cn=z", true, "ou=new,dc=y")))
	m := <-got
	if m.DN != "cn=x,dc=y" || m.NewRDN != "cn=z" || !m.DeleteOldRDN || m.NewSuperior != "ou=new,dc=y" {
		t.Fatalf("unexpected modify DN message: %+v", m)
	}
}

func TestUnknownOperation_ProtocolErrorAndClose(t *testing.T) {
	tests := map[string]*ber.Packet{
		"unassigned tag": ber.Encode(ber.ClassApplication, ber.TypeConstructed, 30, nil, "Unknown"),
		"response tag":   ber.Encode(ber.ClassApplication, ber.TypeConstructed, ApplicationBindResponse, nil, "Bind Response"),
		"bad bind":       ber.Encode(ber.ClassApplication, ber.TypeConstructed, ApplicationBindRequest, nil, "Empty Bind"),
	}
	mux := newTestMux(t)
	must(t, mux.Bind(bindSuccess))
	_, addr := startServer(t, mux)
	for name, op := range tests {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, addr)
			c.send(1, op)
			expectNotice(t, c.mustRead(), ResultProtocolError)
			c.expectClosed()
		})
	}
	// other connections are unaffected
	must(t, dialLDAP(t, addr).Bind("cn=admin", "secret"))
}

func TestNewResponse_EmptyOptionalFields(t *testing.T) {
	mux := newTestMux(t)
	must(t, mux.Compare(func(w *ResponseWriter, r *Request) {
		_ = w.Write(r.NewResponse(WithResponseCode(ResultCompareTrue)))
	}))
	_, addr := startServer(t, mux)
	c := dialRaw(t, addr)
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ApplicationCompareRequest, nil, "Compare Request")
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "cn=x,dc=y", "DN"))
	ava := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "AVA")
	ava.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "cn", "Attribute"))
	ava.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "x", "Value"))
	op.AppendChild(ava)
	c.send(1, op)

	resp := c.mustRead()
	if _, tag, code := resultOf(t, resp); tag != ApplicationCompareResponse || code != ResultCompareTrue {
		t.Fatalf("got tag %d code %d", tag, code)
	}
	result := resp.Children[1].Children
	if matchedDN, diag := result[1].Data.String(), result[2].Data.String(); matchedDN != "" || diag != "" {
		t.Fatalf("matchedDN %q, diagnosticMessage %q: want both empty", matchedDN, diag)
	}
}
