// Package agenttest runs a real hub and real sync agents in the test's
// process: the hub's agent listener (agent/hub over HTTP/2 mutual TLS on a
// loopback port, its agents in a cache), and agents (agent/client) enrolled
// with a token from it, each serving one connector. Tests of the hub's side
// of the agent (sources, checks, Test Connection) use it in place of the
// two processes.
package agenttest

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/dirgate/dirgate/agent/client"
	"github.com/dirgate/dirgate/agent/hub"
	"github.com/dirgate/dirgate/agent/pki"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
)

// Hub is a running hub.
type Hub struct {
	*hub.Hub
	URL string
	CA  *pki.CA
}

// NewHub starts a hub with its agents in a fresh in-memory cache; it stops
// when the test ends.
func NewHub(t testing.TB) *Hub {
	t.Helper()
	ca, store := NewCAAndStore(t)
	h, err := hub.New(hub.Config{CA: ca, Replica: "test", Heartbeat: time.Second}, store, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h.Handler())
	srv.EnableHTTP2 = true
	if srv.TLS, err = h.TLSConfig([]string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	srv.StartTLS()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = h.Run(ctx); close(done) }()
	// Registered after the store's Close, so it runs before it.
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	return &Hub{Hub: h, URL: srv.URL, CA: ca}
}

// NewCAAndStore returns a new agent CA and a fresh in-memory cache for a
// hub's agents; the cache closes when the test ends, after the cleanups
// registered later.
func NewCAAndStore(t testing.TB) (*pki.CA, *cache.Store) {
	t.Helper()
	ca, err := pki.LoadOrCreate(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := cache.Open(t.TempDir(), cache.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return ca, store
}

// Agent is a running agent.
type Agent struct {
	ID   string
	stop context.CancelFunc
	done chan struct{}
}

// Stop ends the agent (its connections to the hub close) and waits for
// it.
func (a *Agent) Stop() {
	a.stop()
	<-a.done
}

// StartAgent enrolls an agent for connector c (its directory settings as
// in an agent.yaml; c.Name is the hub's connector) and runs it until the
// test ends or Stop; it returns once the hub has the agent's connection.
func (h *Hub) StartAgent(t testing.TB, c *config.Connector) *Agent {
	t.Helper()
	ctx := context.Background()
	tok, err := h.CreateToken(ctx, c.Name, 0)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := h.Connected(c.Name)
	f := &config.AgentFile{Hub: h.URL, StateDir: t.TempDir(), Name: "test-agent", PoolSize: 4, Connector: *c}
	id, err := client.Enroll(ctx, client.EnrollOptions{Hub: h.URL, Token: tok.Token, CASHA256: tok.CASHA256,
		StateDir: f.StateDir, Name: f.Name, Version: "test", Connector: c.Name})
	if err != nil {
		t.Fatalf("enroll an agent for %s: %v", c.Name, err)
	}
	ag, err := client.New(client.Options{Config: f, Identity: id, Version: "test", Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	a := &Agent{ID: id.AgentID, stop: cancel, done: make(chan struct{})}
	go func() { _ = ag.Run(rctx); close(a.done) }()
	t.Cleanup(a.Stop)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if n, _ := h.Connected(c.Name); n > before {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent %s of %s did not connect to the hub within 30s", a.ID, c.Name)
		}
	}
}
