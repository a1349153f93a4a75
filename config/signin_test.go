package config

import (
	"strings"
	"testing"
)

const entraConnector = `
connectors:
  - name: corp
    type: openldap
    host: ldap.example.com
    root_dn: dc=example,dc=com
  - name: m365
    type: entra
    entra:
      tenant: 00000000-0000-0000-0000-0000000000aa
      client_id: 00000000-0000-0000-0000-0000000000a1
      client_secret_env: DIRGATE_TEST_SIGNIN_SECRET
`

const signInOIDC = `
oidc:
  issuer: http://127.0.0.1:9000
  clients:
    - {id: rp, public: true, redirect_uris: [http://127.0.0.1:3000/cb]}
`

func TestSignInUpstream(t *testing.T) {
	t.Setenv("DIRGATE_TEST_SIGNIN_SECRET", "s")
	cfg := mustParse(t, entraConnector+signInOIDC+`
auth:
  profiles:
    - {domains: [contoso.com], connector: m365, sign_in: upstream}
    - {domains: [fabrikam.com], connector: m365, sign_in: both}
    - {domains: [example.com], connector: corp}
`)
	ps := cfg.Auth.Profiles
	if !ps[0].Upstream() || !ps[1].Upstream() || ps[2].Upstream() || ps[2].SignIn != "" {
		t.Errorf("profiles %+v", ps)
	}
}

func TestSignInErrors(t *testing.T) {
	t.Setenv("DIRGATE_TEST_SIGNIN_SECRET", "s")
	for _, tc := range []struct{ name, yml, want string }{
		{"unknown value", entraConnector + signInOIDC + `
auth:
  profiles:
    - domains: [contoso.com]
      connector: m365
      sign_in: microsoft
`, `test.yaml:23: auth.profiles[0].sign_in: "microsoft" is not one of password, upstream, both`},
		{"LDAP connector", entraConnector + signInOIDC + `
auth:
  profiles:
    - domains: [example.com]
      connector: corp
      sign_in: both
`, `test.yaml:23: auth.profiles[0].sign_in: "both" needs a connector whose directory signs users in itself (type entra, google); connector "corp" is of type openldap`},
		{"no oidc", entraConnector + `
auth:
  profiles:
    - domains: [contoso.com]
      connector: m365
      sign_in: upstream
`, `test.yaml:18: auth.profiles[0].sign_in: "upstream" applies to dirgate's OIDC login page, but there is no oidc section`},
		{"any domain", entraConnector + signInOIDC + `
auth:
  profiles:
    - domains: ["*"]
      connector: m365
      sign_in: upstream
`, `test.yaml:23: auth.profiles[0].sign_in: upstream would send every login of any domain ("*") to m365`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if msg := parseErr(t, tc.yml); !strings.Contains(msg, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", msg, tc.want)
			}
		})
	}
}
