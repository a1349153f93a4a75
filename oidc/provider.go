// Package oidc is dirgate's OpenID Connect provider: discovery, JWKS with
// key rotation, the authorization code flow with PKCE (S256; required for
// public clients), a login page where users sign in with their email
// address and directory password, the token endpoint (client_secret_basic
// and client_secret_post), userinfo, refresh tokens (refused once a sync
// disables or deletes the account), revocation (RFC 7009) and end-session.
//
// It is written on go-jose rather than a provider framework: the surface is
// deliberately narrow (no implicit or hybrid flows, no plain PKCE, no
// dynamic registration), and every rule is in this package where it can be
// read and tested.
package oidc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/cache"
)

// Client is a registered relying party.
type Client struct {
	ID                     string
	Name                   string
	Public                 bool
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	// IDTokenSignedResponseAlg is the algorithm of the client's ID and
	// access tokens (OpenID Connect Dynamic Client Registration 2):
	// RS256 (the default when empty) or ES256.
	IDTokenSignedResponseAlg string
	// VerifySecret checks a confidential client's secret.
	VerifySecret func(secret string) bool
}

// alg is the algorithm the client's tokens are signed with.
func (c *Client) alg() jose.SignatureAlgorithm {
	if c.IDTokenSignedResponseAlg == "" {
		return jose.RS256
	}
	return jose.SignatureAlgorithm(c.IDTokenSignedResponseAlg)
}

// Config configures the provider.
type Config struct {
	Issuer          string
	KeyRotation     time.Duration
	IDTokenTTL      time.Duration
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	CodeTTL         time.Duration
	Clients         []Client
}

// SignIn checks a login and password for the login page; remote is the
// client address. Failures are *authn.Error values.
type SignIn func(ctx context.Context, login, password, remote string) (*cache.Entry, error)

// Provider is the OIDC provider's HTTP handler.
type Provider struct {
	cfg     Config
	clients map[string]*Client
	signIn  SignIn
	store   *cache.Store
	keys    *keyRing
	grants  *grants
	log     *slog.Logger
	now     func() time.Time
	mux     *http.ServeMux
	secure  bool // issuer is https: cookies are Secure
	path    string

	corsPolicy map[string]corsPolicy // by path
	origins    map[string]bool       // of the registered redirect URIs
}

// New builds a provider; its signing keys and grants are kept in the
// state stores of the cache database.
func New(cfg Config, store *cache.Store, signIn SignIn, log *slog.Logger) (*Provider, error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("oidc: issuer %q is not an absolute URL", cfg.Issuer)
	}
	p := &Provider{
		cfg: cfg, clients: map[string]*Client{}, signIn: signIn, store: store, log: log, now: time.Now,
		secure: u.Scheme == "https", path: strings.TrimSuffix(u.Path, "/"),
	}
	for i := range cfg.Clients {
		c := &cfg.Clients[i]
		if !slices.Contains(signingAlgs, c.alg()) {
			return nil, fmt.Errorf("oidc: client %q: id_token_signed_response_alg %q is not one of %v", c.ID, c.IDTokenSignedResponseAlg, signingAlgs)
		}
		p.clients[c.ID] = c
	}
	states := store.States()
	saved, err := states.Keys.SigningKeys(context.Background())
	if err != nil {
		return nil, err
	}
	keep := max(cfg.IDTokenTTL, cfg.AccessTokenTTL) + 5*time.Minute
	p.keys, err = newKeyRing(saved, cfg.KeyRotation, keep, func() time.Time { return p.now() }, publishKeys(states.Keys, saved))
	if err != nil {
		return nil, err
	}
	p.grants = newGrants(states.Grants, func() time.Time { return p.now() })
	p.corsPolicy, p.origins = p.corsPolicies(), redirectOrigins(cfg.Clients)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+p.path+"/{$}", p.home)
	mux.HandleFunc("GET "+p.path+"/.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET "+p.path+"/keys", p.jwks)
	// Authorization and end-session requests may come as GET or as a
	// form POST (OpenID Connect Core 3.1.2.1, RP-Initiated Logout 2). The
	// login form posts to its own path, so an application's POST can never
	// pass for a sign-in.
	mux.HandleFunc("GET "+p.path+"/authorize", p.authorize)
	mux.HandleFunc("POST "+p.path+"/authorize", p.authorize)
	mux.HandleFunc("POST "+p.path+"/login", p.login)
	mux.HandleFunc("POST "+p.path+"/token", p.token)
	mux.HandleFunc("GET "+p.path+"/userinfo", p.userinfo)
	mux.HandleFunc("POST "+p.path+"/userinfo", p.userinfo)
	mux.HandleFunc("POST "+p.path+"/revoke", p.revoke)
	mux.HandleFunc("GET "+p.path+"/end_session", p.endSession)
	mux.HandleFunc("POST "+p.path+"/end_session", p.endSession)
	p.mux = mux
	return p, nil
}

// Run rotates signing keys on schedule and sweeps expired grants until ctx
// ends.
func (p *Provider) Run(ctx context.Context) {
	// A family revoked while its code was being exchanged may still get a
	// token issued a code lifetime later, which then lives a refresh
	// lifetime.
	go p.grants.sweep(ctx, sweepEvery, p.cfg.RefreshTokenTTL+p.cfg.CodeTTL+time.Minute, p.log)
	p.keys.run(ctx, time.Minute, func(err error) { p.log.Error("oidc key rotation", "err", err) })
}

// ServeHTTP implements http.Handler.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if p.cors(w, r) {
		return
	}
	p.mux.ServeHTTP(w, r)
}

// requestParams are the parameters of an authorization or end-session
// request: the query of a GET, the form-encoded body of a POST. ok is false
// when a body could not be read.
func requestParams(w http.ResponseWriter, r *http.Request) (q url.Values, ok bool) {
	if r.Method != http.MethodPost {
		return r.URL.Query(), true
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return nil, false
	}
	return r.PostForm, true
}

func (p *Provider) endpoint(name string) string {
	return strings.TrimSuffix(p.cfg.Issuer, "/") + "/" + name
}

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

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// oauthError is an RFC 6749 error response.
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="dirgate"`)
	}
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// ---- authorization endpoint ----

func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q, ok := requestParams(w, r)
	if !ok {
		p.errorPage(w, http.StatusBadRequest, "Bad request", "The sign-in request could not be read.")
		return
	}
	client, ok := p.clients[q.Get("client_id")]
	if !ok {
		p.errorPage(w, http.StatusBadRequest, "Unknown application", "The application that sent you here is not registered with this sign-in service.")
		return
	}
	redirect := q.Get("redirect_uri")
	if !slices.Contains(client.RedirectURIs, redirect) {
		// Never redirect to an unregistered address: that would make the
		// provider an open redirector for codes.
		p.errorPage(w, http.StatusBadRequest, "Invalid redirect address", "The application asked to return you to an address it has not registered.")
		return
	}
	fail := func(code, desc string) {
		u, _ := url.Parse(redirect)
		v := u.Query()
		v.Set("error", code)
		v.Set("error_description", desc)
		if s := q.Get("state"); s != "" {
			v.Set("state", s)
		}
		u.RawQuery = v.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	}
	scope := strings.Fields(q.Get("scope"))
	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "only the authorization code flow (response_type=code) is supported")
		return
	case !slices.Contains(scope, "openid"):
		fail("invalid_scope", "the openid scope is required")
		return
	case q.Get("code_challenge") != "" && q.Get("code_challenge_method") != "S256":
		fail("invalid_request", "code_challenge_method must be S256")
		return
	case client.Public && q.Get("code_challenge") == "":
		fail("invalid_request", "public clients must use PKCE (code_challenge with S256)")
		return
	case q.Get("prompt") == "none":
		fail("login_required", "the user must sign in")
		return
	case q.Get("response_mode") != "" && q.Get("response_mode") != "query":
		fail("invalid_request", "only response_mode=query is supported")
		return
	}
	req := &authRequest{
		ClientID: client.ID, ClientName: client.Name, RedirectURI: redirect, State: q.Get("state"), Nonce: q.Get("nonce"),
		Scope: scope, Challenge: q.Get("code_challenge"), CSRF: token(24), Expires: p.now().Add(15 * time.Minute),
		LoginHint: q.Get("login_hint"), RequestedAuth: p.now(),
	}
	id, ok := p.grants.putRequest(req)
	if !ok {
		p.errorPage(w, http.StatusServiceUnavailable, "Busy", "Too many sign-ins are in progress. Try again in a minute.")
		return
	}
	p.setCSRFCookie(w, req.CSRF)
	p.loginPage(w, http.StatusOK, id, req, req.LoginHint, "")
}

func (p *Provider) setCSRFCookie(w http.ResponseWriter, v string) {
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: p.path + "/", HttpOnly: true, Secure: p.secure,
		SameSite: http.SameSiteStrictMode, MaxAge: 900})
}

const csrfCookie = "dirgate_csrf"

// login handles the login form.
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		p.errorPage(w, http.StatusBadRequest, "Bad request", "The sign-in form could not be read.")
		return
	}
	id := r.PostForm.Get("request")
	req, ok := p.grants.request(id)
	if !ok {
		p.errorPage(w, http.StatusBadRequest, "Sign-in expired", "This sign-in took too long or was already used. Go back to the application and start again.")
		return
	}
	cookie, err := r.Cookie(csrfCookie)
	form := r.PostForm.Get("csrf")
	if err != nil || form == "" || subtle.ConstantTimeCompare([]byte(cookie.Value), []byte(form)) != 1 ||
		subtle.ConstantTimeCompare([]byte(req.CSRF), []byte(form)) != 1 {
		p.errorPage(w, http.StatusForbidden, "Request refused", "The sign-in form did not come from this page. Go back to the application and start again.")
		return
	}
	login := strings.TrimSpace(r.PostForm.Get("email"))
	password := r.PostForm.Get("password")
	if login == "" || password == "" {
		p.loginPage(w, http.StatusBadRequest, id, req, login, "Enter your email address and your password.")
		return
	}
	e, err := p.signIn(r.Context(), login, password, r.RemoteAddr)
	if err != nil {
		req.FailedLogins++
		status := http.StatusUnauthorized
		if authn.ReasonOf(err) == authn.ReasonUnavailable {
			status = http.StatusServiceUnavailable
		}
		p.loginPage(w, status, id, req, login, failureMessage(err))
		return
	}
	p.grants.dropRequest(id)
	code, ok := p.grants.putCode(r.Context(), &codeGrant{
		ClientID: req.ClientID, RedirectURI: req.RedirectURI, Nonce: req.Nonce, Scope: req.Scope, Challenge: req.Challenge,
		Connector: e.Connector, ID: e.ID, AuthTime: p.now(), Expires: p.now().Add(p.cfg.CodeTTL),
		// Named now, so that a replay racing the first exchange revokes
		// the refresh tokens that exchange is about to issue.
		Family: token(16),
	})
	if !ok {
		p.errorPage(w, http.StatusServiceUnavailable, "Busy", "Too many sign-ins are in progress. Try again in a minute.")
		return
	}
	u, _ := url.Parse(req.RedirectURI)
	v := u.Query()
	v.Set("code", code)
	if req.State != "" {
		v.Set("state", req.State)
	}
	v.Set("iss", p.cfg.Issuer) // RFC 9207
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// failureMessage is what the login page says: never whether the account
// exists, except for refusals the directory made after accepting the
// password.
func failureMessage(err error) string {
	var ae *authn.Error
	errors.As(err, &ae)
	switch authn.ReasonOf(err) {
	case authn.ReasonUnavailable:
		return "The directory cannot be reached right now. Try again in a few minutes."
	case authn.ReasonThrottled:
		return "Too many failed attempts. Wait a few minutes before trying again."
	}
	if ae != nil && ae.PasswordVerified {
		switch ae.Reason {
		case authn.ReasonPasswordExpired:
			return "Your password has expired. Change it, then sign in again."
		case authn.ReasonMustChangePassword:
			return "You must change your password before you can sign in."
		case authn.ReasonAccountExpired:
			return "Your account has expired. Contact your administrator."
		case authn.ReasonDisabled:
			return "Your account is disabled. Contact your administrator."
		case authn.ReasonRestricted:
			return "You cannot sign in at this time or from this place."
		}
	}
	return "The email address or password is not correct."
}

// ---- token endpoint ----

// clientAuth authenticates the client of a token or revocation request.
func (p *Provider) clientAuth(r *http.Request) (*Client, bool) {
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	c, ok := p.clients[id]
	if !ok {
		return nil, false
	}
	if c.Public {
		return c, secret == ""
	}
	return c, secret != "" && c.VerifySecret != nil && c.VerifySecret(secret)
}

// clientRequest reads the form of a token or revocation request and
// authenticates its client; on failure it has answered.
func (p *Provider) clientRequest(w http.ResponseWriter, r *http.Request) (*Client, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed form body")
		return nil, false
	}
	client, ok := p.clientAuth(r)
	if !ok {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return nil, false
	}
	return client, true
}

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
		p.log.Error("oidc redeem code", "client", client.ID, "err", err)
		oauthError(w, http.StatusInternalServerError, "server_error", "could not redeem the code")
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
	resp, jti, exp, err := p.issue(r.Context(), client, e, c.Scope, c.Nonce, c.AuthTime, c.Family)
	if err != nil {
		p.log.Error("oidc issue tokens", "err", err)
		oauthError(w, http.StatusInternalServerError, "server_error", "could not issue tokens")
		return
	}
	if err := p.grants.issued(r.Context(), code, jti, exp); err != nil {
		p.log.Error("oidc record the access token of a code", "err", err)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (p *Provider) refreshExchange(w http.ResponseWriter, r *http.Request, client *Client) {
	// Rotation: the presented token is spent whatever follows.
	g, use, err := p.grants.use(r.Context(), r.PostForm.Get("refresh_token"), client.ID)
	switch {
	case err != nil:
		p.log.Error("oidc refresh", "client", client.ID, "err", err)
		oauthError(w, http.StatusInternalServerError, "server_error", "could not rotate the refresh token")
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
	e, err := p.account(r.Context(), g.Connector, g.ID)
	if err != nil {
		p.log.Info("oidc refresh refused", "client", client.ID, "account", g.Connector+"/"+g.ID, "reason", err)
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the account is no longer active")
		return
	}
	scope := g.Scope
	if s := strings.Fields(r.PostForm.Get("scope")); len(s) > 0 {
		for _, x := range s {
			if !slices.Contains(g.Scope, x) {
				oauthError(w, http.StatusBadRequest, "invalid_scope", "a refresh may not widen the scope")
				return
			}
		}
		scope = s
	}
	resp, _, _, err := p.issue(r.Context(), client, e, scope, "", g.AuthTime, g.Family)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "could not issue tokens")
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

var errInactive = errors.New("account disabled or deleted")

// account returns the cached account if it may still receive tokens.
func (p *Provider) account(ctx context.Context, conn, id string) (*cache.Entry, error) {
	var e *cache.Entry
	err := p.store.View(ctx, func(v *cache.View) error {
		var err error
		e, err = v.Get(conn, id)
		return err
	})
	switch {
	case errors.Is(err, cache.ErrNotFound):
		return nil, errInactive
	case err != nil:
		return nil, err
	case e.Disabled || e.Kind != cache.KindUser:
		return nil, errInactive
	}
	return e, nil
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

// issue signs an ID token and an access token, and stores a refresh token
// of family; it returns the response, and the access token's ID and expiry.
func (p *Provider) issue(ctx context.Context, client *Client, e *cache.Entry, scope []string, nonce string, authTime time.Time, family string) (map[string]any, string, time.Time, error) {
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
	jti := token(16)
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
	if slices.Contains(scope, "offline_access") || !client.Public {
		rt, err := p.grants.putRefresh(ctx, refreshGrant{ClientID: client.ID, Connector: e.Connector, ID: e.ID, Scope: scope,
			AuthTime: authTime, Expires: now.Add(p.cfg.RefreshTokenTTL), Family: family})
		if err != nil {
			return nil, "", time.Time{}, err
		}
		resp["refresh_token"] = rt
	}
	return resp, jti, exp, nil
}

// claims are the identity claims for scope, read from the cache.
func (p *Provider) claims(ctx context.Context, e *cache.Entry, scope []string) (map[string]any, error) {
	c := map[string]any{}
	if slices.Contains(scope, "email") {
		email := e.First("mail")
		if len(e.Addresses) > 0 {
			email = e.Addresses[0]
		}
		if email != "" {
			c["email"] = email
			// The address comes from the organisation's directory, which
			// owns the domain: it is as verified as a directory makes it.
			c["email_verified"] = true
		}
	}
	if slices.Contains(scope, "profile") {
		name := e.First("displayName")
		if name == "" {
			name = e.First("cn")
		}
		if name != "" {
			c["name"] = name
		}
		for _, a := range []string{"userPrincipalName", "uid", "sAMAccountName"} {
			if v := e.First(a); v != "" {
				c["preferred_username"] = v
				break
			}
		}
		if v := e.First("givenName"); v != "" {
			c["given_name"] = v
		}
		if v := e.First("sn"); v != "" {
			c["family_name"] = v
		}
	}
	if slices.Contains(scope, "groups") {
		var groups []string
		err := p.store.View(ctx, func(v *cache.View) error {
			gs, err := v.Groups(e)
			for _, g := range gs {
				name := g.First("cn")
				if name == "" {
					name = g.DN
				}
				groups = append(groups, name)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		slices.Sort(groups)
		c["groups"] = groups
	}
	return c, nil
}

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
