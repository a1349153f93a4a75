package fakeentra

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dirgate/dirgate/internal/fakecloud"
)

// This file is the identity platform's OpenID Connect side, for "Sign in
// with Microsoft": discovery under {authority}/{tenant}/v2.0, a JWKS whose
// signing key rotates (the previous key stays published, the kid
// switches), /authorize for the authorization code flow with PKCE S256 and
// a nonce (no HTML: it answers at once as the user SignInAs chose, or with
// the error FailSignIn chose), and the authorization_code grant of the
// token endpoint (one-time codes, the PKCE verifier, a client secret or
// certificate assertion) returning an ID token with iss, aud, sub, oid,
// tid, preferred_username, name, email, nonce, iat, nbf and exp.

// codeTTL is how long an authorization code may be redeemed.
const codeTTL = 10 * time.Minute

// idTokenTTL is the ID token's lifetime, as Entra issues them.
const idTokenTTL = time.Hour

// idp is the OIDC state of one tenant.
type idp struct {
	mu       sync.Mutex
	ring     fakecloud.KeyRing
	signInAs string
	fail     *stsError // what /authorize answers instead of a code
	consent  *stsError // what adminconsent answers instead of granting
	consents int
	codes    map[string]*authCode
}

type authCode struct {
	clientID, redirectURI, challenge, nonce, userID, scope string
	expires                                                time.Time
	redeemed                                               bool
}

func (t *Tenant) registerOIDC() {
	t.authorityMux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", t.serveDiscovery)
	t.authorityMux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", t.serveJWKS)
	t.authorityMux.HandleFunc("GET /{tenant}/oauth2/v2.0/authorize", t.serveAuthorize)
	t.grants["authorization_code"] = t.authorizationCode
}

// Issuer is the tenant's ID-token issuer, {authority}/{tenant ID}/v2.0.
func (t *Tenant) Issuer() string { return t.AuthorityURL() + "/" + t.id + "/v2.0" }

// SignInAs makes /authorize sign in the user with this ID (until changed);
// an unknown or deleted user is answered with an error page.
func (t *Tenant) SignInAs(userID string) {
	s := &t.oidc
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signInAs, s.fail = userID, nil
}

// FailSignIn makes /authorize send the browser back with this OAuth error
// and AADSTS code instead of a code, e.g. ("interaction_required", 50076,
// "…") or ("access_denied", 65004, "…"); ("", 0, "") clears it.
func (t *Tenant) FailSignIn(oauthErr string, code int, desc string) {
	s := &t.oidc
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = nil
	if oauthErr != "" {
		s.fail = stsErr(http.StatusBadRequest, oauthErr, code, "%s", desc)
	}
}

// RotateSigningKey signs the next ID tokens with a new key under a new kid;
// the JWKS publishes it and the key before it.
func (t *Tenant) RotateSigningKey() {
	t.oidc.ring.Rotate()
}

// SignWithUnpublishedKey makes the next ID tokens carry a kid the JWKS
// never publishes, as a forged token would.
func (t *Tenant) SignWithUnpublishedKey(on bool) {
	t.oidc.ring.SignWithUnpublishedKey(on)
}

// TamperIDTokens lets f change the claims of the next ID tokens before they
// are signed (wrong iss, aud, nonce, tid, exp …); nil stops it.
func (t *Tenant) TamperIDTokens(f func(claims map[string]any)) {
	t.oidc.ring.Tamper(f)
}

// tenantIssuer is the issuer discovery shows for the tenant in the path:
// the tenant's own, or for common and organizations the "{tenantid}"
// template, which no ID token carries (a client must then not check the
// issuer by equality, and dirgate refuses it).
func (t *Tenant) tenantIssuer(name string) (string, bool) {
	switch {
	case strings.EqualFold(name, "common"), strings.EqualFold(name, "organizations"):
		return t.AuthorityURL() + "/{tenantid}/v2.0", true
	case t.knownTenant(name):
		return t.Issuer(), true
	}
	return "", false
}

func (t *Tenant) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("tenant")
	iss, ok := t.tenantIssuer(name)
	if !ok {
		t.writeSTSError(w, r, stsErr(http.StatusBadRequest, "invalid_tenant", 90002, "Tenant '%s' not found.", name))
		return
	}
	base := t.AuthorityURL() + "/" + name
	fakecloud.WriteJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"code_challenge_methods_supported":      []string{"plain", "S256"},
		"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "nbf", "nonce", "oid", "tid", "preferred_username", "name", "email", "ver"},
		"tenant_region_scope":                   "EU",
	})
}

func (t *Tenant) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if _, ok := t.tenantIssuer(r.PathValue("tenant")); !ok {
		t.writeSTSError(w, r, stsErr(http.StatusBadRequest, "invalid_tenant", 90002, "Tenant '%s' not found.", r.PathValue("tenant")))
		return
	}
	fakecloud.WriteJSON(w, http.StatusOK, t.oidc.ring.JWKS())
}

// app returns the registered app with this client ID.
func (t *Tenant) app(clientID string) (App, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a, ok := t.apps[clientID]
	return a, ok
}

// clientPage refuses a request whose client or redirect URI cannot be
// trusted: Entra shows an error page then, and never redirects.
func clientPage(w http.ResponseWriter, status int, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "AADSTS%d: %s\n", code, fmt.Sprintf(format, args...))
}

// checkClient checks the tenant, client_id and redirect_uri of a browser
// request; on failure it has answered with a page.
func (t *Tenant) checkClient(w http.ResponseWriter, q url.Values, tenant string) (string, bool) {
	if !t.knownTenant(tenant) {
		clientPage(w, http.StatusBadRequest, 90002, "Tenant '%s' not found.", tenant)
		return "", false
	}
	app, ok := t.app(q.Get("client_id"))
	if !ok {
		clientPage(w, http.StatusBadRequest, 700016, "Application with identifier '%s' was not found in the directory.", q.Get("client_id"))
		return "", false
	}
	redirect := q.Get("redirect_uri")
	if !slices.Contains(app.RedirectURIs, redirect) {
		clientPage(w, http.StatusBadRequest, 50011, "The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'.", redirect, app.ClientID)
		return "", false
	}
	return redirect, true
}

// errorParams are the parameters of an error sent back to the client.
func errorParams(e *stsError, state string) url.Values {
	v := url.Values{"error": {e.err}, "error_description": {fmt.Sprintf("AADSTS%d: %s", e.code, e.desc)}}
	if state != "" {
		v.Set("state", state)
	}
	return v
}

func (t *Tenant) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, ok := t.checkClient(w, q, r.PathValue("tenant"))
	if !ok {
		return
	}
	state := q.Get("state")
	fail := func(e *stsError) { fakecloud.RedirectWith(w, r, redirect, errorParams(e, state)) }
	scope := strings.Fields(q.Get("scope"))
	switch {
	case q.Get("response_type") != "code":
		fail(stsErr(400, "unsupported_response_type", 700054, "response_type '%s' is not enabled for the application.", q.Get("response_type")))
		return
	case !slices.Contains(scope, "openid"):
		fail(stsErr(400, "invalid_request", 900144, "The request must contain the openid scope."))
		return
	case state == "":
		fail(stsErr(400, "invalid_request", 900144, "The request must contain the state parameter."))
		return
	case q.Get("nonce") == "":
		fail(stsErr(400, "invalid_request", 900144, "The request must contain the nonce parameter."))
		return
	case q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43:
		fail(stsErr(400, "invalid_request", 501491, "Invalid size of Code_Challenge parameter or code_challenge_method is not S256."))
		return
	}
	s := &t.oidc
	s.mu.Lock()
	failWith, userID := s.fail, s.signInAs
	s.mu.Unlock()
	if failWith != nil {
		fail(failWith)
		return
	}
	u, ok := t.User(userID)
	switch {
	case !ok:
		clientPage(w, http.StatusBadRequest, 50034, "The user account '%s' does not exist in the tenant (SignInAs chose no existing user).", userID)
		return
	case !u.AccountEnabled:
		fail(stsErr(400, "access_denied", 50057, "The user account is disabled."))
		return
	}
	code := fakecloud.RandomToken(32)
	s.mu.Lock()
	s.codes[code] = &authCode{clientID: q.Get("client_id"), redirectURI: redirect, challenge: q.Get("code_challenge"),
		nonce: q.Get("nonce"), userID: u.ID, scope: strings.Join(scope, " "), expires: t.now().Add(codeTTL)}
	s.mu.Unlock()
	fakecloud.RedirectWith(w, r, redirect, url.Values{"code": {code}, "state": {state}, "session_state": {fakecloud.NewGUID()}})
}

// authorizationCode is the token endpoint's authorization_code grant.
func (t *Tenant) authorizationCode(req *tokenRequest) (map[string]any, *stsError) {
	app, e := t.authenticateClient(req, true)
	if e != nil {
		return nil, e
	}
	code := req.form.Get("code")
	if code == "" {
		return nil, missingParam("code")
	}
	s := &t.oidc
	s.mu.Lock()
	c := s.codes[code]
	switch {
	case c == nil || t.now().After(c.expires):
		s.mu.Unlock()
		return nil, stsErr(400, "invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity.")
	case c.redeemed:
		s.mu.Unlock()
		return nil, stsErr(400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
	}
	c.redeemed = true
	s.mu.Unlock()
	switch {
	case c.clientID != app.ClientID:
		return nil, stsErr(400, "invalid_grant", 70000, "The provided value for the 'code' parameter is not valid: it was issued to another client.")
	case req.form.Get("redirect_uri") != c.redirectURI:
		return nil, stsErr(400, "invalid_grant", 70000, "The provided value for the 'redirect_uri' is not valid: it differs from the authorization request.")
	case req.form.Get("code_verifier") == "":
		return nil, missingParam("code_verifier")
	case !fakecloud.PKCEMatches(req.form.Get("code_verifier"), c.challenge):
		return nil, stsErr(400, "invalid_grant", 50148, "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.")
	}
	u, ok := t.User(c.userID)
	if !ok {
		return nil, stsErr(400, "invalid_grant", 50034, "The user account does not exist in the tenant.")
	}
	now := t.now()
	pair := sha256.Sum256([]byte(u.ID + "\x00" + app.ClientID))
	claims := map[string]any{
		"ver": "2.0", "iss": t.Issuer(), "aud": app.ClientID, "sub": base64.RawURLEncoding.EncodeToString(pair[:]),
		"oid": u.ID, "tid": t.id, "preferred_username": u.UserPrincipalName, "name": u.DisplayName, "nonce": c.nonce,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(idTokenTTL).Unix(),
	}
	if u.Mail != "" {
		claims["email"] = u.Mail
	}
	idToken, err := s.ring.Sign(claims)
	if err != nil {
		return nil, stsErr(500, "server_error", 90033, "signing failed: %v", err)
	}
	return map[string]any{"token_type": "Bearer", "scope": c.scope, "expires_in": 3599, "ext_expires_in": 3599,
		"access_token": fakecloud.RandomToken(32), "id_token": idToken}, nil
}
