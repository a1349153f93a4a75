// SPDX-License-Identifier: MIT

package gldap

import (
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

func TestExtendedResponse_WhoAmI(t *testing.T) {
	mux := newTestMux(t)
	must(t, mux.ExtendedOperation(func(w *ResponseWriter, r *Request) {
		resp := r.NewExtendedResponse(WithResponseCode(ResultSuccess))
		resp.SetResponseValue("dn:cn=x,dc=y")
		_ = w.Write(resp)
	}, ExtendedOperationWhoAmI))
	_, addr := startServer(t, mux)

	res, err := dialLDAP(t, addr).WhoAmI(nil)
	must(t, err)
	if res.AuthzID != "dn:cn=x,dc=y" {
		t.Fatalf("authzId: got %q", res.AuthzID)
	}
}

func TestExtendedResponse_ResponseName(t *testing.T) {
	const oid = "1.3.6.1.4.1.99999.1"
	mux := newTestMux(t)
	must(t, mux.ExtendedOperation(func(w *ResponseWriter, r *Request) {
		resp := r.NewExtendedResponse(WithResponseCode(ResultSuccess))
		resp.SetResponseName(oid)
		resp.SetResponseValue("v")
		_ = w.Write(resp)
	}, oid))
	_, addr := startServer(t, mux)

	resp, err := dialLDAP(t, addr).Extended(ldap.NewExtendedRequest(oid, nil))
	must(t, err)
	if resp.Name != oid {
		t.Fatalf("responseName: got %q", resp.Name)
	}
	if resp.Value == nil || resp.Value.Data.String() != "v" {
		t.Fatalf("responseValue: got %v", resp.Value)
	}
}

func TestExtendedResponse_Encoding(t *testing.T) {
	contextChildren := func(r *ExtendedResponse) map[ber.Tag]string {
		got := map[ber.Tag]string{}
		for _, child := range r.packet().Children[1].Children {
			if child.ClassType == ber.ClassContext {
				got[child.Tag] = child.Data.String()
			}
		}
		return got
	}
	r := &ExtendedResponse{baseResponse: &baseResponse{messageID: 1}}
	if got := contextChildren(r); len(got) != 0 {
		t.Fatalf("unset name and value must be absent, got %v", got)
	}
	// RFC 4532: an anonymous client's authzId is empty but still present.
	r.SetResponseValue("")
	if got, ok := contextChildren(r)[11]; !ok || got != "" {
		t.Fatalf("empty responseValue must be encoded, got %v", contextChildren(r))
	}
}
