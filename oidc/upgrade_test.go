package oidc

import (
	"slices"
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/state/statetest"
)

// TestUpgradeKeepsKeysAndRefreshTokens: a provider opened on a cache written
// by the release before the state stores signs with the same keys and
// accepts the refresh tokens that release issued.
func TestUpgradeKeepsKeysAndRefreshTokens(t *testing.T) {
	dir, r0 := statetest.OpenRelease0(t)
	s, err := cache.Open(dir, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := New(Config{Issuer: "https://id.example.com", KeyRotation: 100 * 365 * 24 * time.Hour, IDTokenTTL: time.Hour,
		AccessTokenTTL: time.Hour, RefreshTokenTTL: 24 * time.Hour, CodeTTL: time.Minute}, s, s.States(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range p.keys.jwks().Keys {
		kids = append(kids, k.KeyID+"/"+k.Algorithm)
	}
	if !slices.Equal(kids, r0.Kids) {
		t.Errorf("published keys %v, want the stored %v", kids, r0.Kids)
	}
	g, use, err := p.grants.use(t.Context(), r0.Live, "app")
	if err != nil || use != refreshLive || g.ID != "u-1" || g.Connector != "corp" || !slices.Contains(g.Scope, "offline_access") {
		t.Errorf("stored refresh token: %+v, %v, %v; want it live for corp/u-1", g, use, err)
	}
}
