package cache

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// Test DNs. The group "g" lists dnA, so its members say who holds dnA.
const (
	dnA  = "uid=a,ou=people,dc=x"
	dnA2 = "uid=a,ou=moved,dc=x"
	dnB  = "uid=b,ou=people,dc=x"
	dnC  = "uid=c,ou=people,dc=x"
	dnZ  = "uid=z,ou=people,dc=x"
	dnG  = "cn=g,ou=groups,dc=x"
)

// change is one change a source reports: an upsert, or the deletion of del.
type change struct {
	up  *Entry
	del string
}

func up(id, dn string) change { return change{up: user(id, dn, id+"@x.test")} }
func del(id string) change    { return change{del: id} }

// permutations returns every ordering of 0..n-1.
func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			out = append(out, slices.Insert(slices.Clone(p), i, n-1))
		}
	}
	return out
}

// TestApplyDeltaOrder applies each delta in every order a source could list
// its changes in: the result must depend only on the state the changes
// describe, and a delta whose final state has two entries with one DN must
// be refused whole, in every order.
func TestApplyDeltaOrder(t *testing.T) {
	cases := []struct {
		name    string
		before  map[string]string // DN -> ID of the users served before
		changes []change
		after   map[string]string // DN -> ID after; nil: the delta is refused
		counts  DeltaCounts
	}{
		{
			name:    "rename, and a new entry at the old DN",
			before:  map[string]string{dnA: "a"},
			changes: []change{up("a", dnA2), up("n", dnA)},
			after:   map[string]string{dnA2: "a", dnA: "n"},
			counts:  DeltaCounts{Added: 1, Updated: 1},
		},
		{
			name:    "swap of two DNs",
			before:  map[string]string{dnA: "a", dnB: "b"},
			changes: []change{up("a", dnB), up("b", dnA)},
			after:   map[string]string{dnB: "a", dnA: "b"},
			counts:  DeltaCounts{Updated: 2},
		},
		{
			name:    "rotation of three DNs",
			before:  map[string]string{dnA: "a", dnB: "b", dnC: "c"},
			changes: []change{up("a", dnB), up("b", dnC), up("c", dnA)},
			after:   map[string]string{dnB: "a", dnC: "b", dnA: "c"},
			counts:  DeltaCounts{Updated: 3},
		},
		{
			name:    "delete, and a new entry at its DN",
			before:  map[string]string{dnA: "a"},
			changes: []change{up("n", dnA), del("a")},
			after:   map[string]string{dnA: "n"},
			counts:  DeltaCounts{Added: 1, Deleted: 1},
		},
		{
			name:    "rename onto a deleted entry's DN, and a new entry at the old DN",
			before:  map[string]string{dnA: "a", dnB: "b"},
			changes: []change{up("n", dnA), up("a", dnB), del("b")},
			after:   map[string]string{dnB: "a", dnA: "n"},
			counts:  DeltaCounts{Added: 1, Updated: 1, Deleted: 1},
		},
		{
			name:    "two entries end with one DN",
			before:  map[string]string{dnA: "a", dnB: "b"},
			changes: []change{up("a", dnZ), up("b", dnZ)},
		},
		{
			name:    "a new entry at the DN a renamed entry moves to",
			before:  map[string]string{dnA: "a"},
			changes: []change{up("a", dnZ), up("n", dnZ)},
		},
		{
			name:    "rename onto an entry the delta does not change",
			before:  map[string]string{dnA: "a", dnC: "c"},
			changes: []change{up("a", dnC), up("n", dnA)},
		},
		{
			name:    "rename onto an entry the delta lists unchanged",
			before:  map[string]string{dnA: "a", dnC: "c"},
			changes: []change{up("a", dnC), up("c", dnC)},
		},
	}
	for _, tc := range cases {
		for _, order := range permutations(len(tc.changes)) {
			d := &Delta{}
			var listed []string
			for _, i := range order {
				ch := tc.changes[i]
				if ch.del != "" {
					d.Deletes = append(d.Deletes, ch.del)
					listed = append(listed, "-"+ch.del)
					continue
				}
				c := *ch.up
				d.Upserts = append(d.Upserts, &c)
				listed = append(listed, c.ID)
			}
			t.Run(tc.name+"/"+strings.Join(listed, ","), func(t *testing.T) {
				checkDelta(t, tc.before, d, tc.after, tc.counts)
			})
		}
	}
}

// TestApplyDeltaSameEntryTwice: a source may list an entry once per change
// it made in the window; its last state is the one that counts, and the
// states before it leave nothing behind (a DN, index keys, member links).
func TestApplyDeltaSameEntryTwice(t *testing.T) {
	grp := func(members ...string) *Entry {
		return &Entry{ID: "g", DN: dnG, Kind: KindGroup, Members: members, Attrs: []Attr{{Name: "cn", Values: []string{"g"}}}}
	}
	cases := []struct {
		name    string
		upserts []*Entry
		after   map[string]string
		counts  DeltaCounts
	}{
		{
			name:    "renamed twice, a new entry at the first DN",
			upserts: []*Entry{user("a", dnZ, "a@x.test"), user("n", dnA, "n@x.test"), user("a", dnA2, "a@x.test")},
			after:   map[string]string{dnA2: "a", dnA: "n"},
			counts:  DeltaCounts{Added: 1, Updated: 1},
		},
		{
			name:    "renamed and back",
			upserts: []*Entry{user("a", dnZ, "a@x.test"), user("a", dnA, "a@x.test")},
			after:   map[string]string{dnA: "a"},
			counts:  DeltaCounts{Unchanged: 1},
		},
		{
			name:    "group changed and back",
			upserts: []*Entry{grp(dnA, dnA2), user("a", dnA2, "a@x.test"), user("n", dnA, "n@x.test"), grp(dnA)},
			after:   map[string]string{dnA2: "a", dnA: "n"},
			counts:  DeltaCounts{Added: 1, Updated: 1, Unchanged: 1},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkDelta(t, map[string]string{dnA: "a"}, &Delta{Upserts: tc.upserts}, tc.after, tc.counts)
		})
	}
}

// checkDelta serves before (DN -> ID of a user, and group g listing dnA),
// applies d, and checks the counts and what lookups find after: after
// (DN -> ID), or before again when after is nil and d must be refused.
func checkDelta(t *testing.T, before map[string]string, d *Delta, after map[string]string, counts DeltaCounts) {
	t.Helper()
	// The in-memory index only proposes candidates; with it or without,
	// lookups must answer the same. A delta too large for a transaction
	// is written as a new generation, which must answer the same too.
	type applyFunc func(s *Store, ctx context.Context, conn string, d *Delta, cursor []byte, run *Run, dryRun bool, rep *replay) (DeltaCounts, error)
	for _, tc := range []struct {
		hot   bool
		path  string
		apply applyFunc
	}{
		{false, "transaction", (*Store).applyInTxn}, {true, "transaction", (*Store).applyInTxn},
		{false, "new generation", (*Store).rewriteDelta}, {true, "new generation", (*Store).rewriteDelta},
	} {
		name := fmt.Sprintf("hot index %v, %s", tc.hot, tc.path)
		s, err := Open(t.TempDir(), Options{HotIndex: tc.hot})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		served := []*Entry{{ID: "g", DN: dnG, Kind: KindGroup, Members: []string{dnA},
			Attrs: []Attr{{Name: "cn", Values: []string{"g"}}}}}
		for dn, id := range before {
			served = append(served, user(id, dn, id+"@x.test"))
		}
		commitAll(t, s, "corp", served...)
		s.hotBuilds.Wait()
		ctx := context.Background()
		got, err := tc.apply(s, ctx, "corp", d, []byte("next"), nil, false, nil)
		want, wantCursor := after, "next"
		if after == nil {
			if err == nil {
				t.Fatalf("%s: a delta leaving two entries with one DN was applied: %+v", name, got)
			}
			want, wantCursor = before, "cursor-corp"
		} else if err != nil {
			t.Fatalf("%s: %v", name, err)
		} else if got != counts {
			t.Errorf("%s: counts %+v, want %+v", name, got, counts)
		}
		if c, err := s.Cursor("corp"); err != nil || string(c) != wantCursor {
			t.Errorf("%s: cursor %q, %v; want %q", name, c, err, wantCursor)
		}
		dns := slices.Collect(maps.Keys(before))
		for _, e := range d.Upserts {
			if e.Kind == KindUser {
				dns = append(dns, e.DN)
			}
		}
		if g, w := servedState(t, s, dns), describeState(dns, want); g != w {
			t.Errorf("%s: served state:\n%s\nwant:\n%s", name, g, w)
		}
	}
}

// servedState describes what lookups find: the holder of each DN, the
// entries of the connector with the DN their uid and address lookups find,
// and the members of group g.
func servedState(t *testing.T, s *Store, dns []string) string {
	t.Helper()
	var b strings.Builder
	err := s.View(context.Background(), func(v *View) error {
		for _, dn := range sortedUnique(dns) {
			e, err := v.ByDN(dn)
			switch {
			case errors.Is(err, ErrNotFound):
				fmt.Fprintf(&b, "%s: -\n", dn)
			case err != nil:
				return err
			default:
				fmt.Fprintf(&b, "%s: %s\n", dn, e.ID)
			}
		}
		hashes, err := v.Hashes("corp")
		if err != nil {
			return err
		}
		for _, id := range slices.Sorted(maps.Keys(hashes)) {
			if id == "g" {
				continue
			}
			byUID, err := v.ByAttr("uid", id)
			if err != nil {
				return err
			}
			byAddr, err := v.ByAddress(id + "@x.test")
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "%s: uid %s, address %s\n", id, entryDNs(byUID), entryDNs(byAddr))
		}
		g, err := v.Get("corp", "g")
		if err != nil {
			return err
		}
		ids, err := v.MemberIDs(g)
		fmt.Fprintf(&b, "members of g: %v\n", ids)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// describeState is what servedState must find when state (DN -> ID) is
// served.
func describeState(dns []string, state map[string]string) string {
	var b strings.Builder
	for _, dn := range sortedUnique(dns) {
		id := state[dn]
		if id == "" {
			id = "-"
		}
		fmt.Fprintf(&b, "%s: %s\n", dn, id)
	}
	dnOf := map[string]string{}
	for dn, id := range state {
		dnOf[id] = dn
	}
	for _, id := range slices.Sorted(maps.Keys(dnOf)) {
		fmt.Fprintf(&b, "%s: uid [%s], address [%s]\n", id, dnOf[id], dnOf[id])
	}
	var members []string
	if id := state[dnA]; id != "" {
		members = append(members, id)
	}
	fmt.Fprintf(&b, "members of g: %v\n", members)
	return b.String()
}

func entryDNs(es []*Entry) string {
	var out []string
	for _, e := range es {
		out = append(out, e.DN)
	}
	return "[" + strings.Join(out, " ") + "]"
}

func sortedUnique(ss []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(ss)))
}
