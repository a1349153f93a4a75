package oidc

import "net/http"

// revoke implements RFC 7009: the answer is 200 whether or not the token
// was known.
func (p *Provider) revoke(w http.ResponseWriter, r *http.Request) {
	client, ok := p.clientRequest(w, r)
	if !ok {
		return
	}
	t := r.PostForm.Get("token")
	// A refresh token is revoked with its family: RFC 7009 2.1 revokes the
	// grant behind it.
	if g, err := p.grants.refresh(r.Context(), t); err == nil && g != nil && g.ClientID == client.ID {
		if err := p.grants.revokeFamily(r.Context(), g.Family); err != nil {
			p.log.Error("oidc revoke", "client", client.ID, "err", err)
			oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "could not revoke the token")
			return
		}
	}
	var ac accessClaims
	if p.keys.verify(t, &ac) == nil && ac.ClientID == client.ID && ac.Expiry != nil {
		if err := p.grants.revokeAccess(r.Context(), ac.ID, ac.Expiry.Time()); err != nil {
			p.log.Error("oidc revoke", "client", client.ID, "err", err)
			oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "could not revoke the token")
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}
