package google

import (
	"net/http"
	"testing"

	"github.com/dirgate/dirgate/clock"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/internal/fakegoogle"
	"github.com/dirgate/dirgate/internal/testnet"
)

// TestTokenRequestFollowsNoRedirect: a token endpoint answering with a
// redirect gets no second request to its Location, which would carry the
// signed assertion.
func TestTokenRequestFollowsNoRedirect(t *testing.T) {
	key, _ := fakegoogle.New(t).ServiceAccountKey(t, Scopes...)
	testnet.CheckNoRedirect(t, func(base string) error {
		g := &config.Google{ServiceAccountKey: config.Secret(key), Admin: "admin@example.test", TokenURL: base + "/token"}
		_, err := NewTokenCache(g, &http.Client{}, clock.Real).Token()
		return err
	})
}
