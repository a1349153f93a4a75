package proxy

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/entra"
	"github.com/dirgate/dirgate/internal/fakeentra"
)

// startEntra syncs a fake Entra tenant into the cache with the entra
// source and serves it through a proxy whose binds check passwords with
// the tenant's password grant (or refuse them, checkOff).
func startEntra(t *testing.T, checkOff bool) string {
	t.Helper()
	const clientID, secret = "11111111-2222-3333-4444-555555555555", "app-secret-value"
	tenant := fakeentra.New(t, fakeentra.WithDomain("contoso.example"))
	tenant.AddApp(fakeentra.App{ClientID: clientID, Secret: secret, Roles: []string{"User.Read.All", "GroupMember.Read.All"}})
	tenant.PutUser(fakeentra.User{ID: "u-ann", UserPrincipalName: "ann@contoso.example", Mail: "ann@contoso.example",
		ProxyAddresses: []string{"SMTP:ann@contoso.example", "smtp:a.smith@contoso.example"}, AccountEnabled: true, Password: "Ann-Passw0rd"})
	tenant.PutUser(fakeentra.User{ID: "u-mfa", UserPrincipalName: "mfa@contoso.example", Mail: "mfa@contoso.example",
		AccountEnabled: true, Password: "Mfa-Passw0rd", MFARequired: true})
	t.Setenv("DIRGATE_TEST_ENTRA_SECRET", secret)
	y := fmt.Sprintf(`cache: {dir: %s}
ldap: {listen: "127.0.0.1:0"}
connectors:
  - name: m365
    type: entra
    email_domains: [contoso.example]
    entra: {tenant: %s, client_id: %s, client_secret_env: DIRGATE_TEST_ENTRA_SECRET,
            authority_url: %q, graph_url: %q, password_check: %v}
`, t.TempDir(), tenant.ID(), clientID, tenant.AuthorityURL(), tenant.GraphURL(), !checkOff)
	cfg, err := config.Parse("test.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	src, err := entra.New(&cfg.Connectors[0], log)
	if err != nil {
		t.Fatal(err)
	}
	store := syncedStore(t, cfg, cache.Options{InMemory: true}, src, log)
	_, addr := serveStore(t, cfg, store, nil, false, log)
	return addr
}

// TestEntraBind: an LDAP bind as a synced Entra user is checked with the
// password grant, by primary address or alias; refusals read as LDAP
// invalidCredentials, with the reason only after a verified password.
func TestEntraBind(t *testing.T) {
	on, off := startEntra(t, false), startEntra(t, true)
	cases := []struct {
		name, addr, login, password string
		code                        uint16 // 0: success
		diag                        string
	}{
		{"right password", on, "ann@contoso.example", "Ann-Passw0rd", 0, ""},
		{"right password by alias", on, "a.smith@contoso.example", "Ann-Passw0rd", 0, ""},
		{"wrong password", on, "a.smith@contoso.example", "wrong", ldap.LDAPResultInvalidCredentials, "invalid credentials"},
		{"MFA required", on, "mfa@contoso.example", "Mfa-Passw0rd", ldap.LDAPResultInvalidCredentials, "not allowed"},
		{"password check off", off, "ann@contoso.example", "Ann-Passw0rd", ldap.LDAPResultInvalidCredentials, "invalid credentials"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := dial(t, tc.addr).Bind(tc.login, tc.password)
			if tc.code == 0 {
				if err != nil {
					t.Fatalf("Bind: %v", err)
				}
				return
			}
			if !ldap.IsErrorWithCode(err, tc.code) || !strings.Contains(err.Error(), tc.diag) {
				t.Fatalf("Bind: %v, want code %d with %q", err, tc.code, tc.diag)
			}
		})
	}
}
