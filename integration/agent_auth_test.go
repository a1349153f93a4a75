package integration

import (
	"testing"

	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/agentsource"
	"github.com/dirgate/dirgate/sync/agentsource/agenttest"
)

// TestAgentChecksTyped: password checks of a via: agent connector go to a
// real agent, which binds to the real AD DC; each typed failure of the DC
// reaches authn with its reason, and the sync through the same agent gives
// the accounts the logins resolve to.
func TestAgentChecksTyped(t *testing.T) {
	e := loadAD(t)
	direct, ok := parseConfig(t, withRoot(adConnector(t, e, "ad", "SYNC"), "ad", e.Get(t, "DIRGATE_AD_PEOPLE_DN"))).Connector("contract")
	if !ok {
		t.Fatal("no connector")
	}
	h := agenttest.NewHub(t)
	h.StartAgent(t, direct)
	hubSide := config.Connector{Name: direct.Name, Type: direct.Type, Via: config.ViaAgent, RootDN: direct.RootDN,
		Safety: direct.Safety, FullSyncInterval: direct.FullSyncInterval}
	store, err := cache.Open(t.TempDir(), cache.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	src, err := agentsource.New(h.Hub, &hubSide)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dirsync.New(store, store.States(), nil).Run(t.Context(), &hubSide, src, dirsync.Options{Mode: dirsync.ModeFull}); err != nil {
		t.Fatalf("sync through the agent: %v", err)
	}
	checker := agentsource.Checker{Hub: h.Hub}
	a, err := authn.New(&config.Config{Connectors: []config.Connector{hubSide}}, store, store.States(), nil, authn.WithAgents(checker))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	pw := e.Get(t, "DIRGATE_AD_USER_PW")
	for _, tc := range []struct {
		login, password string
		want            authn.Reason // -1: success
	}{
		{e.Get(t, "DIRGATE_AD_JDOE_UPN"), pw, -1},
		{e.Get(t, "DIRGATE_AD_JDOE_UPN"), "wrong", authn.ReasonInvalidCredentials},
		{e.Get(t, "DIRGATE_AD_MUSTCHANGE_UPN"), pw, authn.ReasonMustChangePassword},
		{e.Get(t, "DIRGATE_AD_EXPIRED_UPN"), pw, authn.ReasonAccountExpired},
	} {
		id, err := a.Login(t.Context(), authn.Attempt{Login: tc.login, Password: tc.password, Protocol: "ldap"})
		switch {
		case tc.want < 0 && (err != nil || id.Host == ""):
			t.Errorf("login %s: %+v, %v; want success answered by the agent's DC", tc.login, id, err)
		case tc.want >= 0 && authn.ReasonOf(err) != tc.want:
			t.Errorf("login %s: %v (%s), want %s", tc.login, err, authn.ReasonOf(err), tc.want)
		}
	}

	// The cache refuses a disabled account before any check; the agent's
	// own answer for it is checked directly.
	disabled, err := a.Resolve(t.Context(), e.Get(t, "DIRGATE_AD_DISABLED_UPN"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checker.Check(t.Context(), hubSide.Name, disabled, pw); authn.ReasonOf(err) != authn.ReasonDisabled {
		t.Errorf("check of the disabled account: %v (%s), want %s", err, authn.ReasonOf(err), authn.ReasonDisabled)
	}
}
