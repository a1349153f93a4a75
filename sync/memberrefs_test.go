package dirsync_test

import (
	"context"
	"slices"
	"testing"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/dirtype"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/memsource"
)

// TestMemberRefsFollowedWithFreshGroups: in a directory with member
// integrity, a member is renamed and one of its groups changes upstream in
// the same window. The incremental run rewrites the group it was not sent
// (shown in the plan, in a dry run too), takes the one it was sent as the
// upstream sent it, and ends where a full sync does.
func TestMemberRefsFollowedWithFreshGroups(t *testing.T) {
	typ := dirtype.ActiveDirectoryType
	typ.Name = "memberrefs-test"
	remove, err := dirtype.Register(&typ)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(remove)
	ctx := context.Background()
	dir := memsource.New(memsource.WithMemberIntegrity("member"))
	const dnA, renamed, dnB = "uid=a,ou=people,dc=x", "uid=a2,ou=people,dc=x", "uid=b,ou=people,dc=x"
	ids := map[string]string{"a": add(t, dir, "a", dnA), "b": add(t, dir, "b", dnB)}
	group := func(name string, members ...string) {
		ids[name] = addEntry(t, dir, &cache.Entry{DN: "cn=" + name + ",ou=groups,dc=x", Kind: cache.KindGroup, Members: members,
			Attrs: []cache.Attr{{Name: "cn", Values: []string{name}}, {Name: "member", Values: members}}})
	}
	group("fresh", dnA, dnB)
	group("stale", dnA)
	e, s, c := newEngine(t)
	c.Type = typ.Name
	src := dir.Source("mem")
	if _, err := e.Run(ctx, c, src, dirsync.Options{Mode: dirsync.ModeFull}); err != nil {
		t.Fatal(err)
	}
	must(t, dir.Modify(ids["a"], func(e *cache.Entry) { e.DN = renamed }))
	must(t, dir.Modify(ids["fresh"], func(e *cache.Entry) {
		e.Attrs = append(e.Attrs, cache.Attr{Name: "description", Values: []string{"changed upstream"}})
	}))

	dry, err := e.Run(ctx, c, src, dirsync.Options{Mode: dirsync.ModeIncremental, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	var planned []string
	for _, it := range dry.Plan.Updates {
		planned = append(planned, it.ID)
	}
	slices.Sort(planned)
	want := []string{ids["a"], ids["fresh"], ids["stale"]}
	slices.Sort(want)
	if !slices.Equal(planned, want) || dry.Updated != 3 {
		t.Errorf("dry run: planned updates %v (%d counted), want a, fresh and stale %v", planned, dry.Updated, want)
	}
	res, err := e.Run(ctx, c, src, dirsync.Options{Mode: dirsync.ModeIncremental})
	if err != nil || res.Updated != 3 || res.Added+res.Deleted != 0 {
		t.Fatalf("incremental run: %+v, %v; want 3 updates", res.Run, err)
	}
	err = s.View(ctx, func(v *cache.View) error {
		for name, wantMembers := range map[string][]string{"fresh": {renamed, dnB}, "stale": {renamed}} {
			g, err := v.Get(c.Name, ids[name])
			if err != nil {
				return err
			}
			if !slices.Equal(g.Members, wantMembers) || !slices.Equal(g.Values("member"), wantMembers) {
				t.Errorf("group %s lists %v (attribute %v), want %v", name, g.Members, g.Values("member"), wantMembers)
			}
			if name == "fresh" && g.First("description") != "changed upstream" {
				t.Errorf("group fresh lost the change the upstream sent: %+v", g.Attrs)
			}
		}
		a, err := v.ByDN(renamed)
		if err != nil {
			return err
		}
		groups, err := v.MemberOf(a)
		if err != nil || len(groups) != 2 {
			t.Errorf("the renamed member is in %v (%v), want both groups", groups, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err = e.Run(ctx, c, src, dirsync.Options{Mode: dirsync.ModeFull})
	if err != nil || res.Added+res.Updated+res.Deleted != 0 {
		t.Fatalf("a full sync after the incremental one finds changes: %+v, %v", res.Run, err)
	}
}

// TestMemberOfFollowsGroups: in a directory that keeps memberOf back-links
// on members without reporting the members as changed, as Active Directory
// does, an incremental run that sees a group's membership or DN change, or
// its deletion, rewrites the cached members' memberOf as the directory did
// (value for value, in order), so that a full run finds nothing to change.
func TestMemberOfFollowsGroups(t *testing.T) {
	typ := dirtype.ActiveDirectoryType
	typ.Name = "memberof-test"
	remove, err := dirtype.Register(&typ)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(remove)
	const people, groups = ",ou=people,dc=x", ",ou=groups,dc=x"
	group := func(name string, members ...string) *cache.Entry {
		return &cache.Entry{DN: "cn=" + name + groups, Kind: cache.KindGroup, Members: members,
			Attrs: []cache.Attr{{Name: "cn", Values: []string{name}}, {Name: "member", Values: members}}}
	}
	setMembers := func(members ...string) func(e *cache.Entry) {
		return func(e *cache.Entry) { e.Members, e.Attrs[1].Values = members, members }
	}
	a, b, c := "uid=a"+people, "uid=b"+people, "uid=c"+people
	g1, g2 := "cn=g1"+groups, "cn=g2"+groups
	cases := []struct {
		name   string
		change func(t *testing.T, dir *memsource.Dir, ids map[string]string)
	}{
		{"member added", func(t *testing.T, dir *memsource.Dir, ids map[string]string) {
			must(t, dir.Modify(ids["g2"], setMembers(a, b)))
		}},
		{"member removed", func(t *testing.T, dir *memsource.Dir, ids map[string]string) {
			must(t, dir.Modify(ids["g1"], setMembers(b)))
		}},
		{"group renamed", func(t *testing.T, dir *memsource.Dir, ids map[string]string) {
			must(t, dir.Modify(ids["g1"], func(e *cache.Entry) { e.DN = "CN=G1 Renamed" + groups }))
		}},
		{"nesting group renamed", func(t *testing.T, dir *memsource.Dir, ids map[string]string) {
			must(t, dir.Modify(ids["g3"], func(e *cache.Entry) { e.DN = `cn=g3\, renamed` + groups }))
		}},
		{"group deleted", func(t *testing.T, dir *memsource.Dir, ids map[string]string) {
			must(t, dir.Delete(ids["g1"]))
		}},
		{"group added", func(t *testing.T, dir *memsource.Dir, ids map[string]string) {
			addEntry(t, dir, group("g4", c, a))
		}},
		{"member renamed and removed from another group", func(t *testing.T, dir *memsource.Dir, ids map[string]string) {
			must(t, dir.Modify(ids["a"], func(e *cache.Entry) { e.DN = "uid=a2" + people }))
			must(t, dir.Modify(ids["g2"], setMembers()))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := memsource.New(memsource.WithMemberIntegrity("member"), memsource.WithMemberOf("memberOf"))
			ids := map[string]string{"a": add(t, dir, "a", a), "b": add(t, dir, "b", b), "c": add(t, dir, "c", c)}
			ids["g1"] = addEntry(t, dir, group("g1", a, b))
			ids["g2"] = addEntry(t, dir, group("g2", a))
			ids["g3"] = addEntry(t, dir, group("g3", g1, g2))
			e, s, conn := newEngine(t)
			conn.Type = typ.Name
			src := dir.Source("mem")
			if _, err := e.Run(ctx, conn, src, dirsync.Options{Mode: dirsync.ModeFull}); err != nil {
				t.Fatal(err)
			}
			tc.change(t, dir, ids)
			if _, err := e.Run(ctx, conn, src, dirsync.Options{Mode: dirsync.ModeIncremental}); err != nil {
				t.Fatal(err)
			}
			err := s.View(ctx, func(v *cache.View) error {
				for name, id := range ids {
					want, ok := dir.Get(id)
					if !ok {
						continue
					}
					got, err := v.Get(conn.Name, id)
					if err != nil {
						return err
					}
					if !slices.Equal(got.Values("memberOf"), want.Values("memberOf")) {
						t.Errorf("%s has memberOf %q, the directory %q", name, got.Values("memberOf"), want.Values("memberOf"))
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			res, err := e.Run(ctx, conn, src, dirsync.Options{Mode: dirsync.ModeFull})
			if err != nil || res.Added+res.Updated+res.Deleted != 0 {
				t.Errorf("a full sync after the incremental one finds changes: %+v, %v", res.Plan, err)
			}
		})
	}
}
