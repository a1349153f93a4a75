package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dirgate/dirgate/admin"
	"github.com/dirgate/dirgate/agent/client"
	"github.com/dirgate/dirgate/agent/hub"
	"github.com/dirgate/dirgate/agent/pki"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
)

// hubFixture is a hub as serve runs it, in process: the agent listener of
// a real agent/hub on TLS, and the admin API serving it through
// agentsView, described by a dirgate.yaml for the CLI.
type hubFixture struct {
	hub    *hub.Hub
	ca     *pki.CA
	url    string // the agent listener
	config string // the dirgate.yaml path
	// replicas is what the registry would say of the replicas each agent
	// is connected to (as in a cluster).
	replicas atomic.Pointer[map[string][]string]
}

// adminOnly is a Backend for a test of the agents' endpoints, which use
// no other part of it.
type adminOnly struct{ admin.Backend }

func newHubFixture(t *testing.T) *hubFixture {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.LoadOrCreate(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := cache.Open(dir, cache.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	// Recheck is long: a cut seen within it is the revocation's own.
	h, err := hub.New(hub.Config{CA: ca, Replica: "r1", Heartbeat: 200 * time.Millisecond, Recheck: time.Hour}, store, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	agents := httptest.NewUnstartedServer(h.Handler())
	agents.EnableHTTP2 = true
	if agents.TLS, err = h.TLSConfig([]string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	agents.StartTLS()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; agents.Close() })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const token = "test-admin-token-0123456789"
	t.Setenv("DIRGATE_TEST_ADMIN_TOKEN", token)
	y := fmt.Sprintf("cache: {dir: %s}\nldap: {listen: \"127.0.0.1:0\"}\nadmin: {listen: %q, token_env: DIRGATE_TEST_ADMIN_TOKEN}\n"+
		"agent: {listen: \"127.0.0.1:0\", server_names: [127.0.0.1], ca_dir: %s}\nconnectors:\n"+
		"- {name: corp, type: openldap, via: agent, root_dn: \"dc=corp,dc=example\"}\n"+
		"- {name: direct, type: openldap, host: 127.0.0.1, port: 9, encryption: none, root_dn: \"dc=direct,dc=example\"}\n",
		filepath.Join(dir, "cache"), ln.Addr().String(), filepath.Join(dir, "ca"))
	p := filepath.Join(dir, "dirgate.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	f := &hubFixture{hub: h, ca: ca, url: agents.URL, config: p}
	replicas := func(context.Context) (map[string][]string, error) {
		if m := f.replicas.Load(); m != nil {
			return *m, nil
		}
		return nil, nil
	}
	view := newAgentsView(h, store, func() *config.Config { return cfg }, agents.URL, replicas)
	api := &httptest.Server{Listener: ln, Config: &http.Server{Handler: admin.New(adminOnly{}, admin.Options{Token: token, Agents: view})}}
	api.Start()
	t.Cleanup(api.Close)
	return f
}

// agentCLI runs a `dirgate agent` subcommand against the fixture's hub.
func (f *hubFixture) agentCLI(args ...string) (string, error) {
	return execute(context.Background(), append(append([]string{"agent"}, args...), "-c", f.config)...)
}

// startAgent enrolls a real agent with token and runs it until the test
// ends.
func (f *hubFixture) startAgent(t *testing.T, tok *admin.EnrollToken) *client.Identity {
	t.Helper()
	dir := t.TempDir()
	af := filepath.Join(dir, "agent.yaml")
	y := fmt.Sprintf("hub: %s\nstate_dir: %s\nname: branch-1\nconnector:\n  name: corp\n  type: openldap\n  host: 127.0.0.1\n  port: 9\n  encryption: none\n  root_dn: dc=corp,dc=example\n",
		tok.Hub, filepath.Join(dir, "state"))
	if err := os.WriteFile(af, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	file, err := config.LoadAgentFile(af)
	if err != nil {
		t.Fatal(err)
	}
	id, err := client.Enroll(t.Context(), client.EnrollOptions{Hub: tok.Hub, Token: tok.Token, CASHA256: tok.CASHA256,
		StateDir: file.StateDir, Name: file.Name, Version: "v-test", Connector: "corp"})
	if err != nil {
		t.Fatalf("enroll with the token the CLI printed: %v", err)
	}
	a, err := client.New(client.Options{Config: file, Identity: id, Version: "v-test", Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return id
}

// listAgents is `dirgate agent list --json`.
func (f *hubFixture) listAgents(t *testing.T) []admin.AgentStatus {
	t.Helper()
	out, err := f.agentCLI("list", "--json")
	if err != nil {
		t.Fatalf("agent list: %v\n%s", err, out)
	}
	var as []admin.AgentStatus
	if err := json.Unmarshal([]byte(out), &as); err != nil {
		t.Fatalf("agent list --json: %v\n%s", err, out)
	}
	return as
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestAgentAdminCLI: a token from `dirgate agent token create` enrolls a
// real agent once; `agent list` shows it connected; `agent revoke` cuts
// it off at once and for good.
func TestAgentAdminCLI(t *testing.T) {
	f := newHubFixture(t)

	out, err := f.agentCLI("token", "create", "--connector", "corp", "--json")
	if err != nil {
		t.Fatalf("token create: %v\n%s", err, out)
	}
	var tok admin.EnrollToken
	if err := json.Unmarshal([]byte(out), &tok); err != nil {
		t.Fatalf("token create --json: %v\n%s", err, out)
	}
	if until := time.Until(tok.Expires); tok.Connector != "corp" || tok.CASHA256 != f.ca.Fingerprint() || tok.Hub != f.url ||
		until < 55*time.Minute || until > time.Hour ||
		tok.Command != "dirgate agent enroll --hub "+f.url+" --token "+tok.Token+" --ca-sha256 "+f.ca.Fingerprint() {
		t.Fatalf("token %+v", tok)
	}

	out, err = f.agentCLI("token", "create", "--connector", "corp", "--ttl", "10m")
	if err != nil {
		t.Fatalf("token create: %v\n%s", err, out)
	}
	for _, want := range []string{"Enrollment token for connector corp", "shown only this once", "(in 10m0s)", "Hub CA SHA-256: " + f.ca.Fingerprint(),
		"dirgate agent enroll --hub " + f.url + " --token "} {
		if !strings.Contains(out, want) {
			t.Errorf("token create: missing %q in\n%s", want, out)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"token", "create", "--connector", "nope"}, `no such connector: "nope" (admin API 404)`},
		{[]string{"token", "create", "--connector", "direct"}, `not read through sync agents (via: agent): "direct" (admin API 400)`},
		{[]string{"token", "create", "--connector", "corp", "--ttl", "10s"}, "ttl \"10s\": give a duration from 1m0s"},
		{[]string{"token", "create"}, `required flag(s) "connector" not set`},
		{[]string{"revoke", "ag-none"}, `no such agent: "ag-none" (admin API 404)`},
	} {
		if out, err := f.agentCLI(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q\n%s", tc.args, err, tc.want, out)
		}
	}

	if out, err := f.agentCLI("list"); err != nil || !strings.Contains(out, "No agent is enrolled") {
		t.Fatalf("empty list: %v\n%s", err, out)
	}
	id := f.startAgent(t, &tok)
	// The token is spent.
	_, err = client.Enroll(t.Context(), client.EnrollOptions{Hub: tok.Hub, Token: tok.Token, CASHA256: tok.CASHA256,
		StateDir: t.TempDir(), Name: "thief", Connector: "corp"})
	if !errors.Is(err, client.ErrTokenUsed) {
		t.Fatalf("second enrollment with the token: %v", err)
	}

	var a admin.AgentStatus
	waitUntil(t, "the agent to connect", func() bool {
		as := f.listAgents(t)
		if len(as) != 1 {
			t.Fatalf("agents %+v", as)
		}
		a = as[0]
		return a.Connected && !a.LastHeartbeat.IsZero()
	})
	if host, _ := os.Hostname(); a.ID != id.AgentID || a.Connector != "corp" || a.Name != "branch-1" || a.Version != "v-test" ||
		a.Hostname != host || !strings.HasPrefix(a.Address, "127.0.0.1:") || a.Fingerprint == "" || a.Reconnects != 0 || !a.Revoked.IsZero() {
		t.Fatalf("connected agent %+v", a)
	}
	if left := time.Until(a.CertExpires); left < 364*24*time.Hour || left > 366*24*time.Hour || a.CertExpiring {
		t.Fatalf("certificate expiry %v (expiring %v), want a year from now", a.CertExpires, a.CertExpiring)
	}
	out, err = f.agentCLI("list")
	if err != nil || !regexp.MustCompile(id.AgentID+`\s+corp\s+branch-1\s+connected\s+v-test\s+127\.0\.0\.1:.*\s`+
		a.CertExpires.Local().Format("2006-01-02")+"\n").MatchString(out) || !strings.Contains(out, "CERT EXPIRES") {
		t.Fatalf("agent list: %v\n%s", err, out)
	}

	// In a cluster, the list names the replicas each agent is connected to.
	f.replicas.Store(&map[string][]string{id.AgentID: {"dirgate-1", "dirgate-2"}})
	if as := f.listAgents(t); len(as) != 1 || !slices.Equal(as[0].Replicas, []string{"dirgate-1", "dirgate-2"}) {
		t.Fatalf("agents in a cluster: %+v", as)
	}
	if out, err = f.agentCLI("list"); err != nil || !strings.Contains(out, "connected (on dirgate-1,dirgate-2)") {
		t.Fatalf("agent list in a cluster: %v\n%s", err, out)
	}

	out, err = f.agentCLI("revoke", id.AgentID)
	if err != nil || out != "agent "+id.AgentID+" revoked\n" {
		t.Fatalf("revoke: %v\n%s", err, out)
	}
	// Cut at once (Recheck is an hour), and refused when it reconnects.
	waitUntil(t, "the revoked agent to be cut", func() bool { n, _ := f.hub.Connected("corp"); return n == 0 })
	time.Sleep(time.Second) // the agent's first reconnection attempts
	if n, _ := f.hub.Connected("corp"); n != 0 {
		t.Fatal("the revoked agent reconnected")
	}
	as := f.listAgents(t)
	if len(as) != 1 || as[0].Connected || as[0].Revoked.IsZero() {
		t.Fatalf("after revoking: %+v", as)
	}
	if out, err = f.agentCLI("list"); err != nil || !strings.Contains(out, "revoked 20") {
		t.Fatalf("agent list after revoking: %v\n%s", err, out)
	}
}
