package agentsource

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dirgate/dirgate/agent/client"
	"github.com/dirgate/dirgate/agent/hub"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/sync/agentsource/agenttest"
)

// replica is one hub replica of a test cluster; peers is what its
// registry would name.
type replica struct {
	h     *hub.Hub
	srv   *httptest.Server
	url   string
	peers atomic.Pointer[[]string]
}

// cluster starts n hub replicas sharing a CA and an agent store, as a
// cluster's replicas do, each naming no peers yet.
func cluster(t *testing.T, n int) []*replica {
	t.Helper()
	ca, store := agenttest.NewCAAndStore(t)
	var rs []*replica
	for i := range n {
		r := &replica{}
		r.peers.Store(&[]string{})
		h, err := hub.New(hub.Config{CA: ca, Replica: "r" + string(rune('1'+i)), Heartbeat: 300 * time.Millisecond,
			Peers: func() []string { return *r.peers.Load() }}, store, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		r.h = h
		r.srv = httptest.NewUnstartedServer(h.Handler())
		r.srv.EnableHTTP2 = true
		if r.srv.TLS, err = h.TLSConfig([]string{"127.0.0.1"}); err != nil {
			t.Fatal(err)
		}
		r.srv.StartTLS()
		r.url = r.srv.URL
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = h.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done; r.srv.Close() })
		rs = append(rs, r)
	}
	return rs
}

// runAgent enrolls an agent of connector corp at r and runs it.
func runAgent(t *testing.T, r *replica) {
	t.Helper()
	tok, err := r.h.CreateToken(t.Context(), "corp", 0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := config.ParseAgentFile(filepath.Join(t.TempDir(), "agent.yaml"), []byte("hub: "+r.url+
		"\nconnector:\n  name: corp\n  type: openldap\n  host: 127.0.0.1\n  port: 9\n  encryption: none\n  root_dn: dc=corp,dc=example\n"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := client.Enroll(t.Context(), client.EnrollOptions{Hub: r.url, Token: tok.Token, CASHA256: tok.CASHA256,
		StateDir: f.StateDir, Name: "a", Version: "test", Connector: "corp"})
	if err != nil {
		t.Fatal(err)
	}
	ag, err := client.New(client.Options{Config: f, Identity: id, Version: "test", Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = ag.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// awaitAgent waits until the agent is connected to r.
func awaitAgent(t *testing.T, r *replica, what string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if n, _ := r.h.Connected("corp"); n == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the agent is not connected to %s", what, r.url)
		}
	}
}

// dropAgent cuts the agent's connections to r and waits until r sees them
// gone, so that awaitAgent then shows a new connection.
func dropAgent(t *testing.T, r *replica) {
	t.Helper()
	r.srv.CloseClientConnections()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if n, _ := r.h.Connected("corp"); n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent's connection to %s stays", r.url)
		}
	}
}

// A replica that joins after the agent connected gets the agent: the hub
// names it in its pings. Agents learned replicas only from a new
// connection's Welcome before, so it never did while the first stayed up.
func TestNewReplicaGetsAgents(t *testing.T) {
	rs := cluster(t, 2)
	rs[0].peers.Store(&[]string{rs[0].url})
	runAgent(t, rs[0])
	awaitAgent(t, rs[0], "r1 alone")
	both := []string{rs[0].url, rs[1].url}
	rs[0].peers.Store(&both)
	rs[1].peers.Store(&both)
	awaitAgent(t, rs[1], "r2 joined")
}

// A Welcome naming no peers (a replica whose registry has not beaten yet)
// does not make the agent give the others up: when the connection to r3
// drops afterwards, the agent comes back to it.
func TestEmptyWelcomeKeepsReplicas(t *testing.T) {
	rs := cluster(t, 3)
	all := []string{rs[0].url, rs[1].url, rs[2].url}
	for _, r := range rs {
		r.peers.Store(&all)
	}
	runAgent(t, rs[0])
	for _, r := range rs {
		awaitAgent(t, r, "start")
	}
	rs[1].peers.Store(&[]string{})
	dropAgent(t, rs[1])
	awaitAgent(t, rs[1], "r2 reconnected")
	dropAgent(t, rs[2])
	awaitAgent(t, rs[2], "r3 dropped once")
}
