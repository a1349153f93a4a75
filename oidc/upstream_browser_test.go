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
	if testing.Short() {
		t.Skip("starts a browser")
	}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>App</title><p id="code">%s</p>`, html.EscapeString(r.URL.Query().Get("code")))
	}))
	t.Cleanup(app.Close)
	f := newUpstreamFixture(t, byDomain, nil, Client{ID: "web", Name: "Web App", RedirectURIs: []string{app.URL + "/cb"},
		VerifySecret: func(s string) bool { return s == secret }})
	conf := &oauth2.Config{ClientID: "web", ClientSecret: secret, RedirectURL: app.URL + "/cb", Scopes: []string{"openid", "profile", "groups"},
		Endpoint: oauth2.Endpoint{AuthURL: f.srv.URL + "/authorize", TokenURL: f.srv.URL + "/token", AuthStyle: oauth2.AuthStyleInParams}}
	ctx := browsertest.New(t, 90*time.Second)
	t.Cleanup(func() {
		if t.Failed() {
			browsertest.Screenshot(t, ctx, "oidc-upstream")
		}
	})

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
	if err := f.p.keys.verify(tok.Extra("id_token").(string), &claims); err != nil || claims.Sub != "u-ann" || len(claims.Groups) != 1 {
		t.Fatalf("id token %+v: %v", claims, err)
	}

	f.ten.SignInAs("u-bob")
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
	if !strings.Contains(msg, "Microsoft signed you in, but your account is disabled or not available here") {
		t.Fatalf("login page says %q", msg)
	}
}
