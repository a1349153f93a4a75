package authn

import (
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
)

func TestLookupMemo(t *testing.T) {
	var m lookupMemo
	alice := []*cache.Entry{{ID: "a"}}
	bob := []*cache.Entry{{ID: "b"}}
	m.put(0, "nobody", nil) // a store that never changed is at version 0
	if _, ok := m.get(0, "nobody"); !ok {
		t.Fatal("a result at version 0 is not remembered")
	}
	m.put(1, "alice", alice)
	if got, ok := m.get(1, "alice"); !ok || len(got) != 1 || got[0] != alice[0] {
		t.Fatalf("get after put = %v, %v", got, ok)
	}
	if _, ok := m.get(2, "alice"); ok {
		t.Fatal("a result from an older cache version was reused")
	}
	m.put(2, "bob", bob)
	if _, ok := m.get(2, "alice"); ok {
		t.Fatal("results of version 1 survived the move to version 2")
	}
	// A lookup that began before the change must not bring its result
	// back, nor wipe the newer ones.
	m.put(1, "alice", alice)
	if _, ok := m.get(1, "alice"); ok {
		t.Fatal("a stale put replaced the newer version")
	}
	if _, ok := m.get(2, "bob"); !ok {
		t.Fatal("a stale put wiped the current results")
	}
	m.put(2, "nobody", nil)
	if got, ok := m.get(2, "nobody"); !ok || got != nil {
		t.Fatal("an unknown login is not remembered")
	}
	for i := range maxLookupMemo + 1 {
		m.put(2, string(rune('a'+i%26))+string(rune(i)), bob)
	}
	if len(m.m) > maxLookupMemo {
		t.Fatalf("memo grew to %d entries", len(m.m))
	}
}

// A success whose check began before a refusal of the same account must
// not cache the password the refusal dropped.
func TestRecentRefusalWins(t *testing.T) {
	now := newClock()
	r := newRecent(time.Minute, map[string]string{}, now.Now)
	alice := &cache.Entry{Connector: "c", ID: "a"}
	bob := &cache.Entry{Connector: "c", ID: "b"}
	tok := r.begin(alice)
	r.remember(alice, "pw", tok)
	if !r.match(alice, "pw") || r.match(alice, "other") || r.match(bob, "pw") {
		t.Fatal("cached password not matched as it should be")
	}
	late := r.begin(alice) // a second bind starts...
	r.forget(alice)        // ...a third is refused (account locked)...
	r.remember(alice, "pw", late)
	if r.match(alice, "pw") {
		t.Fatal("an older success brought back a password the upstream refused since")
	}
	r.remember(alice, "pw", r.begin(alice))
	if !r.match(alice, "pw") {
		t.Fatal("a check begun after the refusal is not cached")
	}
	now.Add(time.Minute)
	if r.match(alice, "pw") {
		t.Fatal("matched after the timeout")
	}
}
