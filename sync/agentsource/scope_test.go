package agentsource

import (
	"errors"
	"testing"
	"time"

	"github.com/dirgate/dirgate/agent/hub"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/agentsource/agenttest"
)

// TestAgentScope: through a real hub and agents, the source's scope is
// the fingerprint of the agent's own connector settings (agent.yaml,
// which the hub's via: agent connector does not hold), it changes when
// the agent's filter does, and two connected agents that disagree make
// the engine's run and the source's reads fail with ErrScopeMismatch.
func TestAgentScope(t *testing.T) {
	agentConn := func(filter string) *config.Connector {
		return &config.Connector{Name: "corp", Type: "openldap", Host: "127.0.0.1", Port: 9, Encryption: config.EncryptionNone,
			RootDN: "dc=corp,dc=example", UserFilter: filter, GroupFilter: "(objectClass=groupOfNames)", PageSize: 100, Timeout: config.Duration(time.Minute)}
	}
	wide, narrow := agentConn("(objectClass=inetOrgPerson)"), agentConn("(&(objectClass=inetOrgPerson)(ou=staff))")
	h := agenttest.NewHub(t)
	src, err := New(h.Hub, corp)
	if err != nil {
		t.Fatal(err)
	}
	a := h.StartAgent(t, wide)
	if got, err := src.Scope(); err != nil || got != dirsync.ScopeOf(wide) {
		t.Fatalf("scope %q, %v; want the agent's %q", got, err, dirsync.ScopeOf(wide))
	}

	h.StartAgent(t, narrow)
	_, err = src.Scope()
	var mismatch *hub.ScopeMismatchError
	if !errors.As(err, &mismatch) || len(mismatch.Agents) != 2 {
		t.Fatalf("two agents with different filters: scope error %v", err)
	}
	if _, err := src.Full(t.Context(), func(*cache.Entry) error { return nil }); !errors.Is(err, hub.ErrScopeMismatch) {
		t.Fatalf("full read with agents that disagree: %v", err)
	}
	store, err := cache.Open(t.TempDir(), cache.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := dirsync.New(store, store.States(), nil).Run(t.Context(), corp, src, dirsync.Options{}); !errors.Is(err, hub.ErrScopeMismatch) {
		t.Fatalf("sync run with agents that disagree: %v", err)
	}

	a.Stop()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if n, _ := h.Connected("corp"); n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stopped agent stayed connected")
		}
	}
	if got, err := src.Scope(); err != nil || got != dirsync.ScopeOf(narrow) || got == dirsync.ScopeOf(wide) {
		t.Fatalf("scope %q, %v after the filter changed; want %q", got, err, dirsync.ScopeOf(narrow))
	}
}
