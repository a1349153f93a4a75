package testconn

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/internal/ldapstub"
)

// stub is a minimal LDAP server (plain text) for the answers the real test
// servers never give: a bind diagnostic that quotes the password, a refusal
// for want of strong authentication, a server that ignores the paged-results
// control.
type stub struct {
	bindCode  uint16 // result of every bind
	bindDiag  string
	users     int  // entries returned to a subtree search
	pagingAck bool // answer a paged search with a paged-results control
}

func (s *stub) start(t *testing.T) int {
	t.Helper()
	return ldapstub.Serve(t, s.handle)
}

func (s *stub) handle(c net.Conn, id int64, op *ber.Packet) bool {
	switch op.Tag {
	case ldap.ApplicationBindRequest:
		ldapstub.Write(c, id, ldapstub.Result(ldap.ApplicationBindResponse, s.bindCode, s.bindDiag), nil)
	case ldap.ApplicationSearchRequest:
		scope := op.Children[1].Value.(int64)
		n := 1
		if scope == int64(ldap.ScopeWholeSubtree) {
			n = s.users
		}
		for i := range n {
			ldapstub.Write(c, id, entry(fmt.Sprintf("uid=u%d,dc=stub", i)), nil)
		}
		var controls *ber.Packet
		if s.pagingAck && scope == int64(ldap.ScopeWholeSubtree) {
			controls = ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "Controls")
			controls.AppendChild(ldap.NewControlPaging(0).Encode())
		}
		ldapstub.Write(c, id, ldapstub.Result(ldap.ApplicationSearchResultDone, 0, ""), controls)
	case ldap.ApplicationExtendedRequest: // StartTLS: not offered
		ldapstub.Write(c, id, ldapstub.Result(ldap.ApplicationExtendedResponse, ldap.LDAPResultProtocolError, "unsupported extended operation"), nil)
	case ldap.ApplicationUnbindRequest:
		return false
	}
	return true
}

func entry(dn string) *ber.Packet {
	e := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationSearchResultEntry, nil, "Entry")
	e.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, "DN"))
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Attributes")
	a := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Attribute")
	a.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "mail", "type"))
	vals := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "Values")
	vals.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "x@stub.test", "value"))
	a.AppendChild(vals)
	attrs.AppendChild(a)
	e.AppendChild(attrs)
	return e
}

func TestStubAnswers(t *testing.T) {
	const pw = "s3cret-Passw0rd"
	cases := []struct {
		name      string
		stub      stub
		step      string
		ok        bool
		detail    []string
		fix       []string
		notInText string
		reportOK  bool
		pageSize  string
		extra     []string
	}{
		{name: "diagnostic quoting the password is masked", stub: stub{bindCode: 49, bindDiag: "bad password " + pw + " for user"},
			step: StepBind, detail: []string{"invalid credentials (49)", "[redacted]"}, notInText: pw},
		{name: "strong authentication required", stub: stub{bindCode: 8, bindDiag: "BindSimple: Transport encryption required."},
			step: StepBind, detail: []string{"strong auth required (8)", "unencrypted"}, fix: []string{"LDAPS or StartTLS", "relax the DC policy"}},
		{name: "invalid DN syntax", stub: stub{bindCode: 34, bindDiag: "invalid DN"},
			step: StepBind, fix: []string{"RFC 4514", `\,`}},
		{name: "starttls not offered", extra: []string{"encryption: relaxed", "tls_mode: starttls"},
			step: StepStartTLS, detail: []string{"the server refused StartTLS: protocol error (2): unsupported extended operation"},
			fix: []string{"tls_mode: ldaps"}},
		{name: "paging ignored", stub: stub{users: 30}, pageSize: "10",
			step: StepPaging, detail: []string{"ignored the paged-results control", "more than 10 entries"},
			fix: []string{"syncs will read unpaged and fail above its size limit"}},
		{name: "one page without paging answer", stub: stub{users: 3},
			step: StepPaging, ok: true, reportOK: true, detail: []string{"ended in one page (3 users", "not confirmed"}},
		{name: "one page with paging answer", stub: stub{users: 3, pagingAck: true},
			step: StepPaging, ok: true, reportOK: true, detail: []string{"supported: the search ended in one page (3 users"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			port := tc.stub.start(t)
			t.Setenv("TC_STUB_PW", pw)
			lines := []string{"type: openldap", "host: 127.0.0.1", fmt.Sprintf("port: %d", port), "encryption: none",
				"bind_dn: cn=sync,dc=stub", "bind_password_env: TC_STUB_PW", "root_dn: dc=stub", "timeout: 2s"}
			if tc.pageSize != "" {
				lines = append(lines, "page_size: "+tc.pageSize)
			}
			if tc.extra != nil {
				lines = append(without(lines, "encryption:"), tc.extra...)
			}
			r := Run(context.Background(), parseConnector(t, lines...))
			text := r.Text()
			s := stepOf(t, r, "127.0.0.1", tc.step)
			if s.OK != tc.ok || r.OK != tc.reportOK {
				t.Fatalf("step OK=%v report OK=%v, want %v %v:\n%s", s.OK, r.OK, tc.ok, tc.reportOK, text)
			}
			for _, w := range tc.detail {
				if !strings.Contains(s.Detail, w) {
					t.Errorf("detail %q lacks %q", s.Detail, w)
				}
			}
			for _, w := range tc.fix {
				if !strings.Contains(s.Fix, w) {
					t.Errorf("fix %q lacks %q", s.Fix, w)
				}
			}
			if tc.notInText != "" && strings.Contains(text, tc.notInText) {
				t.Errorf("report shows %q:\n%s", tc.notInText, text)
			}
			if !tc.ok {
				checkSkippedAfter(t, r, "127.0.0.1", tc.step)
			}
		})
	}
}
