package cloudapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/dirgate/dirgate/clock"
)

// TestTokenCacheRenewsByItsClock: a token is reused until it nears expiry
// by the cache's clock (not the wall clock), and one the API refuses with
// 401 is replaced once.
func TestTokenCacheRenewsByItsClock(t *testing.T) {
	clk := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	fetched := 0
	tc := &TokenCache{Clock: clk, Fetch: func() (*oauth2.Token, error) {
		fetched++
		tok := (&oauth2.Token{AccessToken: fmt.Sprint("t", fetched)}).WithExtra(map[string]any{"expires_in": float64(3600)})
		ExpiryFromNow(tok, clk.Now())
		return tok, nil
	}}
	get := func() string {
		tok, err := tc.Token()
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	if a, b := get(), get(); a != "t1" || b != "t1" {
		t.Fatalf("tokens %s %s, want t1 reused", a, b)
	}
	clk.Advance(time.Hour - ExpiryMargin + time.Second)
	if got := get(); got != "t2" {
		t.Fatalf("after nearing expiry: %s, want t2", got)
	}

	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("Authorization"))
		if len(seen) == 1 {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	resp, err := tc.AuthorizedClient(srv.Client(), srv.URL).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(seen) != 2 || seen[0] != "Bearer t2" || seen[1] != "Bearer t3" {
		t.Errorf("status %d, authorizations %v; want t2 refused, then t3", resp.StatusCode, seen)
	}
}
