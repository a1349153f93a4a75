package config

import (
	"strings"
	"testing"
)

func TestOIDCClientSigningAlgorithm(t *testing.T) {
	client := func(extra string) string {
		return minimal + "oidc:\n  issuer: https://login.example.com\n  clients:\n    - id: rp\n      public: true\n      redirect_uris: [\"https://rp.example.com/cb\"]\n" + extra
	}
	for _, c := range []struct {
		name, yaml, want, wantErr string
	}{
		{"default: empty, which the provider reads as RS256", "", "", ""},
		{"RS256", "      id_token_signed_response_alg: RS256\n", "RS256", ""},
		{"ES256", "      id_token_signed_response_alg: ES256\n", "ES256", ""},
		{"none", "      id_token_signed_response_alg: none\n", "", `oidc.clients[0].id_token_signed_response_alg: "none" is not one of RS256, ES256`},
		{"HS256", "      id_token_signed_response_alg: HS256\n", "", `"HS256" is not one of RS256, ES256`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.wantErr != "" {
				if msg := parseErr(t, client(c.yaml)); !strings.Contains(msg, c.wantErr) {
					t.Fatalf("error %q, want it to contain %q", msg, c.wantErr)
				}
				return
			}
			if got := mustParse(t, client(c.yaml)).OIDC.Clients[0].IDTokenSignedResponseAlg; got != c.want {
				t.Fatalf("id_token_signed_response_alg = %q, want %q", got, c.want)
			}
		})
	}
}
