package oidc

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/dirgate/dirgate/cache"
	dgclock "github.com/dirgate/dirgate/clock"
	"github.com/dirgate/dirgate/internal/fakeentra"
)

const (
	entraApp    = "0d5e0f00-0000-4000-8000-00000000a001"
	entraSecret = "app-s3cret"
)

// upstreamFixture is the provider of newFixture with "Sign in with
// Microsoft" against a fake tenant, and the connector m365 in the cache:
// ann (enabled, in group staff) and bob (disabled by the sync).
type upstreamFixture struct {
	upstreamUnder
	ten *fakeentra.Tenant
}

// upstreamUnder is the fixture's provider with an upstream under test: its
// name, the label of its button and the base URL of its authorization
// endpoint.
type upstreamUnder struct {
	*fixture
	name, label, base string
}

func newUpstreamFixture(t *testing.T, tenant func(*fakeentra.Tenant) string, domains []string, extra ...Client) *upstreamFixture {
	t.Helper()
	f := newFixture(t, extra...)
	ten := fakeentra.New(t, fakeentra.WithClock(dgclock.NewFake(time.Now())))
	ten.AddApp(fakeentra.App{ClientID: entraApp, Secret: entraSecret, RedirectURIs: []string{f.srv.URL + "/upstream/callback"}})
	for _, u := range []fakeentra.User{
		{ID: "u-ann", UserPrincipalName: "ann@contoso.example", Mail: "ann@contoso.example", DisplayName: "Ann", AccountEnabled: true},
		{ID: "u-bob", UserPrincipalName: "bob@contoso.example", DisplayName: "Bob", AccountEnabled: true},
		// Signs in at Microsoft with the name of corp's alice, but was
		// never synced: a name must not join her to alice.
		{ID: "u-eve", UserPrincipalName: "alice@x.test", Mail: "alice@x.test", DisplayName: "Alice L", AccountEnabled: true},
	} {
		ten.PutUser(u)
	}
	ten.SignInAs("u-ann")
	uf := &upstreamFixture{upstreamUnder: upstreamUnder{fixture: f, name: "m365", label: "Microsoft", base: ten.AuthorityURL()}, ten: ten}
	uf.putM365(t, false)
	f.useUpstreams(t, EntraUpstream(Upstream{Name: "m365", Connector: "m365", ClientID: entraApp,
		HTTPClient: ten.HTTPClient(), Domains: domains,
		ClientAuth:    func() (url.Values, error) { return url.Values{"client_secret": {entraSecret}}, nil },
		DescribeError: func(code, desc string) string { return "described " + code + " " + desc[:min(len(desc), 14)] }},
		ten.AuthorityURL(), tenant(ten)))
	return uf
}

// useUpstreams replaces the fixture's provider by one with ups.
func (f *fixture) useUpstreams(t *testing.T, ups ...Upstream) {
	t.Helper()
	cfg := f.p.cfg
	cfg.Upstreams = ups
	p, err := New(cfg, f.store, f.store.States(), f.p.signIn, f.p.log)
	if err != nil {
		t.Fatal(err)
	}
	f.p = p
	f.live.Store(p)
}

// putGeneration commits a generation of conn holding entries.
func (f *fixture) putGeneration(t *testing.T, conn string, entries ...*cache.Entry) {
	t.Helper()
	g, err := f.store.NewGeneration(conn)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := g.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Commit(context.Background(), nil, nil); err != nil {
		t.Fatal(err)
	}
}

// putM365 commits the connector m365's generation; bobDisabled is what
// the sync saw of bob.
func (f *upstreamFixture) putM365(t *testing.T, annDisabled bool) {
	t.Helper()
	f.putGeneration(t, "m365",
		&cache.Entry{ID: "u-ann", DN: "cn=ann,o=m365", Kind: cache.KindUser, Addresses: []string{"ann@contoso.example"}, Disabled: annDisabled,
			Attrs: []cache.Attr{{Name: "displayName", Values: []string{"Ann Synced"}}, {Name: "userPrincipalName", Values: []string{"ann@contoso.example"}}}},
		&cache.Entry{ID: "u-bob", DN: "cn=bob,o=m365", Kind: cache.KindUser, Addresses: []string{"bob@contoso.example"}, Disabled: true},
		&cache.Entry{ID: "g-staff", DN: "cn=staff,o=m365", Kind: cache.KindGroup, Members: []string{"cn=ann,o=m365"}, Attrs: []cache.Attr{{Name: "cn", Values: []string{"staff"}}}})
}

func byID(ten *fakeentra.Tenant) string     { return ten.ID() }
func byDomain(ten *fakeentra.Tenant) string { return ten.Domain() }

// loginPage opens authURL in b and returns the login form's hidden fields.
func (f *upstreamUnder) loginPage(t *testing.T, b *http.Client, authURL string) url.Values {
	t.Helper()
	form, body := f.openLogin(t, b, authURL)
	if !strings.Contains(body, "Sign in with "+f.label) {
		t.Fatalf("authorize: no button for %s\n%s", f.label, body)
	}
	return form
}

// follow GETs target in b and returns the answer, its body and where it
// redirects.
func follow(t *testing.T, b *http.Client, target string) (*http.Response, string, *url.URL) {
	t.Helper()
	resp, err := b.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	loc, _ := resp.Location()
	return resp, string(body), loc
}

// via presses "Sign in with <label>" and follows the fake's answer back
// to dirgate's callback; it returns dirgate's answer there.
func (f *upstreamUnder) via(t *testing.T, b *http.Client, authURL string) (*http.Response, string, *url.URL) {
	t.Helper()
	form := f.loginPage(t, b, authURL)
	form.Set("upstream", f.name)
	resp, err := b.PostForm(f.srv.URL+"/upstream", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	toUpstream, _ := resp.Location()
	if resp.StatusCode != http.StatusFound || toUpstream == nil || !strings.HasPrefix(toUpstream.String(), f.base+"/") {
		t.Fatalf("upstream start: %s to %v", resp.Status, toUpstream)
	}
	q := toUpstream.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" || q.Get("state") == "" || q.Get("redirect_uri") != f.srv.URL+"/upstream/callback" {
		t.Fatalf("authorization request %v", q)
	}
	_, _, back := follow(t, b, toUpstream.String())
	if back == nil || !strings.HasPrefix(back.String(), f.srv.URL+"/upstream/callback") {
		t.Fatalf("the fake sent the browser to %v", back)
	}
	return follow(t, b, back.String())
}

// signIn signs in with the upstream under test, the relying party asking
// for nonce (none when ""), and returns dirgate's ID token claims,
// verified as a relying party verifies them, and its refresh token.
func (f *upstreamUnder) signIn(t *testing.T, nonce string) (map[string]any, string) {
	t.Helper()
	ctx := context.Background()
	pkce := oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(pkce)}
	if nonce != "" {
		opts = append(opts, gooidc.Nonce(nonce))
	}
	resp, body, _ := f.via(t, browser(), f.conf.AuthCodeURL("s", opts...))
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("callback: %s %s", resp.Status, body)
	}
	tok, err := f.conf.Exchange(ctx, codeFrom(t, resp, "s"), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatal(err)
	}
	provider, err := gooidc.NewProvider(ctx, f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	idt, err := provider.Verifier(&gooidc.Config{ClientID: f.conf.ClientID}).Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	return claims, tok.RefreshToken
}

// toStrings is a JSON array of strings decoded as any.
func toStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, s := range list {
		out = append(out, s.(string))
	}
	return out
}

func TestUpstreamSignInJoinsByOID(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tenant func(*fakeentra.Tenant) string
	}{{"tenant ID", byID}, {"verified domain", byDomain}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newUpstreamFixture(t, tc.tenant, nil)
			c, _ := f.signIn(t, "rp-nonce")
			// The claims are dirgate's, from its cache: the synced
			// name and groups, the relying party's nonce.
			if c["sub"] != "u-ann" || c["name"] != "Ann Synced" || !slices.Equal(toStrings(c["groups"]), []string{"staff"}) || c["nonce"] != "rp-nonce" {
				t.Fatalf("id token %v", c)
			}
		})
	}
}

func TestUpstreamSignInRefusesInactiveAccounts(t *testing.T) {
	f := newUpstreamFixture(t, byID, nil)
	authURL := f.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	for _, tc := range []struct{ name, user string }{
		{"disabled by the sync", "u-bob"},
		{"never synced, though named like a synced account", "u-eve"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.ten.SignInAs(tc.user)
			resp, body, _ := f.via(t, browser(), authURL)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "disabled or not available here") {
				t.Fatalf("%s: %s", resp.Status, body)
			}
		})
	}
}

func TestUpstreamRefreshStopsWhenSyncDisables(t *testing.T) {
	f := newUpstreamFixture(t, byID, nil)
	_, refresh := f.signIn(t, "")
	f.putM365(t, true)
	_, err := f.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: refresh}).Token()
	if err == nil || !strings.Contains(err.Error(), "no longer active") {
		t.Fatalf("refresh after the sync disabled ann: %v", err)
	}
}

func TestUpstreamIDTokenChecks(t *testing.T) {
	f := newUpstreamFixture(t, byID, nil)
	authURL := f.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	for _, tc := range []struct {
		name   string
		tamper func(c map[string]any)
		forge  bool
	}{
		{"wrong issuer", func(c map[string]any) { c["iss"] = f.ten.AuthorityURL() + "/00000000-0000-4000-8000-0000000000bb/v2.0" }, false},
		{"wrong audience", func(c map[string]any) { c["aud"] = "another-app" }, false},
		{"wrong nonce", func(c map[string]any) { c["nonce"] = "replayed" }, false},
		{"expired", func(c map[string]any) {
			c["iat"], c["nbf"], c["exp"] = time.Now().Add(-3*time.Hour).Unix(), time.Now().Add(-3*time.Hour).Unix(), time.Now().Add(-2*time.Hour).Unix()
		}, false},
		{"another tenant's tid", func(c map[string]any) { c["tid"] = "00000000-0000-4000-8000-0000000000bb" }, false},
		{"no oid", func(c map[string]any) { delete(c, "oid") }, false},
		{"unknown kid", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.ten.TamperIDTokens(tc.tamper)
			f.ten.SignWithUnpublishedKey(tc.forge)
			defer f.ten.TamperIDTokens(nil)
			defer f.ten.SignWithUnpublishedKey(false)
			resp, body, _ := f.via(t, browser(), authURL)
			if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "Sign-in with Microsoft failed") {
				t.Fatalf("%s: %s", resp.Status, body)
			}
		})
	}
	// The same flow untampered signs in, so each refusal above is the
	// check's.
	if resp, body, _ := f.via(t, browser(), authURL); resp.StatusCode != http.StatusFound {
		t.Fatalf("untampered: %s %s", resp.Status, body)
	}
}

func TestUpstreamErrorShownOnLoginPage(t *testing.T) {
	f := newUpstreamFixture(t, byID, nil)
	f.ten.FailSignIn("interaction_required", 50076, "Due to a configuration change made by your administrator, you must use multi-factor authentication.")
	resp, body, _ := f.via(t, browser(), f.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Microsoft did not sign you in: described interaction_required AADSTS50076:") ||
		!strings.Contains(body, `name="password"`) {
		t.Fatalf("%s: %s", resp.Status, body)
	}
}

func TestUpstreamCallbackState(t *testing.T) {
	f := newUpstreamFixture(t, byID, nil)
	authURL := f.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	b := browser()
	form := f.loginPage(t, b, authURL)
	form.Set("upstream", "m365")
	resp, err := b.PostForm(f.srv.URL+"/upstream", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	toMS, _ := resp.Location()
	_, _, back := follow(t, b, toMS.String())

	// Another browser (no cookie binding the state) is refused.
	if resp, _, _ := follow(t, browser(), back.String()); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("callback in another browser: %s", resp.Status)
	}
	// A forged state is refused.
	forged := *back
	q := forged.Query()
	q.Set("state", "forged")
	forged.RawQuery = q.Encode()
	if resp, _, _ := follow(t, b, forged.String()); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("forged state: %s", resp.Status)
	}
	if resp, body, _ := follow(t, b, back.String()); resp.StatusCode != http.StatusFound {
		t.Fatalf("the right browser: %s %s", resp.Status, body)
	}
	// Single use.
	if resp, _, _ := follow(t, b, back.String()); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("replayed callback: %s", resp.Status)
	}
}

func TestUpstreamDomainSkipsPassword(t *testing.T) {
	f := newUpstreamFixture(t, byID, []string{"contoso.example"})
	b := browser()
	form := f.loginPage(t, b, f.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	form.Set("email", "Ann@Contoso.example")
	form.Set("password", "not checked")
	resp, err := b.PostForm(f.srv.URL+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := resp.Location()
	if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), f.ten.AuthorityURL()) || loc.Query().Get("login_hint") != "Ann@Contoso.example" {
		t.Fatalf("login of an upstream domain: %s to %v", resp.Status, loc)
	}
}

func TestUpstreamRefusesMultiTenantIssuer(t *testing.T) {
	f := newUpstreamFixture(t, func(*fakeentra.Tenant) string { return "organizations" }, nil)
	b := browser()
	form := f.loginPage(t, b, f.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	form.Set("upstream", "m365")
	resp, err := b.PostForm(f.srv.URL+"/upstream", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "not available") {
		t.Fatalf("%s: %s", resp.Status, body)
	}
	if !strings.Contains(f.logs.String(), "tenant-specific") {
		t.Errorf("log does not say why: %s", f.logs.String())
	}
}
