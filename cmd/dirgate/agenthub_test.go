package main

import (
	"testing"
	"time"

	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/sync/agentsource/agenttest"
)

// TestAgentReadiness: a via: agent connector is ready while an agent is
// connected and within agent.max_disconnected of the last one leaving (or
// of the start), and not after; a direct connector is not judged.
func TestAgentReadiness(t *testing.T) {
	h := agenttest.NewHub(t)
	a := &agentHub{cfg: &config.Agent{MaxDisconnected: config.Duration(time.Hour)}, hub: h.Hub}
	via := &config.Connector{Name: "corp", Type: "openldap", Via: config.ViaAgent}
	now := time.Now()
	if ok, why := a.ready(via, now); !ok {
		t.Fatalf("within max_disconnected of the start: %s", why)
	}
	if ok, why := a.ready(via, now.Add(2*time.Hour)); ok || why == "" {
		t.Fatal("no agent for longer than max_disconnected: ready")
	}
	if ok, _ := a.ready(&config.Connector{Name: "direct", Type: "openldap"}, now.Add(2*time.Hour)); !ok {
		t.Fatal("a direct connector was judged by the agent rule")
	}
	// An agent of a directory nothing listens for: only its connection counts.
	agent := h.StartAgent(t, &config.Connector{Name: "corp", Type: "openldap", Host: "127.0.0.1", Port: 9, Encryption: config.EncryptionNone,
		RootDN: "dc=corp,dc=example", Timeout: config.Duration(time.Second), UserFilter: "(objectClass=person)", GroupFilter: "(objectClass=groupOfNames)",
		MailAttribute: "mail", PageSize: 100})
	if ok, why := a.ready(via, time.Now().Add(2*time.Hour)); !ok {
		t.Fatalf("agent connected: %s", why)
	}
	agent.Stop()
	for n, _ := h.Connected("corp"); n > 0; n, _ = h.Connected("corp") {
		time.Sleep(10 * time.Millisecond)
	}
	left := time.Now()
	if ok, why := a.ready(via, left.Add(time.Minute)); !ok {
		t.Fatalf("a minute after the agent left: %s", why)
	}
	if ok, _ := a.ready(via, left.Add(2*time.Hour)); ok {
		t.Fatal("two hours after the agent left: ready")
	}
}

// TestAgentHubConfig: the agent section's settings reach the hub.
func TestAgentHubConfig(t *testing.T) {
	a := &config.Agent{TokenTTL: config.Duration(2 * time.Hour), ReplyStart: config.Duration(90 * time.Second),
		ReplyIdle: config.Duration(7 * time.Minute)}
	c := hubConfig(a, nil, "r1", nil)
	if c.Replica != "r1" || c.TokenTTL != 2*time.Hour || c.ReplyStart != 90*time.Second || c.ReplyIdle != 7*time.Minute {
		t.Fatalf("hub config %+v", c)
	}
}
