package google

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/internal/fakegoogle"
)

// TestCursorStaysSmall: an account with many memberships syncs through
// the engine and its stored cursor holds only a version, not the groups'
// member lists (which grew with the account until the cache refused the
// value); the next run still spares the member listings of unchanged
// groups, reading their members from the cached entries, and lists again
// the one that changed.
func TestCursorStaysSmall(t *testing.T) {
	a := newAccount(t)
	var users []string
	for i := range 1500 {
		users = append(users, a.user(fakegoogle.User{PrimaryEmail: fmt.Sprintf("u%d@example.test", i)}))
	}
	var groups []string
	for i := range 20 {
		var ms []fakegoogle.Member
		for j := i; j < len(users); j += 4 { // every user in five groups
			ms = append(ms, fakegoogle.Member{ID: users[j], Type: "USER"})
		}
		groups = append(groups, a.group(fakegoogle.Group{Email: fmt.Sprintf("g%d@example.test", i), Members: ms}))
	}
	dir := t.TempDir()
	if _, err := runEngine(t, a, dir); err != nil {
		t.Fatal(err)
	}
	const limit = 64
	if n := len(storedCursor(t, a, dir)); n > limit {
		t.Fatalf("the cursor of 7500 memberships takes %d bytes, want at most %d", n, limit)
	}
	g := groups[0]
	a.AddMember(g, fakegoogle.Member{ID: users[1], Type: "USER"})
	before := a.Requests()
	res, err := runEngine(t, a, dir)
	if err != nil || res.Updated != 1 {
		t.Fatalf("second run: %v, %+v", err, res)
	}
	pages := func(n, size int) int { return (n + size - 1) / size }
	// The users (the admin too), the groups, the members of the changed group.
	want := pages(1501, usersPageSize) + pages(20, groupsPageSize) + pages(1500/4+1, membersPageSize)
	if n := a.Requests() - before; n != want {
		t.Errorf("second run made %d requests, want %d (users, groups, members of the changed group)", n, want)
	}
	cached := cachedEntries(t, a, dir, groups[:2]...)
	dn := func(id string) string { return "cn=" + id + ",ou=users," + a.conn.RootDN }
	if m := cached[g].Values("member"); len(m) != 1500/4+1 || !slices.Contains(m, dn(users[1])) {
		t.Errorf("the changed group serves %d members, want %d with user 1", len(m), 1500/4+1)
	}
	if m := cached[groups[1]].Values("member"); len(m) != 1500/4 || !slices.Contains(m, dn(users[1])) {
		t.Errorf("an unchanged group serves %d members, want %d", len(m), 1500/4)
	}
	if n := len(storedCursor(t, a, dir)); n > limit {
		t.Errorf("the cursor takes %d bytes after the second run", n)
	}
}

// TestOldCursorListsEveryGroup: a version 1 cursor (which held the
// groups' state itself) is ignored, though the cached entries are passed:
// every group's members are listed once.
func TestOldCursorListsEveryGroup(t *testing.T) {
	a := newAccount(t)
	dan := a.user(fakegoogle.User{PrimaryEmail: "dan@example.test"})
	for i := range 3 {
		a.group(fakegoogle.Group{Email: fmt.Sprintf("g%d@example.test", i), Members: []fakegoogle.Member{{ID: dan, Type: "USER"}}})
	}
	s := a.source(t, a.conn)
	first, l := full(t, s, nil, nil)
	before := a.Requests()
	full(t, s, []byte(`{"v":1,"groups":{}}`), first)
	if n := a.Requests() - before; n != 2+3 {
		t.Errorf("%d requests after a version 1 cursor, want 5 (every group's members)", n)
	}
	before = a.Requests()
	full(t, s, l.Cursor, first)
	if n := a.Requests() - before; n != 2 {
		t.Errorf("%d requests after a version 2 cursor, want 2", n)
	}
}

// TestStateRoundTrip: a cached group entry reads back into the state it
// was mapped from, and maps again to the same entry; a member DN that
// does not name a user or group of the connector makes the state unusable.
func TestStateRoundTrip(t *testing.T) {
	a := newAccount(t)
	s := a.source(t, a.conn)
	g := &group{ID: "g1", Email: "g1@example.test", Etag: `"e1"`}
	st := &groupState{Etag: g.Etag, ReadAt: a.clk.Now(), Members: []member{
		{ID: "u,1", Type: memberUser}, {ID: "7", Type: memberUser}, {ID: "g2", Type: memberGroup},
		{Email: "x@partner.test", Type: memberExternal}, {ID: "C01", Type: memberCustomer},
	}}
	e := s.groupEntry(g, st, map[string]bool{"7": true}, map[string]bool{"g2": true})
	back := s.stateOf(e)
	if back == nil {
		t.Fatalf("state of %+v is unusable", e)
	}
	if again := s.groupEntry(g, back, map[string]bool{"7": true}, map[string]bool{"g2": true}); again.Hash() != e.Hash() {
		t.Errorf("the state read back maps to %+v, want %+v", again, e)
	}
	for _, bad := range []string{"cn=1,ou=people,o=my_customer", "cn=1+sn=2,ou=users,o=my_customer", "uid=1,ou=users,o=my_customer"} {
		e.Members = []string{bad}
		if s.stateOf(e) != nil {
			t.Errorf("a member %q read back", bad)
		}
	}
}

func storedCursor(t *testing.T, a *account, dir string) []byte {
	t.Helper()
	s, err := cache.Open(dir, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, err := s.Cursor(a.conn.Name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cachedEntries(t *testing.T, a *account, dir string, ids ...string) map[string]*cache.Entry {
	t.Helper()
	s, err := cache.Open(dir, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := map[string]*cache.Entry{}
	if err := s.View(context.Background(), func(v *cache.View) error {
		for _, id := range ids {
			e, err := v.Get(a.conn.Name, id)
			if err != nil {
				return err
			}
			got[id] = e
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}
