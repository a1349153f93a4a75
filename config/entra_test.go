package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestEntraExample: the example Entra connector validates, with the
// cloud's hosts and the root DN filled in and the secret read from the
// environment.
func TestEntraExample(t *testing.T) {
	t.Setenv("DIRGATE_EXAMPLE_ENTRA_SECRET", "example-secret")
	cfg, err := Load("testdata/entra.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Connectors[0]
	e := c.Entra
	if e.ClientSecret.Reveal() != "example-secret" || e.AuthorityURL != "https://login.microsoftonline.com" ||
		e.GraphURL != "https://graph.microsoft.com" || c.RootDN != "o=contoso.onmicrosoft.com" {
		t.Errorf("entra = %+v, root_dn %q", e, c.RootDN)
	}
}

func TestEntraCloudsAndOverrides(t *testing.T) {
	t.Setenv("DIRGATE_TEST_PW", "s3cret")
	for _, tc := range []struct{ extra, authority, graph string }{
		{"cloud: usgov", "https://login.microsoftonline.us", "https://graph.microsoft.us"},
		{"authority_url: http://127.0.0.1:8443/\n      graph_url: https://graph.example.com/",
			"http://127.0.0.1:8443", "https://graph.example.com"},
	} {
		cfg, err := Parse("t.yaml", []byte(`
connectors:
  - name: m365
    type: entra
    entra:
      tenant: 00000000-0000-0000-0000-0000000000aa
      client_id: 00000000-0000-0000-0000-0000000000a1
      client_secret_env: DIRGATE_TEST_PW
      `+tc.extra+"\n"))
		if err != nil {
			t.Fatalf("%s: %v", tc.extra, err)
		}
		e := cfg.Connectors[0].Entra
		if e.AuthorityURL != tc.authority || e.GraphURL != tc.graph {
			t.Errorf("%s: hosts %q %q", tc.extra, e.AuthorityURL, e.GraphURL)
		}
		if strings.Contains(cfg.Connectors[0].RootDN, "ou=") || cfg.Connectors[0].RootDN == "" {
			t.Errorf("root_dn %q", cfg.Connectors[0].RootDN)
		}
	}
}

// TestEntraOnPremPairs: on_premises_connectors pairs the entra connector
// with ad connectors for the cache; without it nothing is paired.
func TestEntraOnPremPairs(t *testing.T) {
	t.Setenv("DIRGATE_TEST_PW", "s3cret")
	const base = `
connectors:
  - name: corp-ad
    type: ad
    host: dc1.corp.example.com
    bind_dn: CN=dirgate,DC=corp,DC=example,DC=com
    bind_password_env: DIRGATE_TEST_PW
    root_dn: DC=corp,DC=example,DC=com
  - name: m365
    type: entra
    entra:
      tenant: contoso.onmicrosoft.com
      client_id: 00000000-0000-0000-0000-0000000000a1
      client_secret_env: DIRGATE_TEST_PW
`
	for _, tc := range []struct{ extra, want string }{
		{"", "map[]"},
		{"      on_premises_connectors: [corp-ad]\n", "map[m365:[corp-ad]]"},
	} {
		cfg, err := Parse("t.yaml", []byte(base+tc.extra))
		if err != nil {
			t.Fatalf("%q: %v", tc.extra, err)
		}
		if got := fmt.Sprint(cfg.OnPremPairs()); got != tc.want {
			t.Errorf("%q: OnPremPairs = %s, want %s", tc.extra, got, tc.want)
		}
	}
}
