package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dirgate/dirgate/passwd"
)

// newE2EBase is an end-to-end server of the cloud connector tests before
// its configuration is written: free addresses, the issuer, and base, the
// connector's root DN. It is stopped at the end of t.
func newE2EBase(t *testing.T, base string) *e2eServer {
	t.Helper()
	s := &e2eServer{tb: t, ldapAddr: freePort(t), oidcAddr: freePort(t), adminAddr: freePort(t), base: base}
	s.issuer = "http://" + s.oidcAddr
	s.stop = func() {}
	t.Cleanup(func() { s.stop() })
	return s
}

// writeConfig writes the server's configuration: LDAP, admin API, the
// service account, the OIDC provider with the relying party wiki, and the
// connector conn of type typ for the addresses of domain, whose users
// sign in with a password or through its upstream; section is the
// connector's type section (indented by four spaces).
func (s *e2eServer) writeConfig(t *testing.T, conn, typ, domain, section string) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("DIRGATE_TEST_E2E_ADMIN_TOKEN", e2eAdminToken)
	svcHash, err := passwd.Hash(e2eSvcPW)
	if err != nil {
		t.Fatal(err)
	}
	rpHash, err := passwd.Hash(e2eRPSecret)
	if err != nil {
		t.Fatal(err)
	}
	y := fmt.Sprintf(`cache: {dir: %s}
ldap: {listen: %q}
log: {level: debug, format: text}
admin: {listen: %q, token_env: DIRGATE_TEST_E2E_ADMIN_TOKEN}
service_accounts: [{dn: %q, password_hash: %q}]
oidc:
  issuer: %s
  listen: %q
  clients:
    - {id: wiki, secret_hash: %q, redirect_uris: [%s]}
auth:
  throttle: {base_delay: 1ms}
  profiles:
    - {domains: [%[10]s], connector: %[11]s, sign_in: both}
# The schedule never fires during a test: the only runs are the start-up
# run of the empty cache and the test's own.
connectors:
  - name: %[11]s
    type: %[12]s
    email_domains: [%[10]s]
    schedule: ["0 0 1 1 *"]
    safety: {max_deletes: 10, max_delete_percent: 50}
%[13]s`, filepath.Join(dir, "cache"), s.ldapAddr, s.adminAddr, e2eSvcDN, svcHash, s.issuer, s.oidcAddr, rpHash, e2eRPRedirect,
		domain, conn, typ, section)
	s.path = filepath.Join(dir, "dirgate.yaml")
	if err := os.WriteFile(s.path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
}
