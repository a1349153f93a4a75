package oidc

import "net/http"

func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                     p.cfg.Issuer,
		"authorization_endpoint":                     p.endpoint("authorize"),
		"token_endpoint":                             p.endpoint("token"),
		"userinfo_endpoint":                          p.endpoint("userinfo"),
		"jwks_uri":                                   p.endpoint("keys"),
		"revocation_endpoint":                        p.endpoint("revoke"),
		"end_session_endpoint":                       p.endpoint("end_session"),
		"response_types_supported":                   []string{"code"},
		"response_modes_supported":                   []string{"query"},
		"grant_types_supported":                      []string{"authorization_code", "refresh_token"},
		"subject_types_supported":                    []string{"public"},
		"id_token_signing_alg_values_supported":      signingAlgs,
		"scopes_supported":                           []string{"openid", "email", "profile", "groups", "offline_access"},
		"token_endpoint_auth_methods_supported":      []string{"client_secret_basic", "client_secret_post", "none"},
		"code_challenge_methods_supported":           []string{"S256"},
		"claims_supported":                           []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "email", "email_verified", "name", "preferred_username", "groups"},
		"revocation_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "none"},
	})
}

func (p *Provider) jwks(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, p.keys.jwks())
}
