package oidc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/internal/testlog"
)

const (
	rpRedirect = "http://127.0.0.1:9999/callback"
	secret     = "rp-secret"
)

type fixture struct {
	srv   *httptest.Server
	p     *Provider
	live  atomic.Pointer[Provider] // what srv serves; restart swaps it
	dir   string
	store *cache.Store
	conf  *oauth2.Config
	pub   *oauth2.Config
	logs  *testlog.Buffer
}

// newFixture serves a provider with the clients "wiki" (confidential),
// "wiki-es" (confidential, ES256 tokens), "spa" (public) and extra.
func newFixture(t testing.TB, extra ...Client) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), logs: &testlog.Buffer{}}
	store, err := cache.Open(f.dir, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.store = store
	t.Cleanup(func() { f.store.Close() })
	g, _ := store.NewGeneration("corp")
	_ = g.Put(&cache.Entry{ID: "u-alice", DN: "uid=alice,dc=x", Kind: cache.KindUser, Addresses: []string{"alice@x.test"},
		Attrs: []cache.Attr{{Name: "displayName", Values: []string{"Alice L"}}, {Name: "uid", Values: []string{"alice"}}, {Name: "mail", Values: []string{"alice@x.test"}}}})
	_ = g.Put(&cache.Entry{ID: "g-eng", DN: "cn=eng,dc=x", Kind: cache.KindGroup, Members: []string{"uid=alice,dc=x"}, Attrs: []cache.Attr{{Name: "cn", Values: []string{"eng"}}}})
	if err := g.Commit(context.Background(), nil, nil); err != nil {
		t.Fatal(err)
	}
	signIn := func(ctx context.Context, login, password, _ string) (*cache.Entry, error) {
		if strings.ToLower(login) != "alice@x.test" {
			return nil, &authn.Error{Reason: authn.ReasonUnknownUser}
		}
		if password != "pw" {
			return nil, &authn.Error{Reason: authn.ReasonInvalidCredentials}
		}
		var e *cache.Entry
		err := f.live.Load().store.View(ctx, func(v *cache.View) error { var err error; e, err = v.Get("corp", "u-alice"); return err })
		return e, err
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.live.Load().ServeHTTP(w, r) }))
	t.Cleanup(f.srv.Close)
	cfg := Config{
		Issuer: f.srv.URL, KeyRotation: time.Hour, IDTokenTTL: time.Hour, AccessTokenTTL: time.Hour,
		RefreshTokenTTL: 24 * time.Hour, CodeTTL: time.Minute,
		Clients: []Client{
			{ID: "wiki", Name: "The Wiki", RedirectURIs: []string{rpRedirect}, PostLogoutRedirectURIs: []string{"http://127.0.0.1:9999/bye"},
				VerifySecret: func(s string) bool { return s == secret }},
			{ID: "wiki-es", RedirectURIs: []string{rpRedirect}, IDTokenSignedResponseAlg: "ES256",
				VerifySecret: func(s string) bool { return s == secret }},
			{ID: "spa", Public: true, RedirectURIs: []string{rpRedirect}},
		},
	}
	cfg.Clients = append(cfg.Clients, extra...)
	f.p, err = New(cfg, store, store.States(), signIn, slog.New(slog.NewTextHandler(f.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	f.live.Store(f.p)
	ep := oauth2.Endpoint{AuthURL: f.srv.URL + "/authorize", TokenURL: f.srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}
	f.conf = &oauth2.Config{ClientID: "wiki", ClientSecret: secret, Endpoint: ep, RedirectURL: rpRedirect, Scopes: []string{"openid", "email", "profile", "groups"}}
	f.pub = &oauth2.Config{ClientID: "spa", Endpoint: oauth2.Endpoint{AuthURL: ep.AuthURL, TokenURL: ep.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: rpRedirect, Scopes: []string{"openid", "email", "offline_access"}}
	return f
}

// restart closes the cache database and starts a new provider on it, as
// a restart of dirgate does.
func (f *fixture) restart(t *testing.T) {
	t.Helper()
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	store, err := cache.Open(f.dir, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.store = store
	p, err := New(f.p.cfg, store, store.States(), f.p.signIn, f.p.log)
	if err != nil {
		t.Fatal(err)
	}
	f.p = p
	f.live.Store(p)
}

// browser is a cookie-keeping client that does not follow redirects, so
// the test sees where the provider sends it.
func browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var hidden = regexp.MustCompile(`name="(request|csrf)" value="([^"]+)"`)

// signInVia opens authURL, fills the form, and returns the redirect.
func (f *fixture) signInVia(t *testing.T, b *http.Client, authURL, login, password string) (*http.Response, string) {
	t.Helper()
	form, _ := f.openLogin(t, b, authURL)
	form.Set("email", login)
	form.Set("password", password)
	return f.postLogin(t, b, form)
}

// openLogin opens authURL in b and returns the login form's hidden fields
// and the page.
func (f *fixture) openLogin(t *testing.T, b *http.Client, authURL string) (url.Values, string) {
	t.Helper()
	resp, err := b.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("authorize: %d %s", resp.StatusCode, body)
	}
	form := url.Values{}
	for _, m := range hidden.FindAllStringSubmatch(string(body), -1) {
		form.Set(m[1], m[2])
	}
	return form, string(body)
}

// postLogin posts the login form and returns the answer.
func (f *fixture) postLogin(t *testing.T, b *http.Client, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := b.PostForm(f.srv.URL+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(out)
}

func codeFrom(t *testing.T, resp *http.Response, state string) string {
	t.Helper()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login answered %d, want a redirect", resp.StatusCode)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(u.String(), rpRedirect) || u.Query().Get("state") != state {
		t.Fatalf("redirect %q", resp.Header.Get("Location"))
	}
	return u.Query().Get("code")
}

// signInAs runs the code flow for conf with PKCE and returns the tokens.
func (f *fixture) signInAs(t *testing.T, conf *oauth2.Config) *oauth2.Token {
	t.Helper()
	pkce := oauth2.GenerateVerifier()
	resp, _ := f.signInVia(t, browser(), conf.AuthCodeURL("s", oauth2.S256ChallengeOption(pkce), gooidc.Nonce("n")), "alice@x.test", "pw")
	tok, err := conf.Exchange(context.Background(), codeFrom(t, resp, "s"), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestFullFlowWithGoOIDC(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	provider, err := gooidc.NewProvider(ctx, f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	verifier := provider.Verifier(&gooidc.Config{ClientID: "wiki"})
	pkce := oauth2.GenerateVerifier()
	authURL := f.conf.AuthCodeURL("st4te", gooidc.Nonce("n0nce"), oauth2.S256ChallengeOption(pkce))
	b := browser()

	resp, body := f.signInVia(t, b, authURL, "alice@x.test", "wrong")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "not correct") {
		t.Fatalf("wrong password: %d %s", resp.StatusCode, body)
	}
	resp, body = f.signInVia(t, b, authURL, "nobody@x.test", "pw")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "not correct") {
		t.Fatalf("unknown user must read like a wrong password: %d", resp.StatusCode)
	}
	resp, _ = f.signInVia(t, b, authURL, "Alice@X.test", "pw")
	code := codeFrom(t, resp, "st4te")

	tok, err := f.conf.Exchange(ctx, code, oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatal(err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := verifier.Verify(ctx, rawID)
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Email         string   `json:"email"`
		EmailVerified bool     `json:"email_verified"`
		Name          string   `json:"name"`
		Groups        []string `json:"groups"`
		Nonce         string   `json:"nonce"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != "u-alice" || claims.Email != "alice@x.test" || !claims.EmailVerified || claims.Name != "Alice L" ||
		len(claims.Groups) != 1 || claims.Groups[0] != "eng" || claims.Nonce != "n0nce" {
		t.Fatalf("id token: sub %q claims %+v", idt.Subject, claims)
	}
	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || ui.Email != "alice@x.test" || ui.Subject != "u-alice" {
		t.Fatalf("userinfo: %+v %v", ui, err)
	}

	// The code cannot be used twice; the replay revokes what it issued.
	if _, err := f.conf.Exchange(ctx, code, oauth2.VerifierOption(pkce)); err == nil {
		t.Fatal("a replayed code was accepted")
	}
	if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Fatal("the access token of a replayed code still works")
	}
	if _, err := f.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("the refresh token of a replayed code still works")
	}

	// Tampered tokens are refused.
	parts := strings.Split(rawID, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	forged := strings.Replace(string(payload), "u-alice", "u-admin", 1)
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(forged))
	if _, err := verifier.Verify(ctx, strings.Join(parts, ".")); err == nil {
		t.Fatal("a tampered ID token verified")
	}
}

func TestRefreshRotationAndDisabledAccount(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok := f.signInAs(t, f.conf)
	refreshed, err := f.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil || refreshed.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh: %v (a new refresh token must be issued)", err)
	}
	if _, err := f.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("a spent refresh token worked again")
	}
	// A sync disables the account: refresh and userinfo stop working.
	disabled := &cache.Entry{ID: "u-alice", DN: "uid=alice,dc=x", Kind: cache.KindUser, Disabled: true, Addresses: []string{"alice@x.test"}}
	if _, err := f.store.ApplyDelta(ctx, "corp", &cache.Delta{Upserts: []*cache.Entry{disabled}}, nil, nil, false); err != nil {
		t.Fatal(err)
	}
	_, err = f.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshed.RefreshToken}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("refresh of a disabled account: %v", err)
	}
	req, _ := http.NewRequest("GET", f.srv.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+refreshed.AccessToken)
	r, err := http.DefaultClient.Do(req)
	if err != nil || r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("userinfo of a disabled account: %v %v", r.StatusCode, err)
	}
}

func TestPKCEAndPublicClients(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// Wrong verifier.
	pkce := oauth2.GenerateVerifier()
	resp, _ := f.signInVia(t, browser(), f.pub.AuthCodeURL("s", oauth2.S256ChallengeOption(pkce)), "alice@x.test", "pw")
	if _, err := f.pub.Exchange(ctx, codeFrom(t, resp, "s"), oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil {
		t.Fatal("a wrong PKCE verifier was accepted")
	}
	// Right verifier: a public client gets tokens, and a refresh token only with offline_access.
	resp, _ = f.signInVia(t, browser(), f.pub.AuthCodeURL("s", oauth2.S256ChallengeOption(pkce)), "alice@x.test", "pw")
	tok, err := f.pub.Exchange(ctx, codeFrom(t, resp, "s"), oauth2.VerifierOption(pkce))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("public client exchange: %v", err)
	}
	// A public client without PKCE, or with plain, is sent back with an error.
	for _, q := range []string{"", "&code_challenge=abc&code_challenge_method=plain"} {
		r, err := browser().Get(f.srv.URL + "/authorize?client_id=spa&response_type=code&scope=openid&state=x&redirect_uri=" + url.QueryEscape(rpRedirect) + q)
		if err != nil {
			t.Fatal(err)
		}
		loc, _ := url.Parse(r.Header.Get("Location"))
		if r.StatusCode != http.StatusFound || loc.Query().Get("error") != "invalid_request" {
			t.Fatalf("public client %q: %d %s", q, r.StatusCode, r.Header.Get("Location"))
		}
	}
	// A confidential client with a wrong secret is refused.
	bad := *f.conf
	bad.ClientSecret = "nope"
	resp, _ = f.signInVia(t, browser(), f.conf.AuthCodeURL("s"), "alice@x.test", "pw")
	if _, err := bad.Exchange(ctx, codeFrom(t, resp, "s")); err == nil {
		t.Fatal("a wrong client secret was accepted")
	}
}

func TestRedirectAndCSRF(t *testing.T) {
	f := newFixture(t)
	for _, redirect := range []string{"http://evil.example/cb", rpRedirect + "/extra", "http://127.0.0.1:9999/callback?x=1"} {
		r, err := browser().Get(f.srv.URL + "/authorize?client_id=wiki&response_type=code&scope=openid&redirect_uri=" + url.QueryEscape(redirect))
		if err != nil {
			t.Fatal(err)
		}
		if r.StatusCode != http.StatusBadRequest || r.Header.Get("Location") != "" {
			t.Fatalf("foreign redirect %q: %d %q", redirect, r.StatusCode, r.Header.Get("Location"))
		}
	}
	// A login form posted without the CSRF cookie (from another site).
	b := browser()
	r, err := b.Get(f.conf.AuthCodeURL("s"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	form := url.Values{"email": {"alice@x.test"}, "password": {"pw"}}
	for _, m := range hidden.FindAllStringSubmatch(string(body), -1) {
		form.Set(m[1], m[2])
	}
	r, err = browser().PostForm(f.srv.URL+"/login", form) // fresh jar: no cookie
	if err != nil || r.StatusCode != http.StatusForbidden {
		t.Fatalf("login without the CSRF cookie: %v %v", r.StatusCode, err)
	}
	if r.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(r.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatal("pages must forbid framing")
	}
}

func TestRevocationAndEndSession(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok := f.signInAs(t, f.conf)
	revoke := func(tk string) {
		req, _ := http.NewRequest("POST", f.srv.URL+"/revoke", strings.NewReader(url.Values{"token": {tk}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("wiki", secret)
		r, err := http.DefaultClient.Do(req)
		if err != nil || r.StatusCode != http.StatusOK {
			t.Fatalf("revoke: %v %v", r.StatusCode, err)
		}
	}
	revoke(tok.RefreshToken)
	if _, err := f.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("a revoked refresh token worked")
	}
	revoke(tok.AccessToken)
	req, _ := http.NewRequest("GET", f.srv.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if r, _ := http.DefaultClient.Do(req); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a revoked access token: %d", r.StatusCode)
	}
	revoke("not-a-token") // RFC 7009: 200 all the same

	idt, _ := tok.Extra("id_token").(string)
	r, _ := browser().Get(f.srv.URL + "/end_session?id_token_hint=" + idt + "&post_logout_redirect_uri=" + url.QueryEscape("http://127.0.0.1:9999/bye") + "&state=z")
	if r.StatusCode != http.StatusFound || r.Header.Get("Location") != "http://127.0.0.1:9999/bye?state=z" {
		t.Fatalf("end session: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	r, _ = browser().Get(f.srv.URL + "/end_session?id_token_hint=" + idt + "&post_logout_redirect_uri=" + url.QueryEscape("http://evil.example/"))
	if r.StatusCode != http.StatusBadRequest {
		t.Fatalf("end session to an unregistered address: %d", r.StatusCode)
	}
}

func TestKeyRotation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok := f.signInAs(t, f.conf)
	old, _ := tok.Extra("id_token").(string)
	// Rotate: a new key signs, the old one stays published while its
	// tokens can live.
	now := time.Now()
	f.p.now = func() time.Time { return now.Add(61 * time.Minute) }
	if err := f.p.keys.maybeRotate(ctx); err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	r, _ := http.Get(f.srv.URL + "/keys")
	_ = json.NewDecoder(r.Body).Decode(&set)
	if want := 2 * len(signingAlgs); len(set.Keys) != want {
		t.Fatalf("JWKS after rotation has %d keys, want %d (the new and the old key of each algorithm)", len(set.Keys), want)
	}
	f.p.now = time.Now
	provider, _ := gooidc.NewProvider(ctx, f.srv.URL)
	v := provider.Verifier(&gooidc.Config{ClientID: "wiki", Now: func() time.Time { return now }})
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatalf("a token signed before the rotation no longer verifies: %v", err)
	}
	// Past the keep time the retired key is dropped from the JWKS.
	oldKID := f.p.keys.keys[0].ID
	f.p.now = func() time.Time { return now.Add(61*time.Minute + 3*time.Hour) }
	_ = f.p.keys.maybeRotate(ctx)
	for _, k := range f.p.keys.jwks().Keys {
		if k.KeyID == oldKID {
			t.Fatal("a key retired hours ago is still published")
		}
	}
	// Keys persist: a new provider on the same store loads them.
	p2, err := New(f.p.cfg, f.store, f.store.States(), f.p.signIn, slog.New(slog.DiscardHandler))
	if err != nil || len(p2.keys.jwks().Keys) == 0 {
		t.Fatalf("reload keys: %v", err)
	}
}
