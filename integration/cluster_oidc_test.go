package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// rpClient is the relying party of the cluster tests, built on go-oidc and
// x/oauth2: it discovers the provider through the cluster's issuer (the
// load balancer) and talks to one replica or another directly, as requests
// behind a balancer land on any of them.
type rpClient struct {
	c        *cluster
	provider *gooidc.Provider
}

func newRP(t testing.TB, c *cluster) *rpClient {
	t.Helper()
	p, err := gooidc.NewProvider(context.Background(), c.lb.URL)
	if err != nil {
		t.Fatalf("discovery through the issuer: %v", err)
	}
	return &rpClient{c: c, provider: p}
}

// at returns the client's configuration with the endpoints on replica r.
func (rp *rpClient) at(r *replica) *oauth2.Config {
	on := func(raw string) string {
		u, _ := url.Parse(raw)
		u.Host = r.webAddr
		return u.String()
	}
	ep := rp.provider.Endpoint()
	return &oauth2.Config{ClientID: clusterClientID, ClientSecret: clusterClientPW, RedirectURL: clusterRedirect,
		Endpoint: oauth2.Endpoint{AuthURL: on(ep.AuthURL), TokenURL: on(ep.TokenURL), AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:   []string{"openid", "email", "profile", "offline_access"}}
}

var hiddenField = regexp.MustCompile(`name="(request|csrf)" value="([^"]+)"`)

// loginStatus is how the login form ended: the redirect's code, or the
// status and page of a refusal.
type loginStatus struct {
	code   string
	status int
	page   string
}

// login runs the authorization request and the login form on replica r
// as a browser (cookies, no redirects followed). verifier is the PKCE
// verifier to redeem the code with.
func (rp *rpClient) login(r *replica, user, password, verifier string) (loginStatus, error) {
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	const state = "cluster-state"
	resp, err := b.Get(rp.at(r).AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), gooidc.Nonce("n")))
	if err != nil {
		return loginStatus{}, err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return loginStatus{status: resp.StatusCode, page: string(page)}, nil
	}
	form := url.Values{"email": {user}, "password": {password}}
	for _, m := range hiddenField.FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], m[2])
	}
	resp, err = b.PostForm("http://"+r.webAddr+"/login", form)
	if err != nil {
		return loginStatus{}, err
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || loc.Query().Get("state") != state || loc.Query().Get("code") == "" {
		return loginStatus{status: resp.StatusCode, page: string(page) + resp.Header.Get("Location")}, nil
	}
	return loginStatus{code: loc.Query().Get("code"), status: resp.StatusCode}, nil
}

// signIn signs user in on replica r and redeems the code there; it
// verifies the ID token through the issuer's JWKS.
func (rp *rpClient) signIn(t testing.TB, r *replica, user, password string) *oauth2.Token {
	t.Helper()
	v := oauth2.GenerateVerifier()
	st, err := rp.login(r, user, password, v)
	if err != nil || st.code == "" {
		t.Fatalf("sign-in of %s on %s: %v, status %d:\n%s", user, r.name, err, st.status, st.page)
	}
	tok, err := rp.at(r).Exchange(context.Background(), st.code, oauth2.VerifierOption(v))
	if err != nil {
		t.Fatalf("code redemption on %s: %v", r.name, err)
	}
	rp.verify(t, tok)
	return tok
}

// verify checks the token's ID token signature and audience.
func (rp *rpClient) verify(t testing.TB, tok *oauth2.Token) {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	if _, err := rp.provider.Verifier(&gooidc.Config{ClientID: clusterClientID}).Verify(context.Background(), raw); err != nil {
		t.Fatalf("ID token: %v", err)
	}
}

// refresh redeems a refresh token on replica r.
func (rp *rpClient) refresh(r *replica, refreshToken string) (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return rp.at(r).TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
}

// oauthError is the OAuth error code of a token endpoint answer ("" when
// err is no such answer).
func oauthError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return re.ErrorCode
		}
		return fmt.Sprintf("HTTP %d", re.Response.StatusCode)
	}
	return ""
}

// race runs f on every replica at the same instant and returns the
// results in the replicas' order.
func race[T any](replicas []*replica, f func(r *replica) (T, error)) ([]T, []error) {
	out, errs := make([]T, len(replicas)), make([]error, len(replicas))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, r := range replicas {
		wg.Go(func() {
			<-start
			out[i], errs[i] = f(r)
		})
	}
	close(start)
	wg.Wait()
	return out, errs
}

// oneWinner checks that exactly one of errs is nil and that the others are
// invalid_grant answers; it returns the winner's index.
func oneWinner(t testing.TB, what string, replicas []*replica, errs []error) int {
	t.Helper()
	winner := -1
	var got []string
	for i, err := range errs {
		got = append(got, fmt.Sprintf("%s: %v", replicas[i].name, err))
		switch {
		case err == nil && winner < 0:
			winner = i
		case err == nil:
			t.Fatalf("%s: two replicas accepted it: %s", what, strings.Join(got, "; "))
		case oauthError(err) != "invalid_grant":
			t.Fatalf("%s: a loser must get invalid_grant: %s", what, strings.Join(got, "; "))
		}
	}
	if winner < 0 {
		t.Fatalf("%s: no replica accepted it: %s", what, strings.Join(got, "; "))
	}
	return winner
}
