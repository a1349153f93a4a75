package google

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/dirgate/dirgate/clock"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/internal/fakegoogle"
)

// TestTokenRequestFollowsNoRedirect: a token endpoint answering with a
// redirect gets no second request to its Location, which would carry the
// signed assertion.
func TestTokenRequestFollowsNoRedirect(t *testing.T) {
	key, _ := fakegoogle.New(t).ServiceAccountKey(t, Scopes...)
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		var stolen atomic.Int32
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			stolen.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"access_token":"x","token_type":"Bearer","expires_in":3600}`))
		}))
		token := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, evil.URL+"/token", status)
		}))
		g := &config.Google{ServiceAccountKey: config.Secret(key), Admin: "admin@example.test", TokenURL: token.URL + "/token"}
		if _, err := NewTokenCache(g, &http.Client{}, clock.Real).Token(); err == nil || stolen.Load() != 0 {
			t.Errorf("HTTP %d: err %v, and the Location's host got %d requests", status, err, stolen.Load())
		}
		token.Close()
		evil.Close()
	}
}
