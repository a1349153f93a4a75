package oidc

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// exchangeAndVerify redeems code for the fixture's confidential client on
// the provider the fixture serves, and verifies the ID token as a relying
// party does (go-oidc: signature by the JWKS, issuer, audience, expiry,
// nonce).
func (f *fixture) exchangeAndVerify(t *testing.T, code, pkce, nonce string) {
	t.Helper()
	ctx := context.Background()
	tok, err := f.conf.Exchange(ctx, code, oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	rp, err := gooidc.NewProvider(ctx, f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.Verifier(&gooidc.Config{ClientID: f.conf.ClientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	if idt.Nonce != nonce {
		t.Errorf("ID token nonce %q, want %q", idt.Nonce, nonce)
	}
}

// TestSignInAcrossReplicas: the login page served by one replica is
// posted to another, which ends the sign-in with a code; the code is
// redeemed on the first. The same form posted again, to either replica, is
// refused: a pending request ends once.
func TestSignInAcrossReplicas(t *testing.T) {
	f := newFixture(t)
	a, b, _ := f.replicas(t)
	pkce := oauth2.GenerateVerifier()
	br := browser()
	form, _ := f.openLogin(t, br, f.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(pkce), gooidc.Nonce("n")))
	form.Set("email", "alice@x.test")
	form.Set("password", "pw")
	f.live.Store(b)
	resp, body := f.postLogin(t, br, form)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login form posted to the other replica: %s\n%s", resp.Status, body)
	}
	code := codeFrom(t, resp, "s")
	for _, p := range []*Provider{a, b} {
		f.live.Store(p)
		if resp, body := f.postLogin(t, br, form); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Sign-in expired") {
			t.Errorf("the ended request posted again: %s\n%s", resp.Status, body)
		}
	}
	f.live.Store(a)
	f.exchangeAndVerify(t, code, pkce, "n")
}

// TestUpstreamSignInAcrossReplicas: "Sign in with Microsoft" started on
// one replica comes back from Microsoft to the other, which ends it (it
// discovers the upstream then); the code is redeemed on the first. The
// callback presented again, with its cookie, to either replica is refused.
func TestUpstreamSignInAcrossReplicas(t *testing.T) {
	f := newUpstreamFixture(t, byID, nil)
	a, b, _ := f.replicas(t)
	pkce := oauth2.GenerateVerifier()
	br := browser()
	form := f.loginPage(t, br, f.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(pkce), gooidc.Nonce("n")))
	form.Set("upstream", f.name)
	resp, err := br.PostForm(f.srv.URL+"/upstream", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	toMS, err := resp.Location()
	if err != nil {
		t.Fatalf("upstream start: %s, %v", resp.Status, err)
	}
	_, _, back := follow(t, br, toMS.String())
	if back == nil {
		t.Fatal("the upstream did not send the browser back")
	}
	state := back.Query().Get("state")
	f.live.Store(b)
	resp, body, _ := follow(t, br, back.String())
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("callback on the other replica: %s\n%s", resp.Status, body)
	}
	code := codeFrom(t, resp, "s")
	for _, p := range []*Provider{a, b} {
		f.live.Store(p)
		// The browser dropped its cookie; a replay carries it anyway, so
		// that only the store can refuse it.
		replay := browser()
		u, _ := url.Parse(f.srv.URL + "/upstream/callback")
		replay.Jar.SetCookies(u, []*http.Cookie{{Name: upstreamCookie, Value: state}})
		if resp, body, _ := follow(t, replay, back.String()); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Sign-in expired") {
			t.Errorf("the callback presented again: %s\n%s", resp.Status, body)
		}
	}
	f.live.Store(a)
	f.exchangeAndVerify(t, code, pkce, "n")
}

// TestLoginFormAgainAcrossReplicas: a login form refused (wrong password,
// empty field) shows the form again with its pending request, which goes
// on on either replica: the same form posted with the right password ends
// it with a code, once.
func TestLoginFormAgainAcrossReplicas(t *testing.T) {
	f := newFixture(t)
	a, b, _ := f.replicas(t)
	br := browser()
	form, _ := f.openLogin(t, br, f.conf.AuthCodeURL("s"))
	for i, s := range []struct {
		on       *Provider
		password string
		status   int
	}{
		{a, "wrong", http.StatusUnauthorized},
		{b, "", http.StatusBadRequest},
		{a, "wrong", http.StatusUnauthorized},
		{b, "pw", http.StatusFound},
		{a, "pw", http.StatusBadRequest},
	} {
		f.live.Store(s.on)
		form.Set("email", "alice@x.test")
		form.Set("password", s.password)
		resp, body := f.postLogin(t, br, form)
		if resp.StatusCode != s.status {
			t.Fatalf("post %d: %s, want %d\n%s", i, resp.Status, s.status, body)
		}
		if s.status == http.StatusFound {
			f.exchangeAndVerify(t, codeFrom(t, resp, "s"), "", "")
		}
	}
}
