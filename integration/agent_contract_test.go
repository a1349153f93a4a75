package integration

import (
	"testing"

	"github.com/dirgate/dirgate/config"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/agentsource"
	"github.com/dirgate/dirgate/sync/agentsource/agenttest"
	"github.com/dirgate/dirgate/sync/sourcetest"
)

// agentHarness runs the source contract through a sync agent: the suite's
// engine reads with agentsource over a real hub, and a real agent in this
// process reads the real upstream with the scope's connector settings.
type agentHarness struct{ *ldapHarness }

func (h agentHarness) Scope(t *testing.T) sourcetest.Scope {
	return &agentScope{ldapScope: h.ldapHarness.Scope(t).(*ldapScope)}
}

// agentScope starts one hub and one agent for the scope at its first
// Source; each Source is a fresh hub-side source on that hub, as a hub
// restarted with its agent reconnected would make. Its containers add
// entries only: the suite reads through the scope's own Source.
type agentScope struct {
	*ldapScope
	hub *agenttest.Hub
}

func (s *agentScope) Source(t *testing.T, c *config.Connector) dirsync.Source {
	t.Helper()
	if s.hub == nil {
		s.hub = agenttest.NewHub(t)
		s.hub.StartAgent(t, c)
	}
	src, err := agentsource.New(s.hub.Hub, c)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// TestSourceContractOpenLDAPThroughAgent is TestSourceContractOpenLDAP with
// every read crossing the agent channel.
func TestSourceContractOpenLDAPThroughAgent(t *testing.T) {
	sourcetest.Run(t, agentHarness{openLDAPHarness(loadEnv(t))})
}
