package fakeentra

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/dirgate/dirgate/clock"
)

const (
	rpID       = "11111111-2222-3333-4444-555555555555"
	rpSecret   = "rp-s3cret"
	rpRedirect = "http://127.0.0.1:1/callback"
)

// oidcTenant is a tenant on the wall clock (go-oidc checks expiry against
// it) with a confidential web app and one user.
func oidcTenant(t *testing.T) *Tenant {
	ten := New(t, WithClock(clock.NewFake(time.Now())))
	ten.AddApp(App{ClientID: rpID, Secret: rpSecret, RedirectURIs: []string{rpRedirect}})
	ten.PutUser(User{ID: "u-ann", UserPrincipalName: "ann@contoso.example", Mail: "ann@contoso.example", DisplayName: "Ann", AccountEnabled: true})
	ten.SignInAs("u-ann")
	return ten
}

// noRedirect returns the first answer without following redirects.
func noRedirect(c *http.Client) *http.Client {
	cp := *c
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

type rp struct {
	ten      *Tenant
	conf     oauth2.Config
	verifier *gooidc.IDTokenVerifier
	ctx      context.Context
}

func newRP(t *testing.T, ten *Tenant) *rp {
	ctx := gooidc.ClientContext(context.Background(), ten.HTTPClient())
	p, err := gooidc.NewProvider(ctx, ten.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInParams // no second attempt spending the code
	return &rp{ten: ten, ctx: context.WithValue(ctx, oauth2.HTTPClient, ten.HTTPClient()),
		conf:     oauth2.Config{ClientID: rpID, ClientSecret: rpSecret, RedirectURL: rpRedirect, Endpoint: ep, Scopes: []string{"openid", "profile", "email"}},
		verifier: p.Verifier(&gooidc.Config{ClientID: rpID})}
}

// authorize runs /authorize and returns the redirect's query.
func (r *rp) authorize(t *testing.T, verifier string, extra ...oauth2.AuthCodeOption) url.Values {
	t.Helper()
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "n-1")}, extra...)
	resp, err := noRedirect(r.ten.HTTPClient()).Get(r.conf.AuthCodeURL("st-1", opts...))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize answered %s, want a redirect", resp.Status)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if !strings.HasPrefix(loc.String(), rpRedirect) {
		t.Fatalf("redirected to %s", loc)
	}
	return loc.Query()
}

func TestOIDCDiscoveryIssuer(t *testing.T) {
	ten := oidcTenant(t)
	for _, tc := range []struct{ tenant, issuer string }{
		{ten.ID(), ten.Issuer()},
		{ten.Domain(), ten.Issuer()},
		{"organizations", ten.AuthorityURL() + "/{tenantid}/v2.0"},
	} {
		resp, err := ten.HTTPClient().Get(ten.AuthorityURL() + "/" + tc.tenant + "/v2.0/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		var d struct{ Issuer string }
		_ = json.NewDecoder(resp.Body).Decode(&d)
		resp.Body.Close()
		if d.Issuer != tc.issuer {
			t.Errorf("%s: issuer %q, want %q", tc.tenant, d.Issuer, tc.issuer)
		}
	}
	resp, _ := ten.HTTPClient().Get(ten.AuthorityURL() + "/nope.example/v2.0/.well-known/openid-configuration")
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown tenant: %s", resp.Status)
	}
}

func TestOIDCCodeFlow(t *testing.T) {
	ten := oidcTenant(t)
	r := newRP(t, ten)
	v := oauth2.GenerateVerifier()
	q := r.authorize(t, v)
	if q.Get("state") != "st-1" || q.Get("code") == "" {
		t.Fatalf("callback %v", q)
	}
	tok, err := r.conf.Exchange(r.ctx, q.Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	idt, err := r.verifier.Verify(r.ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	_ = idt.Claims(&c)
	for k, want := range map[string]any{"oid": "u-ann", "tid": ten.ID(), "preferred_username": "ann@contoso.example", "name": "Ann",
		"email": "ann@contoso.example", "nonce": "n-1", "iss": ten.Issuer(), "aud": rpID} {
		if c[k] != want {
			t.Errorf("claim %s = %v, want %v", k, c[k], want)
		}
	}
	if c["sub"] == "u-ann" || c["sub"] == "" {
		t.Errorf("sub %v is not pairwise", c["sub"])
	}
	// One-time codes.
	if _, err := r.conf.Exchange(r.ctx, q.Get("code"), oauth2.VerifierOption(v)); err == nil || !strings.Contains(err.Error(), "54005") {
		t.Errorf("second redemption: %v, want AADSTS54005", err)
	}
}

func TestOIDCTokenRefusals(t *testing.T) {
	ten := oidcTenant(t)
	r := newRP(t, ten)
	for _, tc := range []struct {
		name string
		conf func(c oauth2.Config) oauth2.Config
		ver  func(v string) string
		want string
	}{
		{"wrong verifier", nil, func(string) string { return oauth2.GenerateVerifier() }, "50148"},
		{"no verifier", nil, func(string) string { return "" }, "code_verifier"},
		{"wrong secret", func(c oauth2.Config) oauth2.Config { c.ClientSecret = "x"; return c }, nil, "7000215"},
		{"no secret", func(c oauth2.Config) oauth2.Config { c.ClientSecret = ""; return c }, nil, "7000218"},
		{"other redirect", func(c oauth2.Config) oauth2.Config { c.RedirectURL = "http://127.0.0.1:2/cb"; return c }, nil, "redirect_uri"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := oauth2.GenerateVerifier()
			q := r.authorize(t, v)
			conf, ver := r.conf, v
			if tc.conf != nil {
				conf = tc.conf(conf)
			}
			if tc.ver != nil {
				ver = tc.ver(v)
			}
			var opts []oauth2.AuthCodeOption
			if ver != "" {
				opts = append(opts, oauth2.VerifierOption(ver))
			}
			_, err := conf.Exchange(r.ctx, q.Get("code"), opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("exchange: %v, want %s", err, tc.want)
			}
		})
	}
}

func TestOIDCAuthorizeRefusals(t *testing.T) {
	ten := oidcTenant(t)
	r := newRP(t, ten)
	c := noRedirect(ten.HTTPClient())
	base := r.conf.Endpoint.AuthURL
	good := url.Values{"client_id": {rpID}, "redirect_uri": {rpRedirect}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"s"}, "nonce": {"n"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
	for _, tc := range []struct {
		name, key, value string
		page             bool   // answered with a page, never redirected
		want             string // error or code expected
	}{
		{"unknown client", "client_id", "nope", true, "700016"},
		{"unregistered redirect", "redirect_uri", rpRedirect + "x", true, "50011"},
		{"token flow", "response_type", "token", false, "unsupported_response_type"},
		{"no openid", "scope", "profile", false, "invalid_request"},
		{"no state", "state", "", false, "invalid_request"},
		{"no nonce", "nonce", "", false, "invalid_request"},
		{"plain pkce", "code_challenge_method", "plain", false, "501491"},
		{"no pkce", "code_challenge", "", false, "501491"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{}
			for k, v := range good {
				q[k] = v
			}
			q.Set(tc.key, tc.value)
			resp, err := c.Get(base + "?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 512)
			n, _ := resp.Body.Read(buf)
			resp.Body.Close()
			if tc.page {
				if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(buf[:n]), tc.want) {
					t.Fatalf("%s: %s", resp.Status, buf[:n])
				}
				return
			}
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || !strings.Contains(loc.Query().Get("error")+loc.Query().Get("error_description"), tc.want) || loc.Query().Get("code") != "" {
				t.Fatalf("%s: %s", resp.Status, loc)
			}
		})
	}
}

func TestOIDCSignInHooks(t *testing.T) {
	ten := oidcTenant(t)
	r := newRP(t, ten)
	ten.FailSignIn("interaction_required", 50076, "Due to a configuration change made by your administrator, you must use multi-factor authentication.")
	q := r.authorize(t, oauth2.GenerateVerifier())
	if q.Get("error") != "interaction_required" || !strings.HasPrefix(q.Get("error_description"), "AADSTS50076:") || q.Get("state") != "st-1" || q.Has("code") {
		t.Errorf("MFA: %v", q)
	}
	ten.SignInAs("u-ann")
	ten.PutUser(User{ID: "u-ann", UserPrincipalName: "ann@contoso.example", AccountEnabled: false})
	if q := r.authorize(t, oauth2.GenerateVerifier()); q.Get("error") != "access_denied" || !strings.Contains(q.Get("error_description"), "50057") {
		t.Errorf("disabled: %v", q)
	}
}

func TestOIDCKeyRotation(t *testing.T) {
	ten := oidcTenant(t)
	r := newRP(t, ten)
	idToken := func() (string, error) {
		v := oauth2.GenerateVerifier()
		tok, err := r.conf.Exchange(r.ctx, r.authorize(t, v).Get("code"), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		raw := tok.Extra("id_token").(string)
		_, err = r.verifier.Verify(r.ctx, raw)
		return raw, err
	}
	kid := func(raw string) string {
		jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			t.Fatal(err)
		}
		return jws.Signatures[0].Header.KeyID
	}
	first, err := idToken()
	if err != nil {
		t.Fatal(err)
	}
	ten.RotateSigningKey()
	second, err := idToken()
	if err != nil {
		t.Fatalf("after rotation (the verifier must refetch the JWKS): %v", err)
	}
	if kid(first) == kid(second) {
		t.Error("the kid did not switch")
	}
	var set jose.JSONWebKeySet
	resp, _ := ten.HTTPClient().Get(ten.AuthorityURL() + "/" + ten.ID() + "/discovery/v2.0/keys")
	_ = json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	if len(set.Keys) != 2 || len(set.Key(kid(first))) != 1 || len(set.Key(kid(second))) != 1 {
		t.Errorf("JWKS %+v does not publish both keys", set.Keys)
	}
	ten.SignWithUnpublishedKey(true)
	if _, err := idToken(); err == nil {
		t.Error("a token under an unpublished kid verified")
	}
}

func TestAdminConsent(t *testing.T) {
	ten := oidcTenant(t)
	c := noRedirect(ten.HTTPClient())
	get := func(tenant, client, redirect string) (*http.Response, url.Values) {
		q := url.Values{"client_id": {client}, "redirect_uri": {redirect}, "state": {"st"}}
		resp, err := c.Get(ten.AuthorityURL() + "/" + tenant + "/adminconsent?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		return resp, loc.Query()
	}
	resp, q := get(ten.Domain(), rpID, rpRedirect)
	if resp.StatusCode != http.StatusFound || q.Get("admin_consent") != "True" || q.Get("tenant") != ten.ID() || q.Get("state") != "st" {
		t.Errorf("granted: %s %v", resp.Status, q)
	}
	if ten.AdminConsents() != 1 {
		t.Errorf("consents %d", ten.AdminConsents())
	}
	ten.DeclineConsent("access_denied", 65004, "User declined to consent to access the app.")
	resp, q = get(ten.ID(), rpID, rpRedirect)
	if resp.StatusCode != http.StatusFound || q.Get("error") != "access_denied" || !strings.HasPrefix(q.Get("error_description"), "AADSTS65004:") || q.Has("admin_consent") || q.Get("state") != "st" {
		t.Errorf("declined: %s %v", resp.Status, q)
	}
	for _, tc := range [][3]string{{"nope.example", rpID, rpRedirect}, {ten.ID(), "nope", rpRedirect}, {ten.ID(), rpID, "http://127.0.0.1:1/other"}} {
		if resp, _ := get(tc[0], tc[1], tc[2]); resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("%v: %s, want an error page", tc, resp.Status)
		}
	}
}
