package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/cloudapi"
	"github.com/dirgate/dirgate/google"
	"github.com/dirgate/dirgate/internal/fakegoogle"
	dirsync "github.com/dirgate/dirgate/sync"
)

// googleSecureLDAP is a fake Workspace account holding the users of the
// Secure LDAP emulation (scripts/testenv/secureldap.sh), and a google
// connector with its secure_ldap section: hosts (primary first), the
// client certificate and key.
func googleSecureLDAP(t *testing.T, e env, fg *fakegoogle.Customer, name, hosts, cert, key string) string {
	t.Helper()
	keyJSON, _ := fg.ServiceAccountKey(t, google.Scopes...)
	keyFile := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(keyFile, keyJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("  - name: %s\n    type: google\n    email_domains: [%s, %s]\n    timeout: 3s\n"+
		"    google:\n      service_account_key_file: %s\n      admin: admin@%s\n      token_url: %s\n      directory_url: %s\n"+
		"      secure_ldap: {%s, port: %s, ca_file: %s, client_certificate_file: %s, client_key_file: %s, base_dn: %q}\n",
		name, e.Get(t, "DIRGATE_GSL_DOMAIN"), e.Get(t, "DIRGATE_GSL_OTHER_DOMAIN"), keyFile, e.Get(t, "DIRGATE_GSL_DOMAIN"), fg.TokenURL(), fg.DirectoryURL(),
		hosts, e.Get(t, "DIRGATE_GSL_LDAPS_PORT"), e.Get(t, "DIRGATE_GSL_CA"), cert, key, e.Get(t, "DIRGATE_GSL_BASE"))
}

// TestGoogleSecureLDAPBind binds through dirgate as the users of a Google
// connector synced from a fake account, with their passwords checked by
// the Secure LDAP emulation (a slapd that demands a client certificate):
// the right password binds, also by alias, for a user in a nested org
// unit and for a secondary domain's user who shares a local part with
// another (each is looked up in Google's tree), and when the primary host is
// down (failover); a wrong one is 49; a user Google suspended since the
// last sync is refused by Secure LDAP, and once synced, by dirgate; a
// certificate Secure LDAP does not trust makes every bind fail as
// unavailable, with the reason logged.
func TestGoogleSecureLDAPBind(t *testing.T) {
	e := loadEnv(t)
	domain := e.Get(t, "DIRGATE_GSL_DOMAIN")
	fg := fakegoogle.New(t, fakegoogle.WithDomains(domain, e.Get(t, "DIRGATE_GSL_OTHER_DOMAIN")))
	fg.PutUser(fakegoogle.User{ID: "100", PrimaryEmail: "admin@" + domain, IsAdmin: true})
	fg.PutUser(fakegoogle.User{ID: "101", PrimaryEmail: e.Get(t, "DIRGATE_GSL_USER"), Aliases: []string{"ann.alias@" + domain}})
	// In an org unit beneath the root: her entry is under it in Google's
	// tree. The cache does not know the other domain's ann moved to
	// /Sales: she is looked up.
	fg.PutUser(fakegoogle.User{ID: "104", PrimaryEmail: e.Get(t, "DIRGATE_GSL_NESTED_USER"), OrgUnitPath: e.Get(t, "DIRGATE_GSL_NESTED_USER_OU")})
	fg.PutUser(fakegoogle.User{ID: "105", PrimaryEmail: e.Get(t, "DIRGATE_GSL_OTHER_USER"), OrgUnitPath: "/"})
	// Suspended at Google after the last sync: the cache still has her enabled.
	fg.PutUser(fakegoogle.User{ID: "103", PrimaryEmail: e.Get(t, "DIRGATE_GSL_SUSPENDED_USER")})

	host, pw := e.Get(t, "DIRGATE_GSL_HOST"), e.Get(t, "DIRGATE_GSL_USER_PW")
	cert, key := e.Get(t, "DIRGATE_GSL_CLIENT_CERT"), e.Get(t, "DIRGATE_GSL_CLIENT_KEY")
	connectors := map[string]string{
		"gws": googleSecureLDAP(t, e, fg, "gws", "host: "+host, cert, key),
		// The primary is a loopback address nothing listens on.
		"failover": googleSecureLDAP(t, e, fg, "failover", "host: 127.0.0.9, alternate_host: "+host, cert, key),
		"untrusted": googleSecureLDAP(t, e, fg, "untrusted", "host: "+host,
			e.Get(t, "DIRGATE_GSL_UNTRUSTED_CLIENT_CERT"), e.Get(t, "DIRGATE_GSL_UNTRUSTED_CLIENT_KEY")),
	}
	// start is dirgate with one of the connectors, synced from the fake
	// account; bind binds through it.
	start := func(t *testing.T, name string) (sync func(), bind func(login, password string) error) {
		gw := startGateway(t, parseConfig(t, connectors[name]))
		sync = func() {
			t.Helper()
			c, _ := gw.cfg.Connector(name)
			src, err := google.New(c, gw.log, cloudapi.WithHTTPClient(fg.HTTPClient()))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := gw.engine.Run(t.Context(), c, src, dirsync.Options{}); err != nil {
				t.Fatalf("sync %s: %v", name, err)
			}
		}
		sync()
		return sync, func(login, password string) error { return gw.dial(t).Bind(login, password) }
	}
	user, suspended := e.Get(t, "DIRGATE_GSL_USER"), e.Get(t, "DIRGATE_GSL_SUSPENDED_USER")
	t.Run("binds", func(t *testing.T) {
		sync, bind := start(t, "gws")
		for _, tc := range []struct {
			login, password string
			code            uint16 // 0: success
		}{
			{user, pw, 0},
			{"ann.alias@" + domain, pw, 0},
			{user, "wrong", ldap.LDAPResultInvalidCredentials},
			{suspended, pw, ldap.LDAPResultInvalidCredentials},
			{e.Get(t, "DIRGATE_GSL_NESTED_USER"), pw, 0},
			{e.Get(t, "DIRGATE_GSL_NESTED_USER"), "wrong", ldap.LDAPResultInvalidCredentials},
			// The same local part as user's, in the other domain: her own
			// password binds, user's does not.
			{e.Get(t, "DIRGATE_GSL_OTHER_USER"), e.Get(t, "DIRGATE_GSL_OTHER_USER_PW"), 0},
			{e.Get(t, "DIRGATE_GSL_OTHER_USER"), pw, ldap.LDAPResultInvalidCredentials},
		} {
			if err := bind(tc.login, tc.password); (tc.code == 0 && err != nil) || (tc.code != 0 && !ldap.IsErrorWithCode(err, tc.code)) {
				t.Errorf("bind as %s: %v, want code %d", tc.login, err, tc.code)
			}
		}
		fg.PutUser(fakegoogle.User{ID: "103", PrimaryEmail: suspended, Suspended: true})
		sync()
		if err := bind(suspended, pw); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			t.Errorf("bind as the suspended user after the sync: %v", err)
		}
	})
	t.Run("failover", func(t *testing.T) {
		_, bind := start(t, "failover")
		if err := bind(user, pw); err != nil {
			t.Errorf("bind with the primary Secure LDAP host down: %v", err)
		}
	})
	t.Run("untrusted client certificate", func(t *testing.T) {
		_, bind := start(t, "untrusted")
		// dirgate answers unavailable (52) for an upstream failure.
		if err := bind(user, pw); !ldap.IsErrorWithCode(err, ldap.LDAPResultUnavailable) {
			t.Errorf("bind with a client certificate Secure LDAP does not trust: %v, want unavailable", err)
		}
	})
}
