// SPDX-License-Identifier: MIT

package gldap

import (
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/hashicorp/go-hclog"
)

func TestHandlerPanic_AnsweredAndConnectionKept(t *testing.T) {
	logger, logs := bufferLogger(hclog.Error)
	mux := newTestMux(t)
	must(t, mux.Bind(bindSuccess))
	must(t, mux.Search(func(w *ResponseWriter, r *Request) {
		panic("boom")
	}, WithBaseDN("dc=panic")))
	must(t, mux.Search(func(w *ResponseWriter, r *Request) {
		_ = w.Write(r.NewSearchResponseEntry("cn=1,dc=partial"))
		_ = w.Write(r.NewSearchResponseEntry("cn=2,dc=partial"))
		panic("boom after entries")
	}, WithBaseDN("dc=partial")))
	_, addr := startServer(t, mux, WithLogger(logger))
	l := dialLDAP(t, addr)

	_, err := l.Search(ldap.NewSearchRequest("dc=panic", ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", nil, nil))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultOther) {
		t.Fatalf("expected LDAPResultOther, got %v", err)
	}
	res, err := l.Search(ldap.NewSearchRequest("dc=partial", ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", nil, nil))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultOther) {
		t.Fatalf("expected LDAPResultOther after entries, got %v", err)
	}
	if res == nil || len(res.Entries) != 2 {
		t.Fatalf("expected the 2 entries written before the panic, got %v", res)
	}
	// the connection keeps serving
	must(t, l.Bind("cn=admin", "secret"))

	if got := logs.String(); !strings.Contains(got, "[ERROR]") || !strings.Contains(got, "recovered from panic") || !strings.Contains(got, "boom") {
		t.Fatalf("panic not logged at error level: %s", got)
	}
}

func TestHandlerPanic_AfterResponseWritesNothingMore(t *testing.T) {
	mux := newTestMux(t)
	must(t, mux.Bind(func(w *ResponseWriter, r *Request) {
		bindSuccess(w, r)
		panic("boom after response")
	}))
	_, addr := startServer(t, mux)
	c := dialRaw(t, addr)

	for id := int64(1); id <= 2; id++ {
		c.send(id, simpleBindOp())
		gotID, tag, code := resultOf(t, c.mustRead())
		if gotID != id || tag != ApplicationBindResponse || code != ResultSuccess {
			t.Fatalf("request %d: got id %d tag %d code %d", id, gotID, tag, code)
		}
	}
}

func TestHandlerPanic_StartTLS(t *testing.T) {
	mux := newTestMux(t)
	must(t, mux.Bind(bindSuccess))
	must(t, mux.ExtendedOperation(func(w *ResponseWriter, r *Request) {
		panic("boom in StartTLS")
	}, ExtendedOperationStartTLS))
	_, addr := startServer(t, mux)
	l := dialLDAP(t, addr)

	_, err := l.Extended(ldap.NewExtendedRequest(string(ExtendedOperationStartTLS), nil))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultOther) {
		t.Fatalf("expected LDAPResultOther, got %v", err)
	}
	must(t, l.Bind("cn=admin", "secret"))
}
