package oidc

import (
	"net/http"
	"strings"

	"github.com/go-jose/go-jose/v4/jwt"
)

// bearer validates an access token and returns its claims.
func (p *Provider) bearer(r *http.Request) (*accessClaims, bool) {
	h := r.Header.Get("Authorization")
	raw, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		if r.Method == http.MethodPost && r.ParseForm() == nil {
			raw = r.PostForm.Get("access_token")
		}
	}
	if raw == "" {
		return nil, false
	}
	var ac accessClaims
	if err := p.keys.verify(raw, &ac); err != nil {
		return nil, false
	}
	if err := ac.Claims.ValidateWithLeeway(jwt.Expected{Issuer: p.cfg.Issuer, AnyAudience: jwt.Audience{p.cfg.Issuer}, Time: p.now()}, 0); err != nil {
		return nil, false
	}
	if p.grants.accessRevoked(r.Context(), ac.ID) {
		return nil, false
	}
	return &ac, true
}

func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	ac, ok := p.bearer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	e, err := p.account(r.Context(), ac.Connector, ac.Account)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="account no longer active"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	c, err := p.claims(r.Context(), e, strings.Fields(ac.Scope))
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	c["sub"] = e.ID
	writeJSON(w, http.StatusOK, c)
}
