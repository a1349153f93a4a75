package cache

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// membership describes what the cache answers about one entry's groups and
// one group's members, by DN and ID, for comparing states.
func membership(t *testing.T, s *Store, conn, memberID, groupID string) (memberOf []string, members []string) {
	t.Helper()
	err := s.View(context.Background(), func(v *View) error {
		if e, err := v.Get(conn, memberID); err == nil {
			if memberOf, err = v.MemberOf(e); err != nil {
				return err
			}
			gs, err := v.Groups(e)
			if err != nil {
				return err
			}
			if len(gs) != len(memberOf) {
				return fmt.Errorf("Groups %d entries, MemberOf %v", len(gs), memberOf)
			}
		}
		g, err := v.Get(conn, groupID)
		if err != nil {
			return err
		}
		ms, err := v.Members(g)
		if err != nil {
			return err
		}
		for _, m := range ms {
			members = append(members, m.ID)
		}
		ids, err := v.MemberIDs(g)
		if err != nil {
			return err
		}
		if !slices.Equal(ids, members) {
			return fmt.Errorf("MemberIDs %v, Members %v", ids, members)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return memberOf, members
}

// TestMembershipFollowsDN checks that a group's member value names whatever
// entry holds that DN now: a member renamed away leaves the group (the group
// still lists its old DN), and a new entry at the old DN joins it, though
// the group itself never changed. Delta and full generation must agree.
func TestMembershipFollowsDN(t *testing.T) {
	const (
		oldDN   = "uid=a,ou=people,dc=x"
		movedDN = "uid=a,ou=moved,dc=x"
		groupDN = "cn=g,ou=groups,dc=x"
	)
	group := func() *Entry {
		return &Entry{ID: "g", DN: groupDN, Kind: KindGroup, Members: []string{"UID=A,OU=People,DC=X"},
			Attrs: []Attr{{Name: "cn", Values: []string{"g"}}, {Name: "member", Values: []string{"UID=A,OU=People,DC=X"}}}}
	}
	steps := []struct {
		name    string
		entries []*Entry // the upstream after the step
		delta   *Delta   // the change an incremental source reports
		// want: memberOf of a, of n; members of g
		wantA, wantN []string
		wantMembers  []string
	}{
		{
			name:    "renamed away",
			entries: []*Entry{user("a", movedDN, "a@x.test"), group()},
			delta:   &Delta{Upserts: []*Entry{user("a", movedDN, "a@x.test")}},
			wantA:   nil, wantMembers: nil,
		},
		{
			name:    "new entry at the old DN",
			entries: []*Entry{user("a", movedDN, "a@x.test"), user("n", oldDN, "n@x.test"), group()},
			delta:   &Delta{Upserts: []*Entry{user("n", oldDN, "n@x.test")}},
			wantA:   nil, wantN: []string{groupDN}, wantMembers: []string{"n"},
		},
		{
			name:    "new entry deleted, old one moved back",
			entries: []*Entry{user("a", oldDN, "a@x.test"), group()},
			delta:   &Delta{Upserts: []*Entry{user("a", oldDN, "a@x.test")}, Deletes: []string{"n"}},
			wantA:   []string{groupDN}, wantMembers: []string{"a"},
		},
	}
	inc, full := openTest(t), openTest(t)
	ctx := context.Background()
	for _, s := range []*Store{inc, full} {
		commitAll(t, s, "c", user("a", oldDN, "a@x.test"), group())
		if mo, ms := membership(t, s, "c", "a", "g"); !slices.Equal(mo, []string{groupDN}) || !slices.Equal(ms, []string{"a"}) {
			t.Fatalf("initial: memberOf(a) %v, members %v", mo, ms)
		}
	}
	for _, st := range steps {
		if _, err := inc.ApplyDelta(ctx, "c", st.delta, nil, nil, false); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		commitAll(t, full, "c", st.entries...)
		for _, s := range []struct {
			name  string
			store *Store
		}{{"delta", inc}, {"full", full}} {
			moA, ms := membership(t, s.store, "c", "a", "g")
			moN, _ := membership(t, s.store, "c", "n", "g")
			if !slices.Equal(moA, st.wantA) || !slices.Equal(moN, st.wantN) || !slices.Equal(ms, st.wantMembers) {
				t.Errorf("%s (%s): memberOf(a) %v want %v, memberOf(n) %v want %v, members %v want %v",
					st.name, s.name, moA, st.wantA, moN, st.wantN, ms, st.wantMembers)
			}
		}
	}
}

// TestMembershipLayoutMigration opens a cache whose generation an older
// version wrote, with membership linked by ID (here a stale link, as a
// rename left it), and checks that Open rebuilds it from the member DNs.
func TestMembershipLayoutMigration(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	group := &Entry{ID: "g", DN: "cn=g,dc=x", Kind: KindGroup, Members: []string{"uid=a,dc=x"}}
	commitAll(t, s, "c", user("a", "uid=a,dc=x", "a@x.test"), user("b", "uid=b,dc=x", "b@x.test"), group)
	gen := s.served.Load().gens["c"]
	err = s.db.Update(func(txn *badger.Txn) error {
		for _, t := range []byte{tMember, tMemberOf, tLayout} {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: dataKey("c", gen, t)})
			var keys [][]byte
			for it.Rewind(); it.Valid(); it.Next() {
				keys = append(keys, it.Item().KeyCopy(nil))
			}
			it.Close()
			for _, k := range keys {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
		}
		if err := txn.Set(dataKey("c", gen, tMemberV1, "g", "b"), nil); err != nil {
			return err
		}
		return txn.Set(dataKey("c", gen, tMemberOfV1, "b", "g"), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	moA, members := membership(t, s, "c", "a", "g")
	moB, _ := membership(t, s, "c", "b", "g")
	if !slices.Equal(moA, []string{"cn=g,dc=x"}) || len(moB) != 0 || !slices.Equal(members, []string{"a"}) {
		t.Errorf("after the migration: memberOf(a) %v, memberOf(b) %v, members %v", moA, moB, members)
	}
	err = s.db.View(func(txn *badger.Txn) error {
		for _, t := range []byte{tMemberV1, tMemberOfV1} {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: dataKey("c", gen, t)})
			it.Rewind()
			left := it.Valid()
			it.Close()
			if left {
				return fmt.Errorf("layout 1 keys of type %c remain", t)
			}
		}
		_, err := txn.Get(dataKey("c", gen, tLayout))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
