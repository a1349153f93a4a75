package config

import (
	"strings"
	"testing"
)

// googleSignInConfig is a google connector with oauth (its OAuth client
// keys, indented under google:) and a profile whose sign_in is signIn.
func googleSignInConfig(oauth, signIn string) string {
	return `
connectors:
  - name: gws
    type: google
    google:
      service_account_key_file: testdata/google-sa.json
      admin: admin@example.com
` + oauth + `
oidc:
  issuer: http://127.0.0.1:9000
  clients:
    - {id: rp, public: true, redirect_uris: [http://127.0.0.1:3000/cb]}
auth:
  profiles:
    - {domains: [example.com], connector: gws, sign_in: ` + signIn + `}
`
}

func TestGoogleSignIn(t *testing.T) {
	t.Setenv("DIRGATE_TEST_GOOGLE_OAUTH", "oauth-s3cret")
	const client = "      oauth_client_id: 123-abc.apps.googleusercontent.com\n      oauth_client_secret_env: DIRGATE_TEST_GOOGLE_OAUTH"
	cfg := mustParse(t, googleSignInConfig(client, "both"))
	g := cfg.Connectors[0].Google
	if g.OAuthClientID != "123-abc.apps.googleusercontent.com" || g.OAuthClientSecret.Reveal() != "oauth-s3cret" || !cfg.Auth.Profiles[0].Upstream() {
		t.Errorf("google %+v, profile %+v", g, cfg.Auth.Profiles[0])
	}
	// Without a profile that signs in through Google the client is
	// optional, but checked when it is given.
	if cfg := mustParse(t, googleSignInConfig("", "password")); cfg.Connectors[0].Google.OAuthClientSecret != "" {
		t.Errorf("secret read without a client")
	}

	for _, tc := range []struct{ name, oauth, signIn, want string }{
		{"no client", "", "upstream",
			`test.yaml:5: connectors[0].google: an auth profile signs this connector's users in through Google (sign_in), which needs an OAuth client: set oauth_client_id, and oauth_client_secret_env or oauth_client_secret_file`},
		{"service account's client ID", "      oauth_client_id: \"1000001\"\n      oauth_client_secret_env: DIRGATE_TEST_GOOGLE_OAUTH", "both",
			`test.yaml:8: connectors[0].google.oauth_client_id: "1000001" is not the client ID of an OAuth client, which ends in .apps.googleusercontent.com`},
		{"no secret", "      oauth_client_id: 123-abc.apps.googleusercontent.com", "both",
			`test.yaml:8: connectors[0].google.oauth_client_id: Sign in with Google needs the OAuth client's secret too; set oauth_client_secret_env or oauth_client_secret_file`},
		{"no ID", "      oauth_client_secret_env: DIRGATE_TEST_GOOGLE_OAUTH", "password",
			`test.yaml:5: connectors[0].google.oauth_client_id: required for Sign in with Google`},
		{"secret variable unset", "      oauth_client_id: 123-abc.apps.googleusercontent.com\n      oauth_client_secret_env: DIRGATE_TEST_GOOGLE_UNSET", "both",
			`test.yaml:9: connectors[0].google.oauth_client_secret_env: environment variable DIRGATE_TEST_GOOGLE_UNSET is not set or is empty`},
		{"secret file and variable", client + "\n      oauth_client_secret_file: testdata/bind-password.txt", "both",
			`test.yaml:10: connectors[0].google.oauth_client_secret_file: oauth_client_secret_env is set too; keep only one of them`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if msg := parseErr(t, googleSignInConfig(tc.oauth, tc.signIn)); !strings.Contains(msg, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", msg, tc.want)
			}
		})
	}
}
