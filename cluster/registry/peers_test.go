package registry

import (
	"maps"
	"slices"
	"testing"
)

// TestPeers: each replica's heartbeat records its agent URL, and Peers
// lists the live replicas' URLs (not those of replicas without an agent
// listener, nor of gone ones).
func TestPeers(t *testing.T) {
	pool := newDB(t)
	a := newRegistry(t, pool, Config{Name: "a", Holder: "a/1", AgentURL: "https://a.example:8444"})
	b := newRegistry(t, pool, Config{Name: "b", Holder: "b/1", AgentURL: "https://b.example:8444"})
	c := newRegistry(t, pool, Config{Name: "c", Holder: "c/1"})
	for _, r := range []*Registry{a, b, c} {
		if err := r.Beat(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Beat(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := []string{"https://a.example:8444", "https://b.example:8444"}
	if got := a.Peers(); !slices.Equal(got, want) {
		t.Fatalf("Peers = %v, want %v", got, want)
	}
	exec(t, pool, `UPDATE cluster_replica SET seen = seen - interval '1 hour' WHERE name = 'b'`)
	if err := a.Beat(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := a.Peers(); !slices.Equal(got, want[:1]) {
		t.Fatalf("Peers with b gone = %v, want %v", got, want[:1])
	}
}

// TestConnectedAgents: each replica's heartbeat records the agents
// connected to it, and ConnectedAgents names, for each agent, the live
// replicas it is connected to.
func TestConnectedAgents(t *testing.T) {
	pool := newDB(t)
	conns := map[string][]string{"a": {"ag-1", "ag-2"}, "b": {"ag-1"}, "c": nil}
	var regs []*Registry
	for _, name := range []string{"a", "b", "c"} {
		regs = append(regs, newRegistry(t, pool, Config{Name: name, Holder: name + "/1",
			Agents: func() []string { return conns[name] }}))
	}
	// d runs no agent listener.
	regs = append(regs, newRegistry(t, pool, Config{Name: "d", Holder: "d/1"}))
	for _, r := range regs {
		if err := r.Beat(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ConnectedAgents(t.Context(), pool)
	want := map[string][]string{"ag-1": {"a", "b"}, "ag-2": {"a"}}
	if err != nil || !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("ConnectedAgents = %v, %v; want %v", got, err, want)
	}
	// An agent that left a replica, and a gone replica, count no more.
	conns["a"] = []string{"ag-2"}
	if err := regs[0].Beat(t.Context()); err != nil {
		t.Fatal(err)
	}
	exec(t, pool, `UPDATE cluster_replica SET seen = seen - interval '1 hour' WHERE name = 'b'`)
	got, err = ConnectedAgents(t.Context(), pool)
	want = map[string][]string{"ag-2": {"a"}}
	if err != nil || !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("ConnectedAgents later = %v, %v; want %v", got, err, want)
	}
}
