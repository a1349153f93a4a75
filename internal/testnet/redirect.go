package testnet

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// CheckNoRedirect calls request with the base URL of a server that
// answers every request with a redirect (302, 307 and 308 in turn) to
// another server, which would answer a token request. It fails t unless
// each call fails and the other server gets no request: a client that
// followed the redirect would send its credentials to the Location.
func CheckNoRedirect(t testing.TB, request func(baseURL string) error) {
	t.Helper()
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		var stolen atomic.Int32
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			stolen.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"access_token":"x","token_type":"Bearer","expires_in":3600}`))
		}))
		redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, evil.URL+r.URL.Path, status)
		}))
		if err := request(redirect.URL); err == nil || stolen.Load() != 0 {
			t.Errorf("HTTP %d: err %v, and the Location's host got %d requests", status, err, stolen.Load())
		}
		redirect.Close()
		evil.Close()
	}
}
