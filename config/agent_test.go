package config

import (
	"path/filepath"
	"slices"
	"strings"
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
		a.TokenTTL.Std() != time.Hour || a.MaxDisconnected.Std() != 2*time.Minute ||
		a.ReplyStart.Std() != time.Minute || a.ReplyIdle.Std() != 5*time.Minute || a.Advertise != "https://hub1.example.com:8444" {
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
  reply_start: 2m
  reply_idle: 10m
`+minimal)
	if cfg.Agent.Advertise != "https://192.0.2.7:9444" || cfg.Agent.MaxDisconnected.Std() != 30*time.Second ||
		cfg.Agent.ReplyStart.Std() != 2*time.Minute || cfg.Agent.ReplyIdle.Std() != 10*time.Minute {
		t.Errorf("agent = %+v", cfg.Agent)
	}
	if c, _ := cfg.Connector("corp"); c.ViaAgent() {
		t.Error("a connector without via is read through an agent")
	}
}

// TestAgentReplyBounds: agent.reply_start and agent.reply_idle must be
// durations of at least 5s.
func TestAgentReplyBounds(t *testing.T) {
	tests := []struct{ yml, want string }{
		{"reply_start: 1s", "agent.reply_start: must be at least 5s, got 1s"},
		{"reply_idle: 0s", "agent.reply_idle: must be positive"},
		{"reply_idle: -1m", "agent.reply_idle: must be positive"},
		{"reply_start: soon", "agent.reply_start"},
	}
	for _, tt := range tests {
		t.Run(tt.yml, func(t *testing.T) {
			if got := parseErr(t, "agent:\n  server_names: [hub.example.com]\n  "+tt.yml+"\n"+minimal); !strings.Contains(got, tt.want) {
				t.Fatalf("error %q, want %q", got, tt.want)
			}
		})
	}
}
