package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/dirgate/dirgate/config"
)

func TestUpstreamsFromProfiles(t *testing.T) {
	t.Setenv("DIRGATE_TEST_UPSTREAM_SECRET", "s")
	cfg, err := config.Parse("t.yaml", []byte(`
connectors:
  - name: m365
    type: entra
    entra:
      tenant: contoso.onmicrosoft.com
      client_id: 00000000-0000-0000-0000-0000000000a1
      client_secret_env: DIRGATE_TEST_UPSTREAM_SECRET
      authority_url: http://127.0.0.1:1
oidc:
  issuer: http://127.0.0.1:9000
  clients:
    - {id: rp, public: true, redirect_uris: [http://127.0.0.1:3000/cb]}
auth:
  profiles:
    - {domains: [contoso.com], connector: m365, sign_in: upstream}
    - {domains: [fabrikam.com], connector: m365, sign_in: both}
    - {domains: [other.com], connector: m365}
`))
	if err != nil {
		t.Fatal(err)
	}
	ups, err := upstreams(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(ups) != 1 || ups[0].Name != "m365" || ups[0].Discovery != "http://127.0.0.1:1/contoso.onmicrosoft.com/v2.0" ||
		ups[0].JoinClaim != "oid" || len(ups[0].Domains) != 1 || ups[0].Domains[0] != "contoso.com" || ups[0].ClientAuth == nil {
		t.Fatalf("upstreams %+v", ups)
	}
	if p, err := ups[0].ClientAuth(); err != nil || p.Get("client_secret") != "s" {
		t.Errorf("client auth %v %v", p, err)
	}
	if apps := entraApps(cfg); apps["m365"].Tenant != "contoso.onmicrosoft.com" || apps["m365"].AuthorityURL != "http://127.0.0.1:1" {
		t.Errorf("entra apps %+v", apps)
	}
	if msg := describeEntraError("interaction_required", "AADSTS50076: Due to a configuration change ..."); !strings.Contains(msg, "multi-factor") || !strings.Contains(msg, "AADSTS50076") {
		t.Errorf("described %q", msg)
	}
}

func TestGoogleUpstreamFromProfiles(t *testing.T) {
	t.Setenv("DIRGATE_TEST_GOOGLE_OAUTH", "oauth-s")
	cfg, err := config.Parse("t.yaml", []byte(`
connectors:
  - name: gws
    type: google
    email_domains: [example.com, example.org]
    google:
      service_account_key_file: ../../config/testdata/google-sa.json
      admin: admin@example.com
      domain: example.net
      issuer_url: http://127.0.0.1:1/
      oauth_client_id: 123-abc.apps.googleusercontent.com
      oauth_client_secret_env: DIRGATE_TEST_GOOGLE_OAUTH
oidc:
  issuer: http://127.0.0.1:9000
  clients:
    - {id: rp, public: true, redirect_uris: [http://127.0.0.1:3000/cb]}
auth:
  profiles:
    - {domains: [example.com], connector: gws, sign_in: upstream}
    - {domains: [example.org], connector: gws, sign_in: both}
`))
	if err != nil {
		t.Fatal(err)
	}
	ups, err := upstreams(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(ups) != 1 {
		t.Fatalf("upstreams %+v", ups)
	}
	u := ups[0]
	if u.Name != "gws" || u.Label != "Google" || u.Discovery != "http://127.0.0.1:1" || u.JoinClaim != "sub" || u.ClientID != "123-abc.apps.googleusercontent.com" ||
		u.ClientSecret != "oauth-s" || !slices.Equal(u.Domains, []string{"example.com"}) || u.AuthParams.Get("hd") != "*" {
		t.Fatalf("upstream %+v", u)
	}
	// The hd claim is checked against the email domains and the domain.
	for hd, ok := range map[string]bool{"example.com": true, "example.org": true, "example.net": true, "other.test": false} {
		if err := u.CheckClaims(u.Discovery, map[string]any{"hd": hd, "email_verified": true}); (err == nil) != ok {
			t.Errorf("hd %s: %v", hd, err)
		}
	}
}
