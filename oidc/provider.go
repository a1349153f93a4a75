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

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/state"
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
	// Upstreams are the OpenID providers the login page offers besides
	// the password form ("Sign in with Microsoft").
	Upstreams []Upstream
}

// SignIn checks a login and password for the login page; remote is the
// client address. Failures are *authn.Error values.
type SignIn func(ctx context.Context, login, password, remote string) (*cache.Entry, error)

// Provider is the OIDC provider's HTTP handler.
type Provider struct {
	cfg     Config
	clients map[string]*Client
	signIn  SignIn
	store   *cache.Store // the directory: accounts and their groups
	keys    *keyRing
	grants  *grants
	log     *slog.Logger
	now     func() time.Time
	mux     *http.ServeMux
	secure  bool // issuer is https: cookies are Secure
	path    string

	corsPolicy map[string]corsPolicy // by path
	origins    map[string]bool       // of the registered redirect URIs

	upstreams []*upstream
}

// New builds a provider that reads accounts from the directory cache
// store and keeps its grants, signing keys and sign-ins in progress in
// states.Grants, states.Keys and states.SignIns (the other stores of the
// bundle are not used).
func New(cfg Config, store *cache.Store, states state.Stores, signIn SignIn, log *slog.Logger) (*Provider, error) {
	if states.Grants == nil || states.Keys == nil || states.SignIns == nil {
		return nil, errors.New("oidc: the grants, keys and sign-ins stores are required")
	}
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
	if p.upstreams, err = newUpstreams(cfg.Upstreams, func() time.Time { return p.now() }); err != nil {
		return nil, err
	}
	keep := max(cfg.IDTokenTTL, cfg.AccessTokenTTL) + 5*time.Minute
	p.keys, err = newKeyRing(context.Background(), states.Keys, cfg.KeyRotation, keep, func() time.Time { return p.now() })
	if err != nil {
		return nil, err
	}
	p.grants = newGrants(states.Grants, states.SignIns, func() time.Time { return p.now() })
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
	mux.HandleFunc("POST "+p.path+"/upstream", p.upstreamStart)
	mux.HandleFunc("GET "+p.path+"/upstream/callback", p.upstreamCallback)
	mux.HandleFunc("POST "+p.path+"/token", p.token)
	mux.HandleFunc("GET "+p.path+"/userinfo", p.userinfo)
	mux.HandleFunc("POST "+p.path+"/userinfo", p.userinfo)
	mux.HandleFunc("POST "+p.path+"/revoke", p.revoke)
	mux.HandleFunc("GET "+p.path+"/end_session", p.endSession)
	mux.HandleFunc("POST "+p.path+"/end_session", p.endSession)
	p.mux = mux
	return p, nil
}

// Run reloads and rotates signing keys on schedule and sweeps expired
// grants until ctx ends.
func (p *Provider) Run(ctx context.Context) {
	// A family revoked while its code was being exchanged may still get a
	// token issued a code lifetime later, which then lives a refresh
	// lifetime.
	go p.grants.sweep(ctx, sweepEvery, signInSweepEvery, p.cfg.RefreshTokenTTL+p.cfg.CodeTTL+time.Minute, p.log)
	p.keys.run(ctx, func(err error) { p.log.Error("oidc signing keys", "err", err) })
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

var errInactive = errors.New("account disabled or deleted")

// account returns the cached account if it may still receive tokens.
func (p *Provider) account(ctx context.Context, conn, id string) (*cache.Entry, error) {
	var e *cache.Entry
	err := p.store.View(ctx, func(v *cache.View) error {
		var err error
		e, err = v.Get(conn, id)
		return err
	})
	return active(e, err)
}

// active passes on a user entry read from the cache that may sign in, and
// errInactive for one that is missing, disabled or not a user.
func active(e *cache.Entry, err error) (*cache.Entry, error) {
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

// upstreamAccount is the account an upstream sign-in of the synced entry
// id of conn stands for: the entry itself, or the on-premises AD account
// that the cache serves in its place (cache.View.DuplicateOf: only for a
// user the directory sync marks as synced, of a connector the
// configuration pairs with conn), so the person gets the same subject,
// groups and refresh tokens however they sign in. Only the sign-in maps:
// tokens already issued name the account they were issued for. The
// switch is logged: it turns a cloud identity into an on-premises one.
func (p *Provider) upstreamAccount(ctx context.Context, conn, id string) (*cache.Entry, error) {
	var e *cache.Entry
	err := p.store.View(ctx, func(v *cache.View) error {
		var err error
		if e, err = v.Get(conn, id); err != nil {
			return err
		}
		d, err := v.DuplicateOf(e)
		if d != nil {
			p.log.Info("oidc upstream sign-in stands for the on-premises account it is synced from",
				"connector", conn, "id", id, "account_connector", d.Connector, "account_dn", d.DN)
			e = d
		}
		return err
	})
	return active(e, err)
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
