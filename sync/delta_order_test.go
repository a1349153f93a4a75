package dirsync_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/memsource"
)

// TestIncrementalAfterRenames makes DN changes that a source lists, in its
// change order, with an entry taking a DN before the entry that held it is
// listed as leaving it. The incremental run must apply them, advance the
// cursor, and serve what a full sync serves.
func TestIncrementalAfterRenames(t *testing.T) {
	const (
		dnA   = "uid=a,ou=people,dc=x"
		dnB   = "uid=b,ou=people,dc=x"
		moved = "uid=a,ou=moved,dc=x"
		tmp   = "uid=tmp,ou=moved,dc=x"
	)
	cases := []struct {
		name   string
		before []string // DNs of the users before, by name: "a" and "b"
		change func(t *testing.T, d *memsource.Dir, ids map[string]string)
	}{
		{
			// The source lists n, then a, which changed last.
			name:   "rename, a new entry at the old DN, the renamed entry changed again",
			before: []string{dnA},
			change: func(t *testing.T, d *memsource.Dir, ids map[string]string) {
				must(t, d.Modify(ids["a"], func(e *cache.Entry) { e.DN = moved }))
				ids["n"] = add(t, d, "n", dnA)
				must(t, d.Modify(ids["a"], func(e *cache.Entry) { e.Attrs = append(e.Attrs, cache.Attr{Name: "cn", Values: []string{"a"}}) }))
			},
		},
		{
			// The source lists b, which takes a's DN, then a.
			name:   "swap of two DNs",
			before: []string{dnA, dnB},
			change: func(t *testing.T, d *memsource.Dir, ids map[string]string) {
				must(t, d.Modify(ids["a"], func(e *cache.Entry) { e.DN = tmp }))
				must(t, d.Modify(ids["b"], func(e *cache.Entry) { e.DN = dnA }))
				must(t, d.Modify(ids["a"], func(e *cache.Entry) { e.DN = dnB }))
			},
		},
		{
			name:   "delete, and a new entry at its DN",
			before: []string{dnA},
			change: func(t *testing.T, d *memsource.Dir, ids map[string]string) {
				must(t, d.Delete(ids["a"]))
				ids["n"] = add(t, d, "n", dnA)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := memsource.New()
			ids := map[string]string{}
			for i, d := range tc.before {
				name := string(rune('a' + i))
				ids[name] = add(t, dir, name, d)
			}
			ids["g"] = addEntry(t, dir, &cache.Entry{DN: "cn=g,ou=groups,dc=x", Kind: cache.KindGroup,
				Members: []string{dnA}, Attrs: []cache.Attr{{Name: "cn", Values: []string{"g"}}}})
			src := dir.Source("mem")
			e, s, c := newEngine(t)
			if _, err := e.Run(ctx, c, src, dirsync.Options{Mode: dirsync.ModeFull}); err != nil {
				t.Fatal(err)
			}
			tc.change(t, dir, ids)
			if _, err := e.Run(ctx, c, src, dirsync.Options{Mode: dirsync.ModeIncremental}); err != nil {
				t.Fatalf("incremental run: %v", err)
			}
			checkServed(t, s, dir, ids, []string{dnA, dnB, moved, tmp})
			res, err := e.Run(ctx, c, src, dirsync.Options{Mode: dirsync.ModeIncremental})
			if err != nil || res.Read != 0 {
				t.Fatalf("the next incremental run does not start after the changes: read %d, %v", res.Read, err)
			}
			res, err = e.Run(ctx, c, src, dirsync.Options{Mode: dirsync.ModeFull})
			if err != nil || res.Added+res.Updated+res.Deleted != 0 {
				t.Fatalf("a full sync after the incremental one finds changes: %+v, %v", res.Run, err)
			}
		})
	}
}

func newEngine(t *testing.T) (*dirsync.Engine, *cache.Store, *config.Connector) {
	t.Helper()
	s, err := cache.Open(t.TempDir(), cache.Options{HotIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := &config.Connector{Name: "c", Type: "openldap", FullSyncInterval: config.Duration(time.Hour),
		Safety: config.Safety{MaxDeletes: 5, MaxDeletePercent: 50}}
	return dirsync.New(s, s.States(), nil), s, c
}

// checkServed compares what the cache serves with the directory: who holds
// each DN, each user's address lookup, and the members of group g, which
// lists the first DN.
func checkServed(t *testing.T, s *cache.Store, dir *memsource.Dir, ids map[string]string, dns []string) {
	t.Helper()
	holder := map[string]string{}
	for name, id := range ids {
		if e, ok := dir.Get(id); ok {
			holder[e.DN] = name
		}
	}
	name := map[string]string{}
	for n, id := range ids {
		name[id] = n
	}
	err := s.View(context.Background(), func(v *cache.View) error {
		for _, d := range dns {
			got := "-"
			e, err := v.ByDN(d)
			switch {
			case err == nil:
				got = name[e.ID]
			case !errors.Is(err, cache.ErrNotFound):
				return err
			}
			if want := holder[d]; got != want && (got != "-" || want != "") {
				t.Errorf("%s is served as %s, the directory has %q there", d, got, want)
			}
		}
		for d, n := range holder {
			if n == "g" {
				continue
			}
			es, err := v.ByAddress(n + "@x.test")
			if err != nil {
				return err
			}
			if len(es) != 1 || es[0].DN != d {
				t.Errorf("address of %s finds %d entries (%v), want the one at %s", n, len(es), es, d)
			}
		}
		g, err := v.Get("c", ids["g"])
		if err != nil {
			return err
		}
		members, err := v.MemberIDs(g)
		if err != nil {
			return err
		}
		var got []string
		for _, id := range members {
			got = append(got, name[id])
		}
		if want := holder[dns[0]]; fmt.Sprint(got) != fmt.Sprint([]string{want}) {
			t.Errorf("members of g = %v, want [%s]", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// add adds a user named name at dn and returns its ID.
func add(t *testing.T, d *memsource.Dir, name, dn string) string {
	t.Helper()
	return addEntry(t, d, &cache.Entry{DN: dn, Kind: cache.KindUser, Addresses: []string{name + "@x.test"},
		Attrs: []cache.Attr{{Name: "uid", Values: []string{name}}}})
}

func addEntry(t *testing.T, d *memsource.Dir, e *cache.Entry) string {
	t.Helper()
	id, err := d.Add(e)
	must(t, err)
	return id
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
