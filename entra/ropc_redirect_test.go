package entra

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestPasswordGrantFollowsNoRedirect: whatever client the caller passes,
// a redirecting token endpoint gets no password re-posted to the
// Location's host, and the check fails as no usable answer.
func TestPasswordGrantFollowsNoRedirect(t *testing.T) {
	for _, hc := range []*http.Client{nil, {}} {
		for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
			var stolen atomic.Int32
			evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				stolen.Add(1)
				_, _ = w.Write([]byte(`{"access_token":"x","token_type":"Bearer"}`))
			}))
			authority := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, evil.URL+"/token", status)
			}))
			g := &PasswordGrant{TokenURL: authority.URL + "/t/oauth2/v2.0/token", ClientID: "app", HTTP: hc}
			err := g.Check(context.Background(), "ann@contoso.example", "Ann-Passw0rd")
			if stolen.Load() != 0 || !errors.Is(err, ErrPasswordGrant) {
				t.Errorf("HTTP %d (client %v): the Location's host got %d requests; err = %v, want ErrPasswordGrant",
					status, hc, stolen.Load(), err)
			}
			authority.Close()
			evil.Close()
		}
	}
}
