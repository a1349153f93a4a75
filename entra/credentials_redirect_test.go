package entra

import (
	"net/http"
	"testing"

	"github.com/dirgate/dirgate/clock"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/internal/testnet"
)

// TestTokenRequestFollowsNoRedirect: a token endpoint answering with a
// redirect gets no second request to its Location, which would carry the
// client secret.
func TestTokenRequestFollowsNoRedirect(t *testing.T) {
	testnet.CheckNoRedirect(t, func(authority string) error {
		e := &config.Entra{Tenant: "contoso.onmicrosoft.com", ClientID: "app", ClientSecret: "s3cret",
			AuthorityURL: authority, GraphURL: "https://graph.example.invalid"}
		ts, err := NewTokenSource(e, &http.Client{}, clock.Real)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ts.Token()
		return err
	})
}
