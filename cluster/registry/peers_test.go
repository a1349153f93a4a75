package registry

import (
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
