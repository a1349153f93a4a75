package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/internal/fakegoogle"
	"github.com/dirgate/dirgate/internal/ldapstub"
	"github.com/dirgate/dirgate/internal/testlog"
	"github.com/dirgate/dirgate/internal/testnet"
	"github.com/dirgate/dirgate/internal/testpki"
)

// secureLDAPStub is a Secure-LDAP-shaped server: LDAPS that demands a
// client certificate, where uid=ann,ou=Users,dc=example,dc=com binds with
// "Ann-Passw0rd". It records the DNs it was asked to bind as.
type secureLDAPStub struct {
	port   int
	caFile string
	mu     sync.Mutex
	binds  []string
}

func startSecureLDAPStub(t *testing.T) *secureLDAPStub {
	t.Helper()
	ca := testpki.NewCA(t, "stub CA")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{ca.Issue(t, key, "127.0.0.1", time.Now().Add(time.Hour))},
		ClientAuth:   tls.RequireAnyClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &secureLDAPStub{caFile: ca.File(t)}
	s.port = testnet.Serve(t, ln, func(c net.Conn) {
		ldapstub.ServeConn(c, func(c net.Conn, id int64, op *ber.Packet) bool {
			if op.Tag == ldap.ApplicationSearchRequest {
				// A client without "Read user information": the checker
				// binds as the DN of the cached org unit path.
				ldapstub.Write(c, id, ldapstub.Result(ldap.ApplicationSearchResultDone, ldap.LDAPResultInsufficientAccessRights, ""), nil)
				return true
			}
			if op.Tag != ldap.ApplicationBindRequest || len(op.Children) != 3 {
				return false
			}
			dn, pw := op.Children[1].Data.String(), op.Children[2].Data.String()
			s.mu.Lock()
			s.binds = append(s.binds, dn)
			s.mu.Unlock()
			code := uint16(ldap.LDAPResultInvalidCredentials)
			if dn == "uid=ann,ou=Users,dc=example,dc=com" && pw == "Ann-Passw0rd" {
				code = ldap.LDAPResultSuccess
			}
			ldapstub.Write(c, id, ldapstub.Result(ldap.ApplicationBindResponse, code, ""), nil)
			return true
		})
	})
	return s
}

func (s *secureLDAPStub) bound() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.binds...)
}

// writeClientCert writes a client certificate and its key as PEM files.
func writeClientCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	ca := testpki.NewCA(t, "Google")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert := ca.Issue(t, key, "127.0.0.1", time.Now().Add(time.Hour))
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "ldap-client.crt"), filepath.Join(dir, "ldap-client.key")
	for f, b := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: cert.Certificate[0]}, keyFile: {Type: "PRIVATE KEY", Bytes: der}} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// startGoogle is an authenticator with one Google connector (gws) whose
// cache holds ann (primary ann@example.com, alias ann.alias@example.com)
// and suspended sue; secureLDAP is the YAML of google.secure_ldap, or ""
// for none.
func startGoogle(t *testing.T, secureLDAP string) (*Authenticator, *testlog.Buffer) {
	t.Helper()
	keyJSON, _ := fakegoogle.New(t).ServiceAccountKey(t)
	keyFile := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(keyFile, keyJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	y := fmt.Sprintf(`cache: {dir: %s}
connectors:
  - name: gws
    type: google
    email_domains: [example.com]
    timeout: 2s
    google: {service_account_key_file: %s, admin: admin@example.com%s}
`, t.TempDir(), keyFile, secureLDAP)
	var entries []*cache.Entry
	for _, u := range []struct {
		id, local string
		suspended bool
	}{{"101", "ann", false}, {"102", "sue", true}} {
		entries = append(entries, &cache.Entry{Connector: "gws", ID: u.id, DN: "cn=" + u.id + ",ou=users,o=example.com", Kind: cache.KindUser,
			Disabled: u.suspended, Addresses: []string{u.local + "@example.com", u.local + ".alias@example.com"},
			Attrs: []cache.Attr{{Name: "primaryEmail", Values: []string{u.local + "@example.com"}}}})
	}
	logs := &testlog.Buffer{}
	a := cachedAuthenticator(t, y, "gws", entries, logs)
	a.wait = (&sleeps{}).wait
	return a, logs
}

// TestGooglePasswordCheck: with google.secure_ldap, a bind by any address
// of a Google user is checked by a bind to Secure LDAP as the user's entry
// in Google's tree, over LDAPS with the client certificate; a suspended
// user is refused before Google is asked; without secure_ldap every bind
// is refused, with the reason in a start-up warning and the audit line.
func TestGooglePasswordCheck(t *testing.T) {
	stub := startSecureLDAPStub(t)
	certFile, keyFile := writeClientCert(t)
	withLDAP := fmt.Sprintf(", secure_ldap: {host: 127.0.0.1, port: %d, ca_file: %s, client_certificate_file: %s, client_key_file: %s}",
		stub.port, stub.caFile, certFile, keyFile)
	cases := []struct {
		name, yaml, login, password string
		reason                      Reason // 0: accepted
		binds                       int    // bind requests Secure LDAP saw
		log                         string
	}{
		{name: "right password by primary email", yaml: withLDAP, login: "ann@example.com", password: "Ann-Passw0rd", binds: 1},
		{name: "right password by alias", yaml: withLDAP, login: "ann.alias@example.com", password: "Ann-Passw0rd", binds: 1},
		{name: "wrong password", yaml: withLDAP, login: "ann@example.com", password: "nope", reason: ReasonInvalidCredentials, binds: 1},
		{name: "suspended", yaml: withLDAP, login: "sue@example.com", password: "whatever", reason: ReasonDisabled},
		{name: "no secure_ldap", login: "ann@example.com", password: "Ann-Passw0rd", reason: ReasonRestricted,
			log: "google.secure_ldap is not configured"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, logs := startGoogle(t, tc.yaml)
			before := len(stub.bound())
			id, err := a.Login(context.Background(), Attempt{Login: tc.login, Password: tc.password, Remote: "192.0.2.7:4000", Protocol: "ldap"})
			binds := stub.bound()[before:]
			if len(binds) != tc.binds || (tc.binds > 0 && binds[0] != "uid=ann,ou=Users,dc=example,dc=com") {
				t.Fatalf("Secure LDAP saw binds as %q, want %d as ann's entry in Google's tree", binds, tc.binds)
			}
			if tc.reason == 0 {
				if err != nil || id.Entry.ID != "101" || id.Host != "127.0.0.1" {
					t.Fatalf("Login: %v, %+v", err, id)
				}
				return
			}
			var ae *Error
			if !errors.As(err, &ae) || ae.Reason != tc.reason || ae.Connector != "gws" {
				t.Fatalf("Login: %v, want %s", err, tc.reason)
			}
			if out := logs.String(); tc.log != "" && strings.Count(out, tc.log) < 2 {
				t.Fatalf("the start-up warning and the audit line do not both say %q:\n%s", tc.log, out)
			}
		})
	}
}
