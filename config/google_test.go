package config

import (
	"testing"
)

// TestGoogleExample: the example Google connector validates, with the key
// read, the token URL taken from the key, the Directory and issuer URLs,
// the budget, the root DN and the Secure LDAP defaults filled in.
func TestGoogleExample(t *testing.T) {
	cfg, err := Load("testdata/google.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Connectors[0]
	g := c.Google
	if _, err := ParseGoogleServiceAccount([]byte(g.ServiceAccountKey.Reveal())); err != nil {
		t.Errorf("key not read: %v", err)
	}
	if g.TokenURL != GoogleTokenURL || g.DirectoryURL != GoogleDirectoryURL || g.IssuerURL != GoogleIssuerURL {
		t.Errorf("URLs %q %q %q", g.TokenURL, g.DirectoryURL, g.IssuerURL)
	}
	if g.RequestsPerMinute != 1500 || c.RootDN != "o=example.com" || g.Customer != GoogleMyCustomer {
		t.Errorf("requests_per_minute %d, root_dn %q, customer %q", g.RequestsPerMinute, c.RootDN, g.Customer)
	}
	if s := g.SecureLDAP; s == nil || s.Port != 636 || s.BaseDN != "dc=example,dc=com" {
		t.Errorf("secure_ldap = %+v", s)
	}
}

func TestGoogleDefaults(t *testing.T) {
	for _, tc := range []struct{ extra, rootDN, tokenURL string }{
		{"", "o=my_customer", GoogleTokenURL},
		{"customer: C01abc23d\n      token_url: http://127.0.0.1:9/token/\n      requests_per_minute: 60", "o=C01abc23d", "http://127.0.0.1:9/token"},
	} {
		cfg, err := Parse("testdata/t.yaml", []byte(`
connectors:
  - name: gws
    type: google
    google:
      service_account_key_file: google-sa.json
      admin: admin@example.com
      `+tc.extra+"\n"))
		if err != nil {
			t.Fatalf("%q: %v", tc.extra, err)
		}
		c := cfg.Connectors[0]
		if c.RootDN != tc.rootDN || c.Google.TokenURL != tc.tokenURL || c.Google.SecureLDAP != nil {
			t.Errorf("%q: root_dn %q, token_url %q, secure_ldap %v", tc.extra, c.RootDN, c.Google.TokenURL, c.Google.SecureLDAP)
		}
	}
}
