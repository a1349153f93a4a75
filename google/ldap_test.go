package google

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/internal/ldapstub"
	"github.com/dirgate/dirgate/upstream"
)

const testBase = "dc=example,dc=test"

// TestOrgUnitBindDN: the fallback DN puts the user under her org unit,
// innermost first, beneath the root's ou=Users, escaping every value.
func TestOrgUnitBindDN(t *testing.T) {
	for _, tc := range []struct{ email, ou, want, err string }{
		{"ann@example.test", "/", "uid=ann,ou=Users," + testBase, ""},
		{"ann@example.test", "", "uid=ann,ou=Users," + testBase, ""},
		{"lisa@example.test", "/Sales/EU", "uid=lisa,ou=EU,ou=Sales,ou=Users," + testBase, ""},
		{"o+k@example.test", "/R&D, Ops/#1", `uid=o\+k,ou=\#1,ou=R&D\, Ops,ou=Users,` + testBase, ""},
		{"nolocal", "/", "", "no local part"},
		{"@example.test", "/", "", "no local part"},
	} {
		got, err := orgUnitBindDN(testBase, tc.email, tc.ou)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("orgUnitBindDN(%q, %q) = %q, %v; want %q, %q", tc.email, tc.ou, got, err, tc.want, tc.err)
		}
	}
	if _, err := orgUnitBindDN("", "ann@example.test", "/"); err == nil {
		t.Error("no error without a base DN")
	}
}

// searchStub is a Secure LDAP stand-in that answers every search with
// entries (their DNs) and then the result code; it counts the searches
// and records their filters.
func searchStub(t *testing.T, code uint16, dns ...string) (*upstream.Target, *atomic.Int32, *atomic.Value) {
	var searches atomic.Int32
	var filter atomic.Value
	port := ldapstub.Serve(t, func(c net.Conn, id int64, op *ber.Packet) bool {
		if op.Tag != ldap.ApplicationSearchRequest {
			return false
		}
		searches.Add(1)
		if f, err := ldap.DecompileFilter(op.Children[6]); err == nil {
			filter.Store(f)
		}
		for _, dn := range dns {
			e := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationSearchResultEntry, nil, "entry")
			e.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, "objectName"))
			e.AppendChild(ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attributes"))
			ldapstub.Write(c, id, e, nil)
		}
		ldapstub.Write(c, id, ldapstub.Result(ldap.ApplicationSearchResultDone, code, ""), nil)
		return true
	})
	target := &upstream.Target{Name: "gws", Hosts: []string{"127.0.0.1"}, Port: port,
		Encryption: upstream.EncryptionNone, Timeout: 5 * time.Second}
	return target, &searches, &filter
}

// TestSecureLDAPLocator: the DN is the entry a search for the primary
// email finds (an org unit the cache does not know yet, a secondary
// domain's user sharing a local part), remembered per address and org
// unit; a refused search, none or two entries fall back to the org unit
// path's DN, and an unreachable Secure LDAP is an error.
func TestSecureLDAPLocator(t *testing.T) {
	conf := &config.GoogleSecureLDAP{BaseDN: testBase}
	found := "uid=ann,ou=Sales,ou=Users," + testBase
	fallback := "uid=ann,ou=EU,ou=Sales,ou=Users," + testBase
	for _, tc := range []struct {
		name string
		code uint16
		dns  []string
		want string
	}{
		{"found", ldap.LDAPResultSuccess, []string{found}, found},
		{"none", ldap.LDAPResultSuccess, nil, fallback},
		{"two", ldap.LDAPResultSuccess, []string{found, "uid=ann,ou=Users," + testBase}, fallback},
		{"refused", ldap.LDAPResultInsufficientAccessRights, nil, fallback},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target, searches, filter := searchStub(t, tc.code, tc.dns...)
			l := NewSecureLDAPLocator(target, conf)
			for i := range 2 {
				dn, err := l.BindDN(t.Context(), "ann@other.test", "/Sales/EU")
				if err != nil || dn != tc.want {
					t.Fatalf("lookup %d: %q, %v; want %q", i, dn, err, tc.want)
				}
			}
			if f, _ := filter.Load().(string); f != "(mail=ann@other.test)" {
				t.Errorf("filter %q", f)
			}
			// Only a found DN is remembered.
			if want := map[bool]int32{true: 1, false: 2}[tc.want == found]; searches.Load() != want {
				t.Errorf("%d searches, want %d", searches.Load(), want)
			}
			if tc.want != found {
				return
			}
			// Moved to another org unit by a sync: looked up again.
			if _, err := l.BindDN(t.Context(), "ann@other.test", "/Sales"); err != nil || searches.Load() != 2 {
				t.Errorf("after a move: %v, %d searches, want 2", err, searches.Load())
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		target := &upstream.Target{Name: "gws", Hosts: []string{"127.0.0.1"}, Port: port,
			Encryption: upstream.EncryptionNone, Timeout: 2 * time.Second}
		if dn, err := NewSecureLDAPLocator(target, conf).BindDN(t.Context(), "ann@other.test", "/"); err == nil {
			t.Errorf("no error, DN %q", dn)
		}
	})
}
