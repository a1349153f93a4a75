package oidc

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/dirgate/dirgate/internal/browsertest"
)

// TestUpstreamSignInBrowser signs in with "Sign in with Microsoft" in
// headless Chromium: ann reaches the application; bob, whom Microsoft
// accepts but the sync disabled, stays on dirgate's login page with the
// reason.
func TestUpstreamSignInBrowser(t *testing.T) {
	browserSignIn(t, func(app Client) (*upstreamUnder, func(string)) {
		f := newUpstreamFixture(t, byDomain, nil, app)
		return &f.upstreamUnder, f.ten.SignInAs
	}, "u-ann", "u-bob")
}

// TestGoogleSignInBrowser is the same with "Sign in with Google": bob,
// whom Google accepts but the sync saw suspended, is refused.
func TestGoogleSignInBrowser(t *testing.T) {
	browserSignIn(t, func(app Client) (*upstreamUnder, func(string)) {
		f := newGoogleFixture(t, app)
		return &f.upstreamUnder, f.cust.SignInAs
	}, gAnn, gBob)
}

// browserSignIn presses the upstream's button in headless Chromium:
// signInAs(ok) reaches the application, which redeems dirgate's code for
// an ID token of ok; signInAs(refused), whom the upstream accepts but the
// sync disabled, stays on dirgate's login page with the reason. fixture
// makes the provider with the application as an extra client.
func browserSignIn(t *testing.T, fixture func(app Client) (*upstreamUnder, func(user string)), ok, refused string) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>App</title><p id="code">%s</p>`, html.EscapeString(r.URL.Query().Get("code")))
	}))
	t.Cleanup(app.Close)
	f, signInAs := fixture(Client{ID: "web", Name: "Web App", RedirectURIs: []string{app.URL + "/cb"},
		VerifySecret: func(s string) bool { return s == secret }})
	conf := &oauth2.Config{ClientID: "web", ClientSecret: secret, RedirectURL: app.URL + "/cb", Scopes: []string{"openid", "profile", "groups"},
		Endpoint: oauth2.Endpoint{AuthURL: f.srv.URL + "/authorize", TokenURL: f.srv.URL + "/token", AuthStyle: oauth2.AuthStyleInParams}}
	ctx := browsertest.New(t, 90*time.Second)
	t.Cleanup(func() {
		if t.Failed() {
			browsertest.Screenshot(t, ctx, "oidc-upstream-"+f.name)
		}
	})

	signInAs(ok)
	var code string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(conf.AuthCodeURL("st", gooidc.Nonce("n"))),
		chromedp.WaitVisible(`button.upstream`, chromedp.ByQuery),
		chromedp.Click(`button.upstream`, chromedp.ByQuery),
		chromedp.WaitVisible(`#code`, chromedp.ByQuery),
		chromedp.Text(`#code`, &code, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	tok, err := conf.Exchange(context.Background(), strings.TrimSpace(code))
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Sub    string   `json:"sub"`
		Groups []string `json:"groups"`
	}
	if err := f.p.keys.verify(tok.Extra("id_token").(string), &claims); err != nil || claims.Sub != ok || len(claims.Groups) != 1 {
		t.Fatalf("id token %+v: %v", claims, err)
	}

	signInAs(refused)
	var msg string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(conf.AuthCodeURL("st2", gooidc.Nonce("n2"))),
		chromedp.WaitVisible(`button.upstream`, chromedp.ByQuery),
		chromedp.Click(`button.upstream`, chromedp.ByQuery),
		chromedp.WaitVisible(`#error .error`, chromedp.ByQuery),
		chromedp.Text(`#error .error`, &msg, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, f.label+" signed you in, but your account is disabled or not available here") {
		t.Fatalf("login page says %q", msg)
	}
}
