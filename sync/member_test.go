package dirsync

import (
	"context"
	"slices"
	"testing"

	"github.com/dirgate/dirgate/cache"
)

// TestMembershipAfterRename follows the upstream without referential
// integrity: a member is renamed away from the DN its group lists, then a
// new entry takes that DN. The group never changes upstream, yet its member
// value must name the new entry after every kind of run, and a full run
// must agree with the incremental ones it follows.
func TestMembershipAfterRename(t *testing.T) {
	e, s, c := setup(t)
	ctx := context.Background()
	src := newFake(3)
	const oldDN = "uid=u001,dc=x"
	src.entries["g"] = &cache.Entry{ID: "g", DN: "cn=g,dc=x", Kind: cache.KindGroup, Members: []string{oldDN},
		Attrs: []cache.Attr{{Name: "cn", Values: []string{"g"}}, {Name: "member", Values: []string{oldDN}}}}
	if _, err := e.Run(ctx, c, src, Options{}); err != nil {
		t.Fatal(err)
	}
	groupsOf := func(id string) []string {
		t.Helper()
		var out []string
		err := s.View(ctx, func(v *cache.View) error {
			en, err := v.Get("c", id)
			if err != nil {
				return err
			}
			gs, err := v.Groups(en)
			for _, g := range gs {
				out = append(out, g.ID)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := groupsOf("u001"); !slices.Equal(got, []string{"g"}) {
		t.Fatalf("before the rename: groups of u001 %v", got)
	}

	src.place("u001", "uid=u001,ou=moved,dc=x")
	res, err := e.Run(ctx, c, src, Options{})
	if err != nil || res.Mode != ModeIncremental || res.Updated != 1 {
		t.Fatalf("rename: %+v %v", res.Run, err)
	}
	if got := groupsOf("u001"); len(got) != 0 {
		t.Errorf("after the rename: the moved entry keeps the groups of its old DN: %v", got)
	}

	src.place("fresh", oldDN)
	for _, mode := range []string{ModeIncremental, ModeFull} {
		if _, err := e.Run(ctx, c, src, Options{Mode: mode}); err != nil {
			t.Fatalf("%s run: %v", mode, err)
		}
		if got := groupsOf("fresh"); !slices.Equal(got, []string{"g"}) {
			t.Errorf("%s run: the new entry at the old DN has groups %v, want [g]", mode, got)
		}
		if got := groupsOf("u001"); len(got) != 0 {
			t.Errorf("%s run: the moved entry has groups %v, want none", mode, got)
		}
	}
}

// place puts the user id at dn, as an add or a rename.
func (f *fakeSource) place(id, dn string) {
	e := f.entry(id)
	e.DN = dn
	f.entries[id] = e
	c := *e
	f.log = append(f.log, Change{Upsert: &c})
}
