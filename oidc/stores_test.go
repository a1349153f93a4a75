package oidc

import (
	"errors"
	"slices"
	"testing"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/state"
)

// TestProviderKeepsStateInGivenStores: the provider keeps its signing keys
// and grants in the stores it is given, not in the directory cache's own,
// so another implementation plugs in where the provider is built.
func TestProviderKeepsStateInGivenStores(t *testing.T) {
	f := newFixture(t)
	other, err := cache.Open(t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	keys := &memKeys{}
	given := state.Stores{Grants: other.States().Grants, Keys: keys, SignIns: state.NewMemorySignIns()}
	p, err := New(f.p.cfg, f.store, given, f.p.signIn, f.p.log)
	if err != nil {
		t.Fatal(err)
	}
	f.p = p
	f.live.Store(p)

	var served []string
	for _, k := range slices.Backward(p.keys.jwks().Keys) {
		served = append(served, k.KeyID)
	}
	if kids := published(t, keys); len(kids) == 0 || !slices.Equal(kids, served) {
		t.Errorf("the given keys store holds %v, the provider serves %v", kids, served)
	}
	tok := f.signInAs(t, f.conf)
	if _, err := given.Grants.Refresh(t.Context(), hashToken(tok.RefreshToken), p.now()); err != nil {
		t.Errorf("the refresh token is not in the given grants store: %v", err)
	}
	if _, err := f.store.States().Grants.Refresh(t.Context(), hashToken(tok.RefreshToken), p.now()); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("the refresh token is in the directory cache's grants store: %v", err)
	}

	for name, st := range map[string]state.Stores{
		"grants":   {Keys: keys, SignIns: given.SignIns},
		"sign-ins": {Keys: keys, Grants: given.Grants},
	} {
		if _, err := New(f.p.cfg, f.store, st, f.p.signIn, f.p.log); err == nil {
			t.Errorf("a provider was built without a %s store", name)
		}
	}
}
