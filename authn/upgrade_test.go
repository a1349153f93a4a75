package authn

import (
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/state/statetest"
)

// TestUpgradeKeepsOfflineVerifier: an offline verifier stored by the
// release before the state stores still verifies its password.
func TestUpgradeKeepsOfflineVerifier(t *testing.T) {
	dir, _ := statetest.OpenRelease0(t)
	s, err := cache.Open(dir, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg := config.OfflineVerifier{Enabled: true, MaxAge: config.Duration(100 * 365 * 24 * time.Hour)}
	o := newOffline(cfg, s.States().Verifiers, map[string]string{statetest.Release0Connector: config.TypeOpenLDAP}, time.Now, nil)
	e := &cache.Entry{Connector: statetest.Release0Connector, ID: statetest.Release0Account, Kind: cache.KindUser,
		Attrs: []cache.Attr{{Name: "pwdChangedTime", Values: []string{"20250601120000Z"}}}}
	for pw, want := range map[string]offlineResult{statetest.Release0Password: offlineMatch, "wrong": offlineMismatch} {
		if got, why := o.verify(e, pw); got != want {
			t.Errorf("verify(%q) = %v (%s), want %v", pw, got, why, want)
		}
	}
}
