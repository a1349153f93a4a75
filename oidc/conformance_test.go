package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// jwsHeader is the protected header of a compact JWS.
func jwsHeader(t *testing.T, raw string) jose.Header {
	t.Helper()
	tok, err := jose.ParseSignedCompact(raw, signingAlgs)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Signatures[0].Header
}

// TestSigningAlgorithms: discovery offers RS256 and ES256 (Core 15.1,
// Discovery 3), the JWKS publishes a key of each with kid, alg and use, a
// client that names no algorithm gets RS256 and one configured for ES256
// gets ES256, each verified by go-oidc restricted to that algorithm.
func TestSigningAlgorithms(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	provider, err := gooidc.NewProvider(ctx, f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := provider.Claims(&meta); err != nil || !slices.Equal(meta.Algs, []string{"RS256", "ES256"}) {
		t.Fatalf("discovery id_token_signing_alg_values_supported = %v (%v), want [RS256 ES256]", meta.Algs, err)
	}
	r, err := http.Get(f.srv.URL + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []struct {
			Kid, Alg, Use, Kty string
		} `json:"keys"`
	}
	_ = json.NewDecoder(r.Body).Decode(&set)
	r.Body.Close()
	kinds := map[string]string{}
	for _, k := range set.Keys {
		if k.Kid == "" || k.Use != "sig" {
			t.Fatalf("JWKS key without kid or use=sig: %+v", k)
		}
		kinds[k.Alg] = k.Kty
	}
	if kinds["RS256"] != "RSA" || kinds["ES256"] != "EC" {
		t.Fatalf("JWKS algorithms and key types: %v, want RS256/RSA and ES256/EC", kinds)
	}

	es := *f.conf
	es.ClientID = "wiki-es"
	for _, c := range []struct {
		name string
		conf *oauth2.Config
		alg  string
	}{
		{"default", f.conf, "RS256"},
		{"id_token_signed_response_alg ES256", &es, "ES256"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tok := f.signInAs(t, c.conf)
			raw, _ := tok.Extra("id_token").(string)
			if got := jwsHeader(t, raw).Algorithm; got != c.alg {
				t.Fatalf("ID token alg %s, want %s", got, c.alg)
			}
			v := provider.Verifier(&gooidc.Config{ClientID: c.conf.ClientID, SupportedSigningAlgs: []string{c.alg}})
			if _, err := v.Verify(ctx, raw); err != nil {
				t.Fatalf("go-oidc (%s only): %v", c.alg, err)
			}
			if got := jwsHeader(t, tok.AccessToken).Algorithm; got != c.alg {
				t.Fatalf("access token alg %s, want %s", got, c.alg)
			}
			if ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err != nil || ui.Subject != "u-alice" {
				t.Fatalf("userinfo with a %s access token: %v", c.alg, err)
			}
			// Refresh keeps the client's algorithm.
			next, err := c.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			if err != nil {
				t.Fatal(err)
			}
			if got := jwsHeader(t, next.Extra("id_token").(string)).Algorithm; got != c.alg {
				t.Fatalf("refreshed ID token alg %s, want %s", got, c.alg)
			}
		})
	}

	// Both keys survive a restart.
	before := f.p.keys.jwks()
	f.restart(t)
	after := f.p.keys.jwks()
	if len(after.Keys) != len(before.Keys) {
		t.Fatalf("after a restart the JWKS has %d keys, before %d", len(after.Keys), len(before.Keys))
	}
	for i := range before.Keys {
		if after.Keys[i].KeyID != before.Keys[i].KeyID || after.Keys[i].Algorithm != before.Keys[i].Algorithm {
			t.Fatalf("key %d changed across a restart: %s/%s, was %s/%s", i, after.Keys[i].KeyID, after.Keys[i].Algorithm,
				before.Keys[i].KeyID, before.Keys[i].Algorithm)
		}
	}

	// A client configured for an algorithm the provider does not sign with
	// is refused at start.
	cfg := f.p.cfg
	cfg.Clients = []Client{{ID: "x", RedirectURIs: []string{rpRedirect}, IDTokenSignedResponseAlg: "HS256"}}
	if _, err := New(cfg, f.store, f.store.States(), f.p.signIn, f.p.log); err == nil {
		t.Fatal("a client asking for HS256 was accepted")
	}
}

// TestKeysStoredBeforeRS256 loads a key ring saved when dirgate signed
// with ES256 only: the ES256 key keeps signing, an RS256 key is added.
func TestKeysStoredBeforeRS256(t *testing.T) {
	store, c := &memKeys{}, &clock{t: time.Unix(1_700_000_000, 0)}
	newTestRing(t, store, c)
	// What an older dirgate stored: its ES256 key, without alg.
	var keys []map[string]any
	if err := json.Unmarshal(store.b, &keys); err != nil {
		t.Fatal(err)
	}
	var legacy []map[string]any
	for _, key := range keys {
		if key["alg"] == ES256 {
			delete(key, "alg")
			legacy = append(legacy, key)
		}
	}
	store.b, _ = json.Marshal(legacy)
	k := newTestRing(t, store, c)
	if id := k.keys[newest(k.keys, jose.ES256)].ID; id != legacy[0]["id"] {
		t.Fatalf("the stored ES256 key %v was replaced by %s", legacy[0]["id"], id)
	}
	if newest(k.keys, jose.RS256) < 0 {
		t.Fatal("no RS256 key was added to a ring stored before RS256")
	}
}

// TestCORS: public metadata for any origin; token, userinfo and revocation
// for the origins of registered redirect URIs only; none on the
// navigation endpoints.
func TestCORS(t *testing.T) {
	f := newFixture(t, Client{ID: "spa2", Public: true, RedirectURIs: []string{"https://App.Example.com:443/cb", "com.example.app:/cb"}})
	const registered, stranger = "http://127.0.0.1:9999", "http://127.0.0.1:9998"
	cases := []struct {
		name, method, path, origin string
		preflight                  bool
		status                     int
		allow                      string // Access-Control-Allow-Origin; "" none
		vary                       bool
	}{
		{"discovery", "GET", "/.well-known/openid-configuration", stranger, false, 200, "*", false},
		{"jwks", "GET", "/keys", stranger, false, 200, "*", false},
		{"jwks preflight", "OPTIONS", "/keys", stranger, true, 204, "*", false},
		{"token preflight", "OPTIONS", "/token", registered, true, 204, registered, true},
		{"token", "POST", "/token", registered, false, 401, registered, true},
		{"token from a stranger", "POST", "/token", stranger, false, 401, "", true},
		{"token preflight from a stranger", "OPTIONS", "/token", stranger, true, 403, "", true},
		{"token preflight, default https port", "OPTIONS", "/token", "https://app.example.com", true, 204, "https://app.example.com", true},
		{"token preflight, origin null", "OPTIONS", "/token", "null", true, 403, "", true},
		{"userinfo preflight", "OPTIONS", "/userinfo", registered, true, 204, registered, true},
		{"userinfo", "GET", "/userinfo", registered, false, 401, registered, true},
		{"revoke preflight", "OPTIONS", "/revoke", registered, true, 204, registered, true},
		{"authorize", "GET", "/authorize", registered, false, 400, "", false},
		{"authorize preflight", "OPTIONS", "/authorize", registered, true, 405, "", false},
		{"end_session", "GET", "/end_session", registered, false, 200, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, f.srv.URL+c.path, nil)
			req.Header.Set("Origin", c.origin)
			if c.preflight {
				req.Header.Set("Access-Control-Request-Method", "POST")
				req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
			}
			if c.method == "POST" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			r, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			h := r.Header
			if r.StatusCode != c.status || h.Get("Access-Control-Allow-Origin") != c.allow {
				t.Fatalf("%d, Access-Control-Allow-Origin %q; want %d, %q", r.StatusCode, h.Get("Access-Control-Allow-Origin"), c.status, c.allow)
			}
			if got := slices.Contains(h.Values("Vary"), "Origin"); got != c.vary {
				t.Fatalf("Vary: Origin is %v, want %v", got, c.vary)
			}
			if h.Get("Access-Control-Allow-Credentials") != "" {
				t.Fatal("credentials mode is not needed and must not be allowed")
			}
			if c.preflight && c.status == 204 {
				methods, headers := h.Get("Access-Control-Allow-Methods"), strings.ToLower(h.Get("Access-Control-Allow-Headers"))
				if methods == "" || !strings.Contains(headers, "authorization") || !strings.Contains(headers, "content-type") {
					t.Fatalf("preflight allows methods %q, headers %q", methods, headers)
				}
			}
		})
	}
}

// TestAuthorizeAndEndSessionByPOST: both endpoints take form-encoded POST
// requests (Core 3.1.2.1, RP-Initiated Logout 2), as mod_auth_openidc's
// OIDCProviderAuthRequestMethod POST sends them; the login form's fields
// posted to authorize are not a sign-in.
func TestAuthorizeAndEndSessionByPOST(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	b := browser()
	pkce := oauth2.GenerateVerifier()
	params := url.Values{
		"client_id": {"wiki"}, "response_type": {"code"}, "scope": {"openid email"}, "redirect_uri": {rpRedirect},
		"state": {"p0st"}, "nonce": {"n0nce"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(pkce)}, "code_challenge_method": {"S256"},
	}
	resp, err := b.PostForm(f.srv.URL+"/authorize", params)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `name="password"`) {
		t.Fatalf("POST authorize: %d\n%s", resp.StatusCode, body)
	}
	form := url.Values{"email": {"alice@x.test"}, "password": {"pw"}}
	for _, m := range hidden.FindAllStringSubmatch(string(body), -1) {
		form.Set(m[1], m[2])
	}
	// The login form's fields sent to authorize are an authorization
	// request without a client, not a sign-in.
	r, err := b.PostForm(f.srv.URL+"/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusBadRequest || r.Header.Get("Location") != "" {
		t.Fatalf("login fields posted to authorize: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	resp, err = b.PostForm(f.srv.URL+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tok, err := f.conf.Exchange(ctx, codeFrom(t, resp, "p0st"), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatal(err)
	}
	provider, _ := gooidc.NewProvider(ctx, f.srv.URL)
	idt, err := provider.Verifier(&gooidc.Config{ClientID: "wiki"}).Verify(ctx, tok.Extra("id_token").(string))
	if err != nil || idt.Nonce != "n0nce" {
		t.Fatalf("ID token of a POST authorization request: %v", err)
	}

	raw := tok.Extra("id_token").(string)
	for _, c := range []struct {
		name     string
		form     url.Values
		status   int
		location string
	}{
		{"hint and registered address", url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {"http://127.0.0.1:9999/bye"}, "state": {"z"}},
			http.StatusFound, "http://127.0.0.1:9999/bye?state=z"},
		{"client_id and registered address", url.Values{"client_id": {"wiki"}, "post_logout_redirect_uri": {"http://127.0.0.1:9999/bye"}},
			http.StatusFound, "http://127.0.0.1:9999/bye"},
		{"client_id not the hint's audience", url.Values{"id_token_hint": {raw}, "client_id": {"spa"}, "post_logout_redirect_uri": {"http://127.0.0.1:9999/bye"}},
			http.StatusBadRequest, ""},
		{"unregistered address", url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {"http://evil.example/"}},
			http.StatusBadRequest, ""},
	} {
		r, err := browser().PostForm(f.srv.URL+"/end_session", c.form)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != c.status || r.Header.Get("Location") != c.location {
			t.Fatalf("POST end_session, %s: %d %q; want %d %q", c.name, r.StatusCode, r.Header.Get("Location"), c.status, c.location)
		}
	}
}

// TestRefreshReuseRevokesFamily: a rotated refresh token presented again
// revokes its whole family, the token it was rotated into included (RFC
// 9700 4.14.2), also when dirgate restarted in between, or when it is
// presented to another replica of a cluster; the reuse is logged without
// the token; other families are untouched.
func TestRefreshReuseRevokesFamily(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup prepares the fixture and returns what happens between the
		// rotation and the reuse.
		setup func(t *testing.T, f *fixture) (between func())
	}{
		{"same process", func(*testing.T, *fixture) func() { return func() {} }},
		{"across a restart", func(t *testing.T, f *fixture) func() { return func() { f.restart(t) } }},
		{"on another replica", func(t *testing.T, f *fixture) func() {
			_, b, _ := f.replicas(t)
			return func() { f.live.Store(b) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			between := tc.setup(t, f)
			ctx := context.Background()
			refresh := func(rt string) (*oauth2.Token, error) {
				return f.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
			}
			first := f.signInAs(t, f.conf)
			other := f.signInAs(t, f.conf)
			second, err := refresh(first.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			between()
			_, err = refresh(first.RefreshToken)
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
				t.Fatalf("reused refresh token: %v", err)
			}
			if _, err := refresh(second.RefreshToken); err == nil {
				t.Fatal("the token a reused refresh token was rotated into still works")
			}
			if _, err := refresh(other.RefreshToken); err != nil {
				t.Fatalf("another sign-in's refresh token was revoked too: %v", err)
			}
			logs := f.logs.String()
			if !strings.Contains(logs, "reused") || !strings.Contains(logs, "client=wiki") {
				t.Fatalf("the reuse is not logged:\n%s", logs)
			}
			for _, tk := range []string{first.RefreshToken, second.RefreshToken} {
				if strings.Contains(logs, tk) {
					t.Fatal("the log holds a refresh token")
				}
			}
		})
	}
}

// TestIssuerRootPage: the issuer URL opened in a browser is a small page
// linking discovery; other unknown paths stay 404.
func TestIssuerRootPage(t *testing.T) {
	f := newFixture(t)
	r, err := http.Get(f.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(body), `href="`+f.srv.URL+`/.well-known/openid-configuration"`) {
		t.Fatalf("issuer root: %d %s\n%s", r.StatusCode, r.Header.Get("Content-Type"), body)
	}
	r, err = http.Get(f.srv.URL + "/nothing-here")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown path: %d, want 404", r.StatusCode)
	}
}

// TestCodeReplayDuringFirstExchange: a replay that arrives while the first
// exchange of the code is still issuing its tokens revokes the refresh
// token and the access token that exchange then issues.
func TestCodeReplayDuringFirstExchange(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	resp, _ := f.signInVia(t, browser(), f.conf.AuthCodeURL("s"), "alice@x.test", "pw")
	code := codeFrom(t, resp, "s")
	first, replay, err := f.p.grants.redeem(ctx, code) // the first exchange has taken the code
	if err != nil || first == nil || replay {
		t.Fatal("the code was not redeemable")
	}
	if _, err := f.conf.Exchange(ctx, code); err == nil {
		t.Fatal("a replayed code was accepted")
	}
	e, err := f.p.account(ctx, first.Connector, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	issued, _, _, err := f.p.issue(ctx, f.p.clients["wiki"], e, first.Scope, "", first.AccessJTI, refreshGrant{Scope: first.Scope, AuthTime: first.AuthTime, Family: first.Family})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: issued["refresh_token"].(string)}).Token(); err == nil {
		t.Fatal("the refresh token issued for a replayed code works")
	}
	if userinfoStatus(t, f, issued["access_token"].(string)) != http.StatusUnauthorized {
		t.Fatal("the access token issued for a replayed code works")
	}
}

// TestCodeOfEarlierReleaseRevocable: a code stored by a release that
// named its access token at the exchange (a replica not yet upgraded) gets
// the token recorded by the exchange, so a replay still revokes it.
func TestCodeOfEarlierReleaseRevocable(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := f.p.now()
	code, err := f.p.grants.putCode(ctx, &codeGrant{ClientID: "wiki", RedirectURI: rpRedirect, Scope: []string{"openid"},
		Connector: "corp", ID: "u-alice", AuthTime: now, Expires: now.Add(time.Minute), Family: token(16)})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := f.conf.Exchange(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.conf.Exchange(ctx, code); err == nil {
		t.Fatal("a replayed code was accepted")
	}
	if userinfoStatus(t, f, tok.AccessToken) != http.StatusUnauthorized {
		t.Fatal("the access token of a replayed code works")
	}
}

// FuzzFormRequests posts arbitrary bodies to authorize and end_session:
// the answer is a page or a redirect, and a redirect only ever goes to an
// address the client registered.
func FuzzFormRequests(f *testing.F) {
	fx := newFixture(f)
	registered := []string{rpRedirect, "http://127.0.0.1:9999/bye"}
	f.Add(true, "client_id=wiki&response_type=code&scope=openid&redirect_uri="+url.QueryEscape(rpRedirect)+"&state=x")
	f.Add(true, "client_id=wiki&response_type=token&scope=openid&redirect_uri="+url.QueryEscape(rpRedirect))
	f.Add(true, "client_id=spa&response_type=code&scope=openid&redirect_uri=http%3A%2F%2Fevil.example%2F")
	f.Add(false, "client_id=wiki&post_logout_redirect_uri="+url.QueryEscape("http://127.0.0.1:9999/bye")+"&state=%00")
	f.Add(false, "id_token_hint=a.b.c&post_logout_redirect_uri=x")
	f.Add(true, "%zz&&==")
	f.Fuzz(func(t *testing.T, authorize bool, body string) {
		path := "/end_session"
		if authorize {
			path = "/authorize"
		}
		req := httptest.NewRequest(http.MethodPost, fx.srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		fx.p.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest:
		case http.StatusFound:
			loc := rec.Header().Get("Location")
			if !slices.ContainsFunc(registered, func(r string) bool { return loc == r || strings.HasPrefix(loc, r+"?") }) {
				t.Fatalf("redirect to %q", loc)
			}
		default:
			t.Fatalf("status %d for %q", rec.Code, body)
		}
	})
}

// userinfoStatus is the status of a userinfo request with the access token.
func userinfoStatus(t *testing.T, f *fixture, access string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	return r.StatusCode
}
