package integration

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/internal/browsertest"

	"github.com/chromedp/chromedp"
	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/oidc"
	dirsync "github.com/dirgate/dirgate/sync"
)

// relyingParty is a web application built on go-oidc + x/oauth2 that signs
// its users in through dirgate: /start begins the flow, /callback finishes
// it and shows who signed in.
type relyingParty struct {
	srv                      *httptest.Server
	issuer, clientID, secret string
}

// startRelyingParty starts the RP; configure it with its provider before
// the first /start (the provider must know the RP's callback address first).
func startRelyingParty(t *testing.T) *relyingParty {
	t.Helper()
	rp := &relyingParty{}
	mux := http.NewServeMux()
	rp.srv = httptest.NewServer(mux)
	t.Cleanup(rp.srv.Close)
	ctx := context.Background()
	var (
		provider *gooidc.Provider
		conf     *oauth2.Config
	)
	setup := func() error {
		if provider != nil {
			return nil
		}
		p, err := gooidc.NewProvider(ctx, rp.issuer)
		if err != nil {
			return err
		}
		provider = p
		conf = &oauth2.Config{ClientID: rp.clientID, ClientSecret: rp.secret, Endpoint: p.Endpoint(), RedirectURL: rp.srv.URL + "/callback",
			Scopes: []string{"openid", "email", "profile", "groups"}}
		return nil
	}
	const verifierCookie, stateCookie = "rp_pkce", "rp_state"
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) {
		if err := setup(); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		v, state := oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
		http.SetCookie(w, &http.Cookie{Name: verifierCookie, Value: v, Path: "/"})
		http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: state, Path: "/"})
		http.Redirect(w, r, conf.AuthCodeURL(state, oauth2.S256ChallengeOption(v), gooidc.Nonce(state)), http.StatusFound)
	})
	mux.HandleFunc("/callback", func(w http.ResponseWriter, r *http.Request) {
		v, err1 := r.Cookie(verifierCookie)
		st, err2 := r.Cookie(stateCookie)
		if err1 != nil || err2 != nil || r.URL.Query().Get("state") != st.Value {
			http.Error(w, "state mismatch", 400)
			return
		}
		tok, err := conf.Exchange(r.Context(), r.URL.Query().Get("code"), oauth2.VerifierOption(v.Value))
		if err != nil {
			http.Error(w, "exchange: "+err.Error(), 400)
			return
		}
		raw, _ := tok.Extra("id_token").(string)
		// RS256 only, as relying parties that know no other algorithm
		// verify: dirgate's default (OpenID Connect Core 15.1).
		idt, err := provider.Verifier(&gooidc.Config{ClientID: rp.clientID, SupportedSigningAlgs: []string{gooidc.RS256}}).Verify(r.Context(), raw)
		if err != nil || idt.Nonce != st.Value {
			http.Error(w, fmt.Sprintf("id token: %v", err), 400)
			return
		}
		var c struct {
			Email  string   `json:"email"`
			Name   string   `json:"name"`
			Groups []string `json:"groups"`
		}
		_ = idt.Claims(&c)
		fmt.Fprintf(w, "<!doctype html><title>RP</title><p id=who>signed in as %s (%s), sub %s, groups %s</p>",
			html.EscapeString(c.Email), html.EscapeString(c.Name), html.EscapeString(idt.Subject), html.EscapeString(strings.Join(c.Groups, ",")))
	})
	return rp
}

// startProvider serves dirgate's OIDC provider for gw's cache and connectors.
func startProvider(t *testing.T, gw *gateway, redirect string) (string, string) {
	t.Helper()
	auth, err := authn.New(gw.cfg, gw.store, gw.store.States(), gw.log)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	const secret = "rp-secret"
	p, err := oidc.New(oidc.Config{
		Issuer: srv.URL, KeyRotation: time.Hour, IDTokenTTL: time.Hour, AccessTokenTTL: time.Hour, RefreshTokenTTL: time.Hour, CodeTTL: time.Minute,
		Clients: []oidc.Client{{ID: "rp", Name: "Test App", RedirectURIs: []string{redirect}, VerifySecret: func(s string) bool { return s == secret }}},
	}, gw.store, gw.store.States(), func(ctx context.Context, login, password, remote string) (*cache.Entry, error) {
		id, err := auth.Login(ctx, authn.Attempt{Login: login, Password: password, Remote: remote, Protocol: "oidc"})
		if err != nil {
			return nil, err
		}
		return id.Entry, nil
	}, gw.log)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/", p)
	return srv.URL, secret
}

// browserCtx starts headless Chromium for a sign-in test.
func browserCtx(t *testing.T) context.Context { return browsertest.New(t, 60*time.Second) }

// screenshotOnFailure saves what the browser shows when the test failed.
func screenshotOnFailure(t *testing.T, ctx context.Context, name string) {
	t.Cleanup(func() {
		if t.Failed() {
			browsertest.Screenshot(t, ctx, name)
		}
	})
}

// signInWithBrowser drives the login page from the RP's /start.
func signInWithBrowser(t *testing.T, ctx context.Context, start, login, password string) (page string, err error) {
	err = chromedp.Run(ctx,
		chromedp.Navigate(start),
		chromedp.WaitVisible(`#email`, chromedp.ByQuery),
		chromedp.SetValue(`#email`, login, chromedp.ByQuery),
		chromedp.SetValue(`#password`, password, chromedp.ByQuery),
		chromedp.Click(`button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitReady(`body`, chromedp.ByQuery),
		chromedp.Sleep(200*time.Millisecond),
		chromedp.OuterHTML(`html`, &page, chromedp.ByQuery),
	)
	return page, err
}

// oidcGateway syncs gw's connector and puts an OIDC provider and a relying
// party in front of it.
func oidcGateway(t *testing.T, gw *gateway, conn string) *relyingParty {
	t.Helper()
	if _, err := gw.sync(t, conn, dirsync.Options{}); err != nil {
		t.Fatal(err)
	}
	rp := startRelyingParty(t)
	rp.issuer, rp.secret = startProvider(t, gw, rp.srv.URL+"/callback")
	rp.clientID = "rp"
	return rp
}

func TestOIDCLoginInChromiumOpenLDAP(t *testing.T) {
	e := loadEnv(t)
	gw := startGateway(t, parseConfig(t, connectorYAML(t, e, "corp", e.Get(t, "DIRGATE_OL_HOST"), "", "acknowledge_disabled_accounts: true")))
	rp := oidcGateway(t, gw, "corp")
	ctx := browserCtx(t)
	screenshotOnFailure(t, ctx, "oidc-openldap")
	pw := e.Get(t, "DIRGATE_OL_USER_PW")
	cases := []struct {
		name, login, password, want string
	}{
		{"wrong password", "user00001@example.test", "wrong", "The email address or password is not correct."},
		{"disabled account", "user00050@example.test", pw, "The email address or password is not correct."},
		{"unknown account", "nobody@example.test", pw, "The email address or password is not correct."},
		{"alias, special DN, groups", "john.doe@example.test", pw, "signed in as john.doe@example.test (Doe, John)"},
		{"primary address", "USER00001@example.test", pw, "signed in as user00001@example.test (Test User 00001)"},
	}
	for _, c := range cases {
		page, err := signInWithBrowser(t, ctx, rp.srv.URL+"/start", c.login, c.password)
		if err != nil {
			t.Fatalf("%s: browser: %v", c.name, err)
		}
		if !strings.Contains(html.UnescapeString(page), c.want) {
			t.Fatalf("%s: page does not say %q:\n%s", c.name, c.want, page)
		}
	}
	// The error is announced to assistive technology and the field is marked.
	page, _ := signInWithBrowser(t, ctx, rp.srv.URL+"/start", "user00001@example.test", "wrong")
	if !strings.Contains(page, `role="alert"`) || !strings.Contains(page, `aria-invalid="true"`) || !strings.Contains(page, `<label for="password">`) {
		t.Fatalf("login page accessibility markers missing:\n%s", page)
	}
}

// TestOIDCFlowSambaAD signs an AD user in through the login page, and shows
// the must-change-password refusal AD makes after accepting the password.
func TestOIDCFlowSambaAD(t *testing.T) {
	e := loadAD(t)
	gw := startGateway(t, parseConfig(t, adConnector(t, e, "corp", "SYNC")))
	rp := oidcGateway(t, gw, "corp")
	ctx := browserCtx(t)
	screenshotOnFailure(t, ctx, "oidc-ad")
	page, err := signInWithBrowser(t, ctx, rp.srv.URL+"/start", e.Get(t, "DIRGATE_AD_JDOE_UPN"), e.Get(t, "DIRGATE_AD_USER_PW"))
	if err != nil || !strings.Contains(html.UnescapeString(page), "signed in as jdoe@example.test") || !strings.Contains(page, "G-Leaf") {
		t.Fatalf("AD sign-in: %v\n%s", err, page)
	}
	page, err = signInWithBrowser(t, ctx, rp.srv.URL+"/start", e.Get(t, "DIRGATE_AD_MUSTCHANGE_UPN"), e.Get(t, "DIRGATE_AD_USER_PW"))
	if err != nil || !strings.Contains(page, "You must change your password") {
		t.Fatalf("must-change account: %v\n%s", err, page)
	}
}
