package config

import (
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestAgentSection: the hub's agent listener's defaults, and a connector
// read through an agent, which needs no host and keeps its root DN.
func TestAgentSection(t *testing.T) {
	old := hostname
	hostname = func() (string, error) { return "hub1.example.com", nil }
	t.Cleanup(func() { hostname = old })
	cfg := mustParse(t, `
agent: {}
connectors:
  - name: corp
    type: ad
    via: agent
    root_dn: dc=corp,dc=example
`)
	a := cfg.Agent
	if a.Listen != ":8444" || a.CADir != filepath.Join(".", "agent-ca") || !slices.Equal(a.ServerNames, []string{"hub1.example.com"}) ||
		a.TokenTTL.Std() != time.Hour || a.MaxDisconnected.Std() != 2*time.Minute || a.Advertise != "https://hub1.example.com:8444" {
		t.Errorf("defaults = %+v", a)
	}
	c, _ := cfg.Connector("corp")
	if !c.ViaAgent() || c.Host != "" || c.RootDN != "dc=corp,dc=example" {
		t.Errorf("connector = %+v", c)
	}

	cfg = mustParse(t, `
agent:
  listen: 0.0.0.0:9444
  server_names: [hub.example.com, 192.0.2.7]
  advertise: https://192.0.2.7:9444/
  max_disconnected: 30s
`+minimal)
	if cfg.Agent.Advertise != "https://192.0.2.7:9444" || cfg.Agent.MaxDisconnected.Std() != 30*time.Second {
		t.Errorf("agent = %+v", cfg.Agent)
	}
	if c, _ := cfg.Connector("corp"); c.ViaAgent() {
		t.Error("a connector without via is read through an agent")
	}
}
