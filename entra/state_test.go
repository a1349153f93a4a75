package entra

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/internal/fakeentra"
	dirsync "github.com/dirgate/dirgate/sync"
)

// TestCursorStaysSmall: a tenant with many memberships syncs through the
// engine and its stored cursor holds only the two delta links, not the
// groups' member lists (which grew with the tenant until Badger refused
// the value); incremental rounds then keep memberships right from the
// cached groups: a member added and removed, a soft-deleted user hidden
// and restored into its groups, a user deleted for good dropped.
func TestCursorStaysSmall(t *testing.T) {
	tn := newTenant(t, "", fakeentra.WithPageSize(500))
	users, groups := tn.Generate(1500, 20, 7)
	for i, u := range users { // every user in five groups
		for k := 1; k < 5; k++ {
			tn.AddMember(groups[(i+k)%len(groups)], u)
		}
	}
	e := openEngine(t, t.TempDir())
	cursor := func() []byte {
		t.Helper()
		b, err := e.store.Cursor(tn.conn.Name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if res, err := e.run(t, tn); err != nil || res.Mode != dirsync.ModeFull {
		t.Fatalf("first run: %v, %+v", err, res)
	}
	const limit = 4 << 10
	if n := len(cursor()); n > limit {
		t.Fatalf("the cursor of 7500 memberships takes %d bytes, want at most %d", n, limit)
	}
	served := func(g string) []string {
		t.Helper()
		var m []string
		if err := e.store.View(context.Background(), func(v *cache.View) error {
			en, err := v.Get(tn.conn.Name, g)
			if err == nil {
				m = en.Values("member")
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return m
	}
	dn := func(id string) string { return "cn=" + id + ",ou=users," + tn.conn.RootDN }
	g := groups[0]
	if m := served(g); len(m) < 5*1500/20 || !slices.Contains(m, dn(users[0])) {
		t.Fatalf("group 0 serves %d members, want user 0 among at least %d", len(m), 5*1500/20)
	}
	before := len(served(g))

	steps := []struct {
		name   string
		change func()
		in     map[string]bool // user → wanted in g's member attribute
		size   int             // wanted count
	}{
		{"member removed", func() { tn.RemoveMember(g, users[0]) }, map[string]bool{users[0]: false}, before - 1},
		{"member added", func() { tn.AddMember(g, users[1]) }, map[string]bool{users[1]: true}, before},
		{"soft delete", func() { tn.SoftDelete(users[1]) }, map[string]bool{users[1]: false}, before - 1},
		{"restore", func() { tn.Restore(users[1]) }, map[string]bool{users[1]: true}, before},
		{"hard delete", func() { tn.HardDelete(users[20]) }, map[string]bool{users[20]: false}, before - 1},
	}
	for _, st := range steps {
		st.change()
		if res, err := e.run(t, tn); err != nil || res.Mode != dirsync.ModeIncremental {
			t.Fatalf("%s: %v, %+v", st.name, err, res)
		}
		m := served(g)
		for u, want := range st.in {
			if slices.Contains(m, dn(u)) != want {
				t.Errorf("%s: group 0 lists %s: %v, want %v", st.name, u, !want, want)
			}
		}
		if len(m) != st.size {
			t.Errorf("%s: group 0 serves %d members, want %d", st.name, len(m), st.size)
		}
		if n := len(cursor()); n > limit {
			t.Errorf("%s: the cursor takes %d bytes", st.name, n)
		}
	}
}

// TestOldCursorReadsInFull: a version 1 cursor (delta links and the
// groups' state) is refused, so the engine reads in full: the groups
// cached under it lack the members it kept hidden from them.
func TestOldCursorReadsInFull(t *testing.T) {
	tn := newTenant(t, "")
	tn.user(fakeentra.User{})
	s := tn.source(t, tn.conn)
	cached, _ := full(t, s)
	old := []byte(`{"v":1,"users":"` + tn.GraphURL() + `/v1.0/users/delta?$deltatoken=x","groups":"` + tn.GraphURL() + `/v1.0/groups/delta?$deltatoken=y","groupState":{}}`)
	_, err := s.Changes(withEntries(cached), old, knownOf(cached), func(dirsync.Change) error { return nil })
	if !errors.Is(err, dirsync.ErrCursorInvalid) {
		t.Fatalf("Changes with a version 1 cursor = %v, want ErrCursorInvalid", err)
	}
}

// TestChangesNeedTheCache: without the cached groups a round cannot apply
// members@delta, so it asks for a full one rather than guess.
func TestChangesNeedTheCache(t *testing.T) {
	tn := newTenant(t, "")
	tn.user(fakeentra.User{})
	s := tn.source(t, tn.conn)
	cached, cur := full(t, s)
	_, err := s.Changes(context.Background(), cur, knownOf(cached), func(dirsync.Change) error { return nil })
	if !errors.Is(err, dirsync.ErrCursorInvalid) {
		t.Fatalf("Changes without a dirsync.Cached = %v, want ErrCursorInvalid", err)
	}
}
