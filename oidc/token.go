package oidc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/dirgate/dirgate/cache"
)

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	client, ok := p.clientRequest(w, r)
	if !ok {
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		p.codeExchange(w, r, client)
	case "refresh_token":
		p.refreshExchange(w, r, client)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "use authorization_code or refresh_token")
	}
}

func (p *Provider) codeExchange(w http.ResponseWriter, r *http.Request, client *Client) {
	code := r.PostForm.Get("code")
	c, replay, err := p.grants.redeem(r.Context(), code)
	switch {
	case err != nil:
		p.unavailable(w, client, "redeem the code", err)
		return
	case c == nil:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown or expired code")
		return
	case replay:
		// A code used twice may have been stolen: revoke what it issued.
		if err := errors.Join(p.grants.revokeAccess(r.Context(), c.AccessJTI, c.AccessExp), p.grants.revokeFamily(r.Context(), c.Family)); err != nil {
			p.log.Error("oidc revoke the tokens of a replayed code", "err", err)
		}
		p.log.Warn("oidc authorization code replayed; tokens revoked", "client", client.ID)
		oauthError(w, http.StatusBadRequest, "invalid_grant", "code already used")
		return
	case c.ClientID != client.ID:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "code was issued to another client")
		return
	case c.RedirectURI != r.PostForm.Get("redirect_uri"):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match the authorization request")
		return
	}
	if c.Challenge != "" || client.Public {
		v := r.PostForm.Get("code_verifier")
		sum := sha256.Sum256([]byte(v))
		if v == "" || subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(c.Challenge)) != 1 {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
			return
		}
	} else if r.PostForm.Get("code_verifier") != "" {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "code_verifier sent for a request without code_challenge")
		return
	}
	e, err := p.account(r.Context(), c.Connector, c.ID)
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the account is no longer active")
		return
	}
	resp, jti, exp, err := p.issue(r.Context(), client, e, c.Scope, c.Nonce, c.AccessJTI, refreshGrant{Scope: c.Scope, AuthTime: c.AuthTime, Family: c.Family})
	if err != nil {
		p.unavailable(w, client, "issue tokens", err)
		return
	}
	// A code issued by an earlier release (a replica not yet upgraded)
	// names no access token: it is recorded before the tokens are given
	// out, since a replay of the code must be able to revoke it.
	if c.AccessJTI == "" {
		if err := p.grants.issued(r.Context(), code, jti, exp); err != nil {
			p.unavailable(w, client, "record the access token of a code", err)
			return
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (p *Provider) refreshExchange(w http.ResponseWriter, r *http.Request, client *Client) {
	t := r.PostForm.Get("refresh_token")
	requested := strings.Fields(r.PostForm.Get("scope"))
	// What can be refused without spending the token is refused first:
	// a client retrying a refused request with the same token would
	// otherwise present a spent token, which revokes its family as stolen.
	// A token that is not live is spent all the same, for reuse detection.
	live, err := p.grants.refresh(r.Context(), t)
	if err != nil {
		p.unavailable(w, client, "read the refresh token", err)
		return
	}
	if live != nil && live.ClientID == client.ID {
		if _, _, ok := p.refreshable(w, client, r, live, requested); !ok {
			return
		}
	}
	// Rotation: the presented token is spent whatever follows.
	g, use, err := p.grants.use(r.Context(), t, client.ID)
	switch {
	case err != nil:
		p.unavailable(w, client, "rotate the refresh token", err)
		return
	case use == refreshOtherClient:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "refresh token was issued to another client")
		return
	case use == refreshReused:
		// The token is not logged: it could still open other doors while
		// the log is read.
		p.log.Warn("oidc refresh token reused; its whole family is revoked (RFC 9700 4.14.2)",
			"client", client.ID, "account", g.Connector+"/"+g.ID, "family", g.Family, "remote", r.RemoteAddr)
		oauthError(w, http.StatusBadRequest, "invalid_grant", "refresh token already used")
		return
	case use != refreshLive:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown, expired or revoked refresh token")
		return
	}
	// Checked again: a sync may have disabled the account since.
	e, scope, ok := p.refreshable(w, client, r, g, requested)
	if !ok {
		return
	}
	// The successor keeps the grant's whole scope (RFC 6749 6); only the
	// tokens issued now carry the narrowed one.
	resp, _, _, err := p.issue(r.Context(), client, e, scope, "", "", *g)
	if err != nil {
		p.unavailable(w, client, "issue tokens", err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// unavailable answers a token request that could not be served, most
// often because the state store is unreachable: nothing was issued, and
// the client may try again. RFC 6749 defines temporarily_unavailable for
// the authorization endpoint only; it is the code clients know for "retry
// later", where server_error would read as a bug.
func (p *Provider) unavailable(w http.ResponseWriter, client *Client, what string, err error) {
	p.log.Error("oidc token endpoint: could not "+what, "client", client.ID, "err", err)
	oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "could not "+what+"; try again later")
}

// refreshable checks that g may be refreshed for the requested scope (its
// whole scope when empty) and returns the account and the scope to issue;
// on failure it has answered.
func (p *Provider) refreshable(w http.ResponseWriter, client *Client, r *http.Request, g *refreshGrant, requested []string) (*cache.Entry, []string, bool) {
	for _, x := range requested {
		if !slices.Contains(g.Scope, x) {
			oauthError(w, http.StatusBadRequest, "invalid_scope", "a refresh may not widen the scope")
			return nil, nil, false
		}
	}
	e, err := p.account(r.Context(), g.Connector, g.ID)
	if err != nil {
		p.log.Info("oidc refresh refused", "client", client.ID, "account", g.Connector+"/"+g.ID, "reason", err)
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the account is no longer active")
		return nil, nil, false
	}
	if len(requested) == 0 {
		return e, g.Scope, true
	}
	return e, requested, true
}

// accessClaims are the claims of dirgate's JWT access tokens.
type accessClaims struct {
	jwt.Claims
	ClientID  string   `json:"client_id"`
	Scope     string   `json:"scope"`
	Connector string   `json:"dg_conn"`
	Account   string   `json:"dg_id"`
	AuthTime  int64    `json:"auth_time"`
	Groups    []string `json:"-"`
}

// issue signs an ID token and an access token for scope, and stores a
// refresh token of grant: its scope, authentication time and family; it
// returns the response, and the access token's ID (jti, a new one when
// "") and expiry.
func (p *Provider) issue(ctx context.Context, client *Client, e *cache.Entry, scope []string, nonce, jti string, grant refreshGrant) (map[string]any, string, time.Time, error) {
	authTime := grant.AuthTime
	now := p.now()
	claims, err := p.claims(ctx, e, scope)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	claims["iss"] = p.cfg.Issuer
	claims["sub"] = e.ID
	claims["aud"] = client.ID
	claims["azp"] = client.ID
	claims["iat"] = now.Unix()
	claims["exp"] = now.Add(p.cfg.IDTokenTTL).Unix()
	claims["auth_time"] = authTime.Unix()
	if nonce != "" {
		claims["nonce"] = nonce
	}
	idToken, err := p.keys.sign(client.alg(), claims)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	exp := now.Add(p.cfg.AccessTokenTTL)
	if jti == "" {
		jti = token(16)
	}
	access, err := p.keys.sign(client.alg(), accessClaims{
		Claims: jwt.Claims{Issuer: p.cfg.Issuer, Subject: e.ID, Audience: jwt.Audience{p.cfg.Issuer}, ID: jti,
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(exp)},
		ClientID: client.ID, Scope: strings.Join(scope, " "), Connector: e.Connector, Account: e.ID, AuthTime: authTime.Unix(),
	})
	if err != nil {
		return nil, "", time.Time{}, err
	}
	resp := map[string]any{
		"access_token": access, "token_type": "Bearer", "expires_in": int(p.cfg.AccessTokenTTL.Seconds()),
		"id_token": idToken, "scope": strings.Join(scope, " "),
	}
	if slices.Contains(grant.Scope, "offline_access") || !client.Public {
		rt, err := p.grants.putRefresh(ctx, refreshGrant{ClientID: client.ID, Connector: e.Connector, ID: e.ID, Scope: grant.Scope,
			AuthTime: authTime, Expires: now.Add(p.cfg.RefreshTokenTTL), Family: grant.Family})
		if err != nil {
			return nil, "", time.Time{}, err
		}
		resp["refresh_token"] = rt
	}
	return resp, jti, exp, nil
}
