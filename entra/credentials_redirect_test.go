package entra

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/dirgate/dirgate/clock"
	"github.com/dirgate/dirgate/config"
)

// TestTokenRequestFollowsNoRedirect: a token endpoint answering with a
// redirect gets no second request to its Location, which would carry the
// client secret.
func TestTokenRequestFollowsNoRedirect(t *testing.T) {
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		var stolen atomic.Int32
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			stolen.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"access_token":"x","token_type":"Bearer","expires_in":3600}`))
		}))
		authority := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, evil.URL+"/token", status)
		}))
		e := &config.Entra{Tenant: "contoso.onmicrosoft.com", ClientID: "app", ClientSecret: "s3cret",
			AuthorityURL: authority.URL, GraphURL: "https://graph.example.invalid"}
		ts, err := NewTokenSource(e, &http.Client{}, clock.Real)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ts.Token(); err == nil || stolen.Load() != 0 {
			t.Errorf("HTTP %d: err %v, and the Location's host got %d requests", status, err, stolen.Load())
		}
		authority.Close()
		evil.Close()
	}
}
