package dirsync_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/dirgate/dirgate/cache"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/memsource"
)

// TestFullRunAppliesSmallPlanAsDelta runs full syncs over 300 users and a
// group. One that changes a few entries (updates, a rename the group
// follows, an add, a delete) must change the served generation in place
// rather than write a new one, and serve exactly what a first sync of the
// same directory into an empty cache serves, with its counts, run record
// and cursor. One that changes more than a tenth of the entries writes a
// new generation, again serving the same.
func TestFullRunAppliesSmallPlanAsDelta(t *testing.T) {
	const n = 300
	ctx := context.Background()
	dir := memsource.New()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = add(t, dir, fmt.Sprintf("u%03d", i), fmt.Sprintf("uid=u%03d,ou=people,dc=x", i))
	}
	member := func(dns ...string) func(*cache.Entry) {
		return func(e *cache.Entry) {
			e.Members = dns
			e.Attrs = []cache.Attr{{Name: "cn", Values: []string{"g"}}, {Name: "member", Values: dns}}
		}
	}
	g := &cache.Entry{DN: "cn=g,dc=x", Kind: cache.KindGroup}
	member("uid=u000,ou=people,dc=x", "uid=u001,ou=people,dc=x")(g)
	gid := addEntry(t, dir, g)
	src := dir.Source("mem")
	e, s, c := newEngine(t)
	if _, err := e.Run(ctx, c, src, dirsync.Options{Mode: dirsync.ModeFull}); err != nil {
		t.Fatal(err)
	}

	for _, id := range ids[10:14] {
		must(t, dir.Modify(id, func(e *cache.Entry) {
			e.Attrs = append(e.Attrs, cache.Attr{Name: "description", Values: []string{"changed"}})
		}))
	}
	must(t, dir.Modify(ids[1], func(e *cache.Entry) { e.DN = "uid=u001,ou=moved,dc=x" }))
	must(t, dir.Modify(gid, member("uid=u000,ou=people,dc=x", "uid=u001,ou=moved,dc=x", "uid=u002,ou=people,dc=x")))
	add(t, dir, "new", "uid=new,ou=people,dc=x")
	must(t, dir.Delete(ids[20]))

	small := []struct {
		name    string
		dryRun  bool
		newGen  bool
		changes [3]int // added, updated, deleted
	}{
		{"dry run of a small plan", true, false, [3]int{1, 6, 1}},
		{"small plan", false, false, [3]int{1, 6, 1}},
	}
	// A run killed while reading writes nothing.
	before, want := servedGen(t, s), dump(t, s)
	killed := &cutSource{Source: src, after: n / 2, err: context.Canceled}
	if _, err := e.Run(ctx, c, killed, dirsync.Options{Mode: dirsync.ModeFull}); err == nil {
		t.Fatal("a killed full run succeeded")
	}
	if servedGen(t, s) != before || dump(t, s) != want {
		t.Error("a full run killed while reading changed the cache")
	}

	for _, tc := range small {
		before := servedGen(t, s)
		want := dump(t, s)
		res, err := e.Run(ctx, c, src, dirsync.Options{Mode: dirsync.ModeFull, DryRun: tc.dryRun})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := [3]int{res.Added, res.Updated, res.Deleted}; got != tc.changes || res.Unchanged != n+1-6-1 {
			t.Errorf("%s: added, updated, deleted %v, unchanged %d; want %v, %d", tc.name, got, res.Unchanged, tc.changes, n+1-6-1)
		}
		if after := servedGen(t, s); after != before {
			t.Errorf("%s: the served generation changed from %d to %d", tc.name, before, after)
		}
		if tc.dryRun {
			if got := dump(t, s); got != want {
				t.Errorf("%s changed the cache", tc.name)
			}
			continue
		}
		runs, err := s.Runs(ctx, c.Name, 1)
		if err != nil || len(runs) != 1 || runs[0].Updated != 6 || runs[0].Unchanged != n+1-6-1 || runs[0].Mode != dirsync.ModeFull {
			t.Errorf("%s: recorded run %+v, %v", tc.name, runs, err)
		}
		sameAsFirstSync(t, dir, s)
	}

	// A plan above a tenth of the cache takes a new generation.
	for _, id := range ids[100:140] {
		must(t, dir.Modify(id, func(e *cache.Entry) { e.Addresses = append(e.Addresses, "alias-"+e.Addresses[0]) }))
	}
	before = servedGen(t, s)
	res, err := e.Run(ctx, c, src, dirsync.Options{Mode: dirsync.ModeFull})
	if err != nil || res.Updated != 40 || res.Unchanged != n+1-40 {
		t.Fatalf("big plan: %+v %v", res.Run, err)
	}
	if servedGen(t, s) == before {
		t.Error("a full run changing 40 of 300 entries did not write a new generation")
	}
	sameAsFirstSync(t, dir, s)

	res, err = e.Run(ctx, c, src, dirsync.Options{})
	if err != nil || res.Mode != dirsync.ModeIncremental || res.Read != 0 {
		t.Fatalf("the next run does not start after the full runs: mode %s, read %d, %v", res.Mode, res.Read, err)
	}
}

// cutSource lists the first after entries of its source; beyond them it
// fails with err, as a process killed while reading, or with err nil
// leaves the rest out, as an upstream answering partially.
type cutSource struct {
	*memsource.Source
	after int
	err   error
}

func (k *cutSource) Full(ctx context.Context, emit func(*cache.Entry) error) (dirsync.Listing, error) {
	n := 0
	return k.Source.Full(ctx, func(e *cache.Entry) error {
		if n++; n > k.after {
			return k.err
		}
		return emit(e)
	})
}

// sameAsFirstSync syncs dir into an empty cache (a new generation) and
// compares what both caches serve and their cursors.
func sameAsFirstSync(t *testing.T, dir *memsource.Dir, s *cache.Store) {
	t.Helper()
	e, fresh, c := newEngine(t)
	if _, err := e.Run(context.Background(), c, dir.Source("mem"), dirsync.Options{Mode: dirsync.ModeFull}); err != nil {
		t.Fatal(err)
	}
	if got, want := dump(t, s), dump(t, fresh); got != want {
		t.Errorf("the cache serves\n%s\na first sync of the same directory serves\n%s", got, want)
	}
	got, err := s.Cursor(c.Name)
	must(t, err)
	want, err := fresh.Cursor(c.Name)
	must(t, err)
	if string(got) != string(want) {
		t.Errorf("cursor %s, a first sync stores %s", got, want)
	}
}

func servedGen(t *testing.T, s *cache.Store) uint64 {
	t.Helper()
	var gen uint64
	must(t, s.View(context.Background(), func(v *cache.View) error { gen = v.Generation("c"); return nil }))
	return gen
}

// dump describes every served entry and what the lookups find for it: by
// DN, by each address, its groups and, for a group, its members.
func dump(t *testing.T, s *cache.Store) string {
	t.Helper()
	var b strings.Builder
	err := s.View(context.Background(), func(v *cache.View) error {
		return v.Scan("", func(en *cache.Entry) (bool, error) {
			fmt.Fprintf(&b, "%s %s %v %v\n", en.ID, en.DN, en.Addresses, en.Attrs)
			byDN, err := v.ByDN(en.DN)
			if err != nil {
				return false, err
			}
			fmt.Fprintf(&b, "  by DN: %s\n", byDN.ID)
			for _, a := range en.Addresses {
				es, err := v.ByAddress(a)
				if err != nil {
					return false, err
				}
				fmt.Fprintf(&b, "  by %s: %v\n", a, entryIDs(es))
			}
			gs, err := v.Groups(en)
			if err != nil {
				return false, err
			}
			fmt.Fprintf(&b, "  groups: %v\n", entryIDs(gs))
			if en.Kind == cache.KindGroup {
				ms, err := v.MemberIDs(en)
				if err != nil {
					return false, err
				}
				slices.Sort(ms)
				fmt.Fprintf(&b, "  members: %v\n", ms)
			}
			return true, nil
		})
	})
	must(t, err)
	return b.String()
}

func entryIDs(es []*cache.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	slices.Sort(out)
	return out
}

// TestFullRunRewritesADriftedIndex: changes applied in place leave the
// index keys they replace beside the generation. Once those outnumber the
// entries, the next full run writes a new generation, even one that finds
// nothing changed; one the safety rules block writes nothing.
func TestFullRunRewritesADriftedIndex(t *testing.T) {
	const n = 50
	ctx := context.Background()
	dir := memsource.New()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = add(t, dir, fmt.Sprintf("u%03d", i), fmt.Sprintf("uid=u%03d,ou=people,dc=x", i))
	}
	src := dir.Source("mem")
	e, s, c := newEngine(t)
	drifted := func() bool {
		t.Helper()
		d, err := s.IndexDrift(ctx, c.Name, n)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	full := func(what string, wantNewGen bool) {
		t.Helper()
		before := servedGen(t, s)
		if _, err := e.Run(ctx, c, src, dirsync.Options{Mode: dirsync.ModeFull}); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if newGen := servedGen(t, s) != before; newGen != wantNewGen {
			t.Fatalf("%s: new generation %v, want %v", what, newGen, wantNewGen)
		}
		sameAsFirstSync(t, dir, s)
	}
	full("first sync", true)
	// Each round renames a few users' addresses, applied in place: every
	// rename leaves its old keys behind.
	for round := 0; !drifted(); round++ {
		if round == 40 {
			t.Fatal("forty rounds of renames never drifted the index")
		}
		for _, id := range ids[:5] {
			must(t, dir.Modify(id, func(e *cache.Entry) {
				e.Addresses = []string{fmt.Sprintf("r%d-%s", round, e.Addresses[len(e.Addresses)-1])}
			}))
		}
		full(fmt.Sprintf("round %d", round), false)
	}
	// Blocked: a listing that lost most users.
	before := servedGen(t, s)
	var blocked *dirsync.BlockedError
	if _, err := e.Run(ctx, c, &cutSource{Source: src, after: 2}, dirsync.Options{Mode: dirsync.ModeFull}); !errors.As(err, &blocked) {
		t.Fatalf("a full run listing 2 of %d users: %v, want blocked", n, err)
	}
	if servedGen(t, s) != before || !drifted() {
		t.Fatal("a blocked full run wrote a generation")
	}
	full("nothing changed", true)
	if d, err := s.IndexDrift(ctx, c.Name, 0); err != nil || d {
		t.Fatalf("the new generation's index drifted: %v, %v", d, err)
	}
	full("after the rewrite", false)
}
