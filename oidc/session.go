package oidc

import (
	"net/http"
	"net/url"
	"slices"

	"github.com/go-jose/go-jose/v4/jwt"
)

// endSession ends the sign-in at dirgate (which keeps no browser session)
// and returns to a registered post-logout address.
func (p *Provider) endSession(w http.ResponseWriter, r *http.Request) {
	q, ok := requestParams(w, r)
	if !ok {
		p.errorPage(w, http.StatusBadRequest, "Bad request", "The sign-out request could not be read.")
		return
	}
	target := q.Get("post_logout_redirect_uri")
	if target == "" {
		p.errorPage(w, http.StatusOK, "Signed out", "You have been signed out. You can close this window.")
		return
	}
	clientID := q.Get("client_id")
	if hint := q.Get("id_token_hint"); hint != "" {
		var c struct {
			Aud jwt.Audience `json:"aud"`
		}
		// RP-Initiated Logout 2: a client_id sent with the hint must be
		// the hint's audience.
		if p.keys.verify(hint, &c) != nil || len(c.Aud) == 0 || (clientID != "" && !c.Aud.Contains(clientID)) {
			p.errorPage(w, http.StatusBadRequest, "Sign-out refused", "The sign-out request carried an invalid token.")
			return
		}
		clientID = c.Aud[0]
	}
	client, ok := p.clients[clientID]
	if !ok || !slices.Contains(client.PostLogoutRedirectURIs, target) {
		p.errorPage(w, http.StatusBadRequest, "Sign-out address not registered", "You have been signed out, but the application asked to return you to an address it has not registered.")
		return
	}
	u, _ := url.Parse(target)
	if s := q.Get("state"); s != "" {
		v := u.Query()
		v.Set("state", s)
		u.RawQuery = v.Encode()
	}
	http.Redirect(w, r, u.String(), http.StatusFound)
}
