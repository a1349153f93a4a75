package fakegoogle

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dirgate/dirgate/internal/fakecloud"
)

// This file is the Google-style OpenID Connect provider for "Sign in with
// Google": discovery at the issuer, a JWKS whose signing key rotates,
// /o/oauth2/v2/auth for the authorization code flow with PKCE S256, a
// nonce and the hd hint (no HTML: it answers at once as the account
// SignInAs or SignInConsumer chose, or with the error FailSignIn chose),
// and the authorization_code grant of /token returning an ID token with
// iss, azp, aud, sub (the Directory user ID), email, email_verified, hd
// (absent for consumer accounts), name, given_name, family_name, nonce,
// iat and exp.

// codeTTL is how long an authorization code may be redeemed.
const codeTTL = 10 * time.Minute

// idTokenTTL is the ID token's lifetime, as Google issues them.
const idTokenTTL = time.Hour

// oauthClient is a registered OAuth client.
type oauthClient struct {
	secret       string
	redirectURIs []string
}

// account is who signs in: a Directory user, or a consumer account.
type account struct {
	userID   string
	consumer string // the consumer account's email
}

type authCode struct {
	clientID, redirectURI, challenge, nonce, scope string
	who                                            account
	expires                                        time.Time
	redeemed                                       bool
}

// oidcState is the OIDC side of a customer; its mutex is separate from
// the directory's.
type oidcState struct {
	mu      sync.Mutex
	clients map[string]oauthClient
	who     account
	fail    string
	hdHints []string
	codes   map[string]*authCode
}

func (s *oidcState) init() {
	s.clients = map[string]oauthClient{}
	s.codes = map[string]*authCode{}
}

func (c *Customer) registerOIDC(mux *http.ServeMux) {
	mux.HandleFunc("GET /.well-known/openid-configuration", c.serveDiscovery)
	mux.HandleFunc("GET /oauth2/v3/certs", func(w http.ResponseWriter, _ *http.Request) {
		fakecloud.WriteJSON(w, http.StatusOK, c.ring.JWKS())
	})
	mux.HandleFunc("GET /o/oauth2/v2/auth", c.serveAuthorize)
}

// AddOAuthClient registers (or replaces) an OAuth client for Sign in with
// Google with its secret and exact redirect URIs.
func (c *Customer) AddOAuthClient(id, secret string, redirectURIs ...string) {
	s := &c.oidc
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[id] = oauthClient{secret: secret, redirectURIs: slices.Clone(redirectURIs)}
}

// SignInAs makes the authorization endpoint sign in the Directory user
// with this ID (until changed); a suspended user is refused with
// access_denied, an unknown one with an error page.
func (c *Customer) SignInAs(userID string) { c.setSignIn(account{userID: userID}, "") }

// SignInConsumer makes the authorization endpoint sign in a consumer
// Google account (no hd claim) with this email.
func (c *Customer) SignInConsumer(email string) { c.setSignIn(account{consumer: email}, "") }

// FailSignIn makes the authorization endpoint send the browser back with
// this OAuth error (access_denied, interaction_required …) instead of a
// code; "" clears it.
func (c *Customer) FailSignIn(errCode string) {
	s := &c.oidc
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = errCode
}

func (c *Customer) setSignIn(who account, fail string) {
	s := &c.oidc
	s.mu.Lock()
	defer s.mu.Unlock()
	s.who, s.fail = who, fail
}

// HDHints returns the hd parameters the authorization requests carried, in
// order ("" for a request without one).
func (c *Customer) HDHints() []string {
	s := &c.oidc
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hdHints)
}

// RotateSigningKey signs the next ID tokens with a new key under a new
// kid; the JWKS publishes it and the key before it.
func (c *Customer) RotateSigningKey() { c.ring.Rotate() }

// SignWithUnpublishedKey makes the next ID tokens carry a kid the JWKS
// never publishes, as a forged token would.
func (c *Customer) SignWithUnpublishedKey(on bool) { c.ring.SignWithUnpublishedKey(on) }

// TamperIDTokens lets f change the claims of the next ID tokens before
// they are signed (wrong iss, aud, nonce, hd, email_verified …); nil stops
// it.
func (c *Customer) TamperIDTokens(f func(claims map[string]any)) { c.ring.Tamper(f) }

func (c *Customer) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	iss := c.IssuerURL()
	fakecloud.WriteJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                iss + "/o/oauth2/v2/auth",
		"token_endpoint":                        c.TokenURL(),
		"jwks_uri":                              iss + "/oauth2/v3/certs",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "email", "profile"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
		"claims_supported":                      []string{"aud", "email", "email_verified", "exp", "family_name", "given_name", "hd", "iat", "iss", "name", "nonce", "sub"},
		"code_challenge_methods_supported":      []string{"S256"},
		"grant_types_supported":                 []string{"authorization_code", JWTBearerGrant},
	})
}

// errorPage refuses a request whose client or redirect URI cannot be
// trusted: Google shows an error page then, and never redirects.
func errorPage(w http.ResponseWriter, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, format+"\n", args...)
}

func (c *Customer) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s := &c.oidc
	s.mu.Lock()
	cl, ok := s.clients[q.Get("client_id")]
	s.hdHints = append(s.hdHints, q.Get("hd"))
	fail, who := s.fail, s.who
	s.mu.Unlock()
	if !ok {
		errorPage(w, "Error 401: invalid_client. The OAuth client was not found.")
		return
	}
	redirect := q.Get("redirect_uri")
	if !slices.Contains(cl.redirectURIs, redirect) {
		errorPage(w, "Error 400: redirect_uri_mismatch. The redirect URI %q is not registered for this client.", redirect)
		return
	}
	state := q.Get("state")
	back := func(err, desc string) {
		v := map[string][]string{"error": {err}}
		if desc != "" {
			v["error_description"] = []string{desc}
		}
		if state != "" {
			v["state"] = []string{state}
		}
		fakecloud.RedirectWith(w, r, redirect, v)
	}
	scope := strings.Fields(q.Get("scope"))
	switch {
	case q.Get("response_type") != "code":
		back("unsupported_response_type", "Only response_type=code is supported.")
		return
	case !slices.Contains(scope, "openid"):
		back("invalid_scope", "The openid scope is required.")
		return
	case state == "":
		back("invalid_request", "Missing required parameter: state")
		return
	case q.Get("nonce") == "":
		back("invalid_request", "Missing required parameter: nonce")
		return
	case q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43:
		back("invalid_request", "Invalid code_challenge or code_challenge_method: S256 is required.")
		return
	case fail != "":
		back(fail, "")
		return
	}
	if who.consumer == "" {
		c.mu.Lock()
		u, ok := c.users[who.userID]
		suspended := ok && u.Suspended
		c.mu.Unlock()
		switch {
		case !ok:
			errorPage(w, "Couldn't find your Google Account (SignInAs chose no existing user %q).", who.userID)
			return
		case suspended:
			back("access_denied", "The account is suspended.")
			return
		}
	}
	code := "4/" + fakecloud.RandomToken(32)
	s.mu.Lock()
	s.codes[code] = &authCode{clientID: q.Get("client_id"), redirectURI: redirect, challenge: q.Get("code_challenge"),
		nonce: q.Get("nonce"), scope: strings.Join(scope, " "), who: who, expires: c.now().Add(codeTTL)}
	s.mu.Unlock()
	fakecloud.RedirectWith(w, r, redirect, map[string][]string{"code": {code}, "state": {state}, "scope": {strings.Join(scope, " ")}})
}

// authorizationCode is the token endpoint's authorization_code grant.
func (c *Customer) authorizationCode(r *http.Request) (map[string]any, *oauthError) {
	f := r.PostForm
	id, secret := f.Get("client_id"), f.Get("client_secret")
	if bid, bsecret, ok := r.BasicAuth(); ok {
		if id != "" && id != bid || f.Has("client_secret") {
			return nil, oauthErr(http.StatusBadRequest, "invalid_request", "Client credentials were given both in the body and as HTTP Basic.")
		}
		id, secret = bid, bsecret
	}
	switch {
	case id == "":
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "Could not determine client ID from request.")
	case f.Get("code") == "":
		return nil, missing("code")
	case f.Get("redirect_uri") == "":
		return nil, missing("redirect_uri")
	}
	s := &c.oidc
	s.mu.Lock()
	cl, ok := s.clients[id]
	s.mu.Unlock()
	if !ok || cl.secret == "" || secret != cl.secret {
		return nil, oauthErr(http.StatusUnauthorized, "invalid_client", "Unauthorized")
	}
	s.mu.Lock()
	code := s.codes[f.Get("code")]
	valid := code != nil && !code.redeemed && c.now().Before(code.expires)
	if code != nil {
		code.redeemed = true
	}
	s.mu.Unlock()
	switch {
	case !valid:
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "Bad Request")
	case code.clientID != id:
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "The code was issued to another client.")
	case f.Get("redirect_uri") != code.redirectURI:
		return nil, oauthErr(http.StatusBadRequest, "redirect_uri_mismatch", "Bad Request")
	case f.Get("code_verifier") == "":
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "Missing code verifier.")
	case !fakecloud.PKCEMatches(f.Get("code_verifier"), code.challenge):
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "Invalid code verifier.")
	}
	claims, e := c.idClaims(code)
	if e != nil {
		return nil, e
	}
	idToken, err := c.ring.Sign(claims)
	if err != nil {
		return nil, oauthErr(http.StatusInternalServerError, "internal_failure", "signing failed: "+err.Error())
	}
	access := "ya29.fake-" + fakecloud.RandomToken(32)
	c.mu.Lock()
	c.tokens[access] = accessToken{subject: fmt.Sprint(claims["sub"]), scopes: strings.Fields(code.scope), expires: c.now().Add(time.Hour), oidc: true}
	c.mu.Unlock()
	return map[string]any{"access_token": access, "expires_in": 3599, "scope": code.scope, "token_type": "Bearer", "id_token": idToken}, nil
}

// idClaims builds the ID token of the account a code was issued for.
func (c *Customer) idClaims(code *authCode) (map[string]any, *oauthError) {
	now := c.now()
	claims := map[string]any{
		"iss": c.IssuerURL(), "azp": code.clientID, "aud": code.clientID, "nonce": code.nonce,
		"email_verified": true, "iat": now.Unix(), "exp": now.Add(idTokenTTL).Unix(),
	}
	if e := code.who.consumer; e != "" {
		sum := sha256.Sum256([]byte(strings.ToLower(e)))
		claims["sub"] = fmt.Sprintf("2%020d", binary.BigEndian.Uint64(sum[:8])%1e18)
		claims["email"] = e
		return claims, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.users[code.who.userID]
	if !ok {
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "The account no longer exists.")
	}
	full := u.FullName
	if full == "" {
		full = strings.TrimSpace(u.GivenName + " " + u.FamilyName)
	}
	claims["sub"], claims["email"], claims["name"] = u.ID, u.PrimaryEmail, full
	claims["given_name"], claims["family_name"] = u.GivenName, u.FamilyName
	claims["hd"] = c.domains[0]
	if d := domainOf(u.PrimaryEmail); slices.Contains(c.domains, d) {
		claims["hd"] = d
	}
	return claims, nil
}
