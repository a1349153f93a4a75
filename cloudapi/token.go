package cloudapi

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/dirgate/dirgate/clock"
)

// ExpiryMargin renews an access token this long before it expires, so
// that no request leaves with a token about to expire.
const ExpiryMargin = time.Minute

// TokenCache keeps the current access token of a cloud API until it nears
// expiry by its clock, and gets a new one with Fetch. x/oauth2's own
// ReuseTokenSource checks expiry by the wall clock, which a test's fake
// clock cannot move; Fetch should set the token's Expiry with
// ExpiryFromNow for the same reason.
type TokenCache struct {
	// Fetch gets a new token from the token endpoint.
	Fetch func() (*oauth2.Token, error)
	// Clock is read for expiry. Default clock.Real.
	Clock clock.Clock

	mu    sync.Mutex
	token *oauth2.Token
}

// Token returns the current token, or gets a new one.
func (c *TokenCache) Token() (*oauth2.Token, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	clk := c.Clock
	if clk == nil {
		clk = clock.Real
	}
	if t := c.token; t != nil && clk.Now().Add(ExpiryMargin).Before(t.Expiry) {
		return t, nil
	}
	t, err := c.Fetch()
	if err != nil {
		return nil, err
	}
	c.token = t
	return t, nil
}

// Invalidate drops the current token, if it is still tok, so that the
// next request gets a new one.
func (c *TokenCache) Invalidate(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != nil && c.token.AccessToken == tok {
		c.token = nil
	}
}

// ExpiryFromNow sets t's Expiry from the token endpoint's expires_in,
// counted from issued (read from the caller's clock before the request):
// x/oauth2 sets Expiry by the wall clock.
func ExpiryFromNow(t *oauth2.Token, issued time.Time) {
	if in, ok := t.Extra("expires_in").(float64); ok && in > 0 {
		t.Expiry = issued.Add(time.Duration(in) * time.Second)
	}
}

// AuthorizedClient returns a client that sends requests through hc with
// the cache's bearer token and, when the API refuses a token as invalid
// or expired (its clock may run ahead of ours), gets a new one and sends
// the request once more.
//
// The token goes only to the scheme and host of apiBases (the API's base
// URLs): a request for any other origin fails with ErrForeignHost without
// being sent, so a next-page link or stored cursor naming another host
// cannot carry the token (or the link's state tokens) there. With no base,
// no request is sent. The client follows no redirect (RefuseRedirects):
// the transport adds the token to every hop, which Go's rule of dropping
// credentials on a redirect to another host does not cover.
func (c *TokenCache) AuthorizedClient(hc *http.Client, apiBases ...string) *http.Client {
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	b := &bearer{tokens: c, base: base, origins: map[string]bool{}}
	for _, u := range apiBases {
		if o := Origin(u); o != "" {
			b.origins[o] = true
		}
	}
	return &http.Client{Timeout: hc.Timeout, Transport: b, CheckRedirect: RefuseRedirects}
}

// ErrForeignHost is a request the authorized client refused to send: its
// URL is not on the API's scheme and host.
var ErrForeignHost = errors.New("refusing to send the API token to a host other than the API's")

type bearer struct {
	tokens  *TokenCache
	base    http.RoundTripper
	origins map[string]bool // of the API bases, as Origin gives them
}

func (b *bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	if o := Origin(req.URL.String()); !b.origins[o] {
		if req.Body != nil {
			_ = req.Body.Close() // a RoundTripper closes the body, even on error
		}
		return nil, fmt.Errorf("%w: %s", ErrForeignHost, cmp.Or(o, "a URL without an http(s) scheme and host"))
	}
	for attempt := 0; ; attempt++ {
		tok, err := b.tokens.Token()
		if err != nil {
			return nil, err
		}
		r := req.Clone(req.Context())
		tok.SetAuthHeader(r)
		resp, err := b.base.RoundTrip(r)
		if err != nil || resp.StatusCode != http.StatusUnauthorized || attempt > 0 {
			return resp, err
		}
		_ = resp.Body.Close()
		b.tokens.Invalidate(tok.AccessToken)
	}
}
