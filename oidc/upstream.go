package oidc

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Upstream is an OpenID provider (Microsoft Entra ID, Google) that users of
// one connector may sign in with on the login page instead of typing a
// directory password. The identity it returns is joined to the cached
// account by the connector's stable ID, never by a name, and the account
// must still be active in the cache: a user the sync disabled or deleted is
// refused although the upstream accepted them.
type Upstream struct {
	// Name keys the upstream in forms and logs; the connector's name.
	Name string
	// Label completes the button "Sign in with <Label>".
	Label string
	// Connector is the cache connector whose accounts the upstream's
	// users are.
	Connector string
	// Discovery is the base URL of the discovery document
	// (<Discovery>/.well-known/openid-configuration).
	Discovery string
	// CheckIssuer accepts or refuses the issuer the discovery document
	// names; ID tokens must then carry exactly that issuer. Nil requires
	// the issuer to equal Discovery (OpenID Connect Discovery 4.3).
	CheckIssuer func(issuer string) error
	// CheckClaims refuses an ID token by its claims after its signature,
	// issuer, audience, expiry and nonce were verified; nil accepts. An
	// *UpstreamRefusal is shown to the user; other errors are logged.
	CheckClaims func(issuer string, claims map[string]any) error
	// JoinClaim names the ID-token claim holding the account's stable ID
	// in the cache (Entra: oid; Google: sub).
	JoinClaim string
	ClientID  string
	// ClientSecret authenticates dirgate to the token endpoint; or
	// ClientAuth returns the parameters that do, made fresh for each
	// request (a client secret, or a client assertion signed now:
	// private_key_jwt).
	ClientSecret string
	ClientAuth   func() (url.Values, error)
	// Scopes are requested besides openid. Default profile and email.
	Scopes []string
	// AuthParams are further parameters of the authorization request
	// (Google: the hd hint).
	AuthParams url.Values
	// Domains are login domains whose users sign in only through this
	// upstream: a login of one typed in the password form is sent to it.
	Domains []string
	// DescribeError says in a sentence why the upstream refused, from the
	// error and error_description it sent back; nil shows the error code.
	DescribeError func(code, description string) string
	// HTTPClient reaches the upstream; nil uses a client with a 15s
	// timeout.
	HTTPClient *http.Client
}

// UpstreamRefusal is CheckClaims refusing an identity the upstream
// verified but dirgate does not accept (a personal account, an address
// not verified). The login page shows Message: the user proved who they
// are to the upstream, so it tells others nothing.
type UpstreamRefusal struct{ Message string }

func (r *UpstreamRefusal) Error() string { return r.Message }

// upstreamTTL bounds the round trip through the upstream's sign-in.
const upstreamTTL = 10 * time.Minute

// upstreamCookie binds an upstream round trip to the browser that started
// it. It is SameSite=Lax: the upstream's redirect back is a cross-site
// top-level navigation, which carries Lax cookies but not Strict ones.
const upstreamCookie = "dirgate_upstream"

// upstream is an Upstream with its discovered endpoints.
type upstream struct {
	Upstream
	now func() time.Time

	mu       sync.Mutex
	issuer   string
	oauth    *oauth2.Config
	verifier *gooidc.IDTokenVerifier
}

func (u *upstream) client() *http.Client {
	if u.HTTPClient != nil {
		return u.HTTPClient
	}
	return defaultUpstreamClient
}

var defaultUpstreamClient = &http.Client{Timeout: 15 * time.Second}

// discover reads the upstream's discovery document once it succeeds; a
// failure is retried at the next sign-in.
func (u *upstream) discover(ctx context.Context, redirect string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.oauth != nil {
		return nil
	}
	ctx = gooidc.ClientContext(ctx, u.client())
	doc, err := fetchDiscovery(ctx, u.client(), u.Discovery)
	if err != nil {
		return err
	}
	check := u.CheckIssuer
	if check == nil {
		check = func(iss string) error {
			if iss != strings.TrimSuffix(u.Discovery, "/") {
				return fmt.Errorf("issuer %q is not the discovery URL %q", iss, u.Discovery)
			}
			return nil
		}
	}
	if err := check(doc.Issuer); err != nil {
		return fmt.Errorf("upstream %s: %w", u.Name, err)
	}
	if doc.AuthURL == "" || doc.TokenURL == "" || doc.JWKSURL == "" {
		return fmt.Errorf("upstream %s: the discovery document lacks an authorization, token or jwks endpoint", u.Name)
	}
	pc := gooidc.ProviderConfig{IssuerURL: doc.Issuer, AuthURL: doc.AuthURL, TokenURL: doc.TokenURL, JWKSURL: doc.JWKSURL, Algorithms: doc.Algorithms}
	// The key set outlives this request: it refetches the keys when a
	// token names an unknown kid (rotation).
	prov := pc.NewProvider(gooidc.ClientContext(context.Background(), u.client()))
	scopes := u.Scopes
	if len(scopes) == 0 {
		scopes = []string{"profile", "email"}
	}
	u.issuer = doc.Issuer
	u.oauth = &oauth2.Config{ClientID: u.ClientID, ClientSecret: u.ClientSecret, RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: doc.AuthURL, TokenURL: doc.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
		Scopes:   append([]string{gooidc.ScopeOpenID}, scopes...)}
	u.verifier = prov.VerifierContext(gooidc.ClientContext(context.Background(), u.client()),
		&gooidc.Config{ClientID: u.ClientID, SupportedSigningAlgs: doc.Algorithms, Now: u.now})
	return nil
}

type discoveryDoc struct {
	Issuer     string   `json:"issuer"`
	AuthURL    string   `json:"authorization_endpoint"`
	TokenURL   string   `json:"token_endpoint"`
	JWKSURL    string   `json:"jwks_uri"`
	Algorithms []string `json:"id_token_signing_alg_values_supported"`
}

func fetchDiscovery(ctx context.Context, c *http.Client, base string) (*discoveryDoc, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/.well-known/openid-configuration", nil)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("discovery: %s answered %s", req.URL.Redacted(), resp.Status)
	}
	var d discoveryDoc
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("discovery: %s: %w", req.URL.Redacted(), err)
	}
	if len(d.Algorithms) == 0 {
		d.Algorithms = []string{gooidc.RS256}
	}
	return &d, nil
}

// upstreamFor returns the upstream that owns the domain of login
// exclusively, or nil.
func (p *Provider) upstreamFor(login string) *upstream {
	_, domain, ok := strings.Cut(login, "@")
	if !ok {
		return nil
	}
	domain = strings.ToLower(domain)
	for _, u := range p.upstreams {
		if slices.Contains(u.Domains, domain) {
			return u
		}
	}
	return nil
}

func (p *Provider) upstreamRedirect() string { return p.endpoint("upstream/callback") }

// upstreamStart handles a "Sign in with …" button of the login page.
func (p *Provider) upstreamStart(w http.ResponseWriter, r *http.Request) {
	id, req, ok := p.loginForm(w, r, false)
	if !ok {
		return
	}
	u := p.findUpstream(r.PostForm.Get("upstream"))
	if u == nil {
		p.errorPage(w, http.StatusBadRequest, "Unknown sign-in service", "The sign-in service you chose is not configured.")
		return
	}
	p.sendUpstream(w, r, id, req, u, req.LoginHint)
}

func (p *Provider) findUpstream(name string) *upstream {
	for _, u := range p.upstreams {
		if u.Name == name {
			return u
		}
	}
	return nil
}

// sendUpstream sends the browser to the upstream's authorization endpoint
// with a fresh state (bound to the pending request and, by a cookie, to
// this browser), nonce and PKCE verifier.
func (p *Provider) sendUpstream(w http.ResponseWriter, r *http.Request, id string, req *authRequest, u *upstream, hint string) {
	if err := u.discover(r.Context(), p.upstreamRedirect()); err != nil {
		p.log.Error("oidc upstream discovery", "upstream", u.Name, "err", err)
		p.loginPage(w, http.StatusServiceUnavailable, id, req, hint, "Sign-in with "+u.Label+" is not available right now. Try again in a few minutes.")
		return
	}
	login := &upstreamLogin{Request: id, Upstream: u.Name, Nonce: token(18), Verifier: oauth2.GenerateVerifier()}
	state, err := p.grants.putUpstreamLogin(r.Context(), login)
	if err != nil {
		p.signInsFailed(w, "store upstream sign-in", err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: upstreamCookie, Value: state, Path: p.path + "/upstream/callback", HttpOnly: true,
		Secure: p.secure, SameSite: http.SameSiteLaxMode, MaxAge: int(upstreamTTL.Seconds())})
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(login.Verifier), oauth2.SetAuthURLParam("nonce", login.Nonce)}
	if hint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", hint))
	}
	for k := range u.AuthParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, u.AuthParams.Get(k)))
	}
	http.Redirect(w, r, u.oauth.AuthCodeURL(state, opts...), http.StatusFound)
}

// upstreamCallback is where the upstream sends the browser back.
func (p *Provider) upstreamCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	cookie, err := r.Cookie(upstreamCookie)
	if err != nil || state == "" || subtle.ConstantTimeCompare([]byte(cookie.Value), []byte(state)) != 1 {
		p.errorPage(w, http.StatusBadRequest, "Sign-in refused", "This sign-in did not start in this browser, or it was already used. Go back to the application and start again.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: upstreamCookie, Value: "", Path: p.path + "/upstream/callback", MaxAge: -1, HttpOnly: true,
		Secure: p.secure, SameSite: http.SameSiteLaxMode})
	login, err := p.grants.takeUpstreamLogin(r.Context(), state)
	var req *authRequest
	if err == nil && login != nil {
		req, err = p.grants.request(r.Context(), login.Request)
	}
	if err != nil {
		p.signInsFailed(w, "read upstream sign-in", err)
		return
	}
	var u *upstream
	if req != nil {
		u = p.findUpstream(login.Upstream)
	}
	if u == nil {
		p.signInExpired(w)
		return
	}
	if code := q.Get("error"); code != "" {
		p.log.Info("oidc upstream refused the sign-in", "upstream", u.Name, "error", code, "description", truncate(q.Get("error_description"), 300))
		p.loginPage(w, http.StatusUnauthorized, login.Request, req, req.LoginHint, u.Label+" did not sign you in: "+u.describe(code, q.Get("error_description")))
		return
	}
	sub, err := p.upstreamIdentity(r.Context(), u, login, q.Get("code"))
	var refusal *UpstreamRefusal
	if errors.As(err, &refusal) {
		p.log.Info("oidc upstream sign-in refused", "upstream", u.Name, "reason", refusal.Message)
		p.loginPage(w, http.StatusForbidden, login.Request, req, req.LoginHint, refusal.Message)
		return
	}
	if err != nil {
		p.log.Warn("oidc upstream sign-in failed", "upstream", u.Name, "err", err)
		p.loginPage(w, http.StatusBadGateway, login.Request, req, req.LoginHint, "Sign-in with "+u.Label+" failed. Try again, or contact your administrator if it keeps failing.")
		return
	}
	e, err := p.upstreamAccount(r.Context(), u.Connector, sub)
	if err != nil {
		if !errors.Is(err, errInactive) {
			p.log.Error("oidc upstream account", "upstream", u.Name, "err", err)
			p.errorPage(w, http.StatusInternalServerError, "Sign-in failed", "The directory could not be read. Try again in a few minutes.")
			return
		}
		// The user proved who they are to the upstream: telling them
		// their account is not usable here reveals nothing to others.
		p.log.Info("oidc upstream sign-in refused: account disabled, deleted or not synced", "upstream", u.Name, "connector", u.Connector, "id", sub)
		p.loginPage(w, http.StatusForbidden, login.Request, req, req.LoginHint,
			u.Label+" signed you in, but your account is disabled or not available here. Contact your administrator.")
		return
	}
	p.finish(w, r, login.Request, e)
}

func (u *upstream) describe(code, desc string) string {
	if u.DescribeError != nil {
		return u.DescribeError(code, desc)
	}
	return code + "."
}

// upstreamIdentity redeems code and verifies the ID token: signature by a
// key of the upstream's JWKS, issuer, audience, expiry, nonce and the
// upstream's own claim checks. It returns the join claim's value.
func (p *Provider) upstreamIdentity(ctx context.Context, u *upstream, login *upstreamLogin, code string) (string, error) {
	if code == "" {
		return "", errors.New("the callback carries no code")
	}
	// The round trip may have started on another replica, which
	// discovered the upstream there.
	if err := u.discover(ctx, p.upstreamRedirect()); err != nil {
		return "", err
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, u.client())
	opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(login.Verifier)}
	if u.ClientAuth != nil {
		params, err := u.ClientAuth()
		if err != nil {
			return "", fmt.Errorf("client authentication: %w", err)
		}
		for k := range params {
			opts = append(opts, oauth2.SetAuthURLParam(k, params.Get(k)))
		}
	}
	tok, err := u.oauth.Exchange(ctx, code, opts...)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return "", fmt.Errorf("token endpoint answered %d %s: %s", re.Response.StatusCode, re.ErrorCode, truncate(re.ErrorDescription, 300))
		}
		return "", fmt.Errorf("token exchange: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", errors.New("the token response carries no id_token")
	}
	idt, err := u.verifier.Verify(ctx, raw)
	if err != nil {
		return "", fmt.Errorf("id_token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(login.Nonce)) != 1 {
		return "", errors.New("id_token: the nonce is not the one sent")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return "", fmt.Errorf("id_token claims: %w", err)
	}
	if u.CheckClaims != nil {
		if err := u.CheckClaims(u.issuer, claims); err != nil {
			return "", fmt.Errorf("id_token: %w", err)
		}
	}
	sub, _ := claims[u.JoinClaim].(string)
	if sub == "" {
		return "", fmt.Errorf("id_token: no %s claim", u.JoinClaim)
	}
	return sub, nil
}

// truncate cuts s to at most n bytes, on a rune boundary, for logs.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// upstreamButtons are the "Sign in with …" buttons of the login page.
func (p *Provider) upstreamButtons() []upstreamButton {
	out := make([]upstreamButton, len(p.upstreams))
	for i, u := range p.upstreams {
		out[i] = upstreamButton{Name: u.Name, Label: u.Label}
	}
	return out
}

type upstreamButton struct{ Name, Label string }

// newUpstreams checks the configured upstreams.
func newUpstreams(list []Upstream, now func() time.Time) ([]*upstream, error) {
	var out []*upstream
	for _, u := range list {
		switch {
		case u.Name == "" || u.Label == "" || u.Connector == "" || u.ClientID == "" || u.JoinClaim == "":
			return nil, fmt.Errorf("oidc: upstream %q: name, label, connector, client ID and join claim are required", u.Name)
		case u.ClientSecret != "" && u.ClientAuth != nil:
			return nil, fmt.Errorf("oidc: upstream %q: both a client secret and a client authentication are set", u.Name)
		}
		if _, err := url.Parse(u.Discovery); err != nil || !strings.Contains(u.Discovery, "://") {
			return nil, fmt.Errorf("oidc: upstream %q: discovery URL %q is not absolute", u.Name, u.Discovery)
		}
		for _, o := range out {
			if o.Name == u.Name {
				return nil, fmt.Errorf("oidc: upstream %q is configured twice", u.Name)
			}
		}
		out = append(out, &upstream{Upstream: u, now: now})
	}
	return out, nil
}
