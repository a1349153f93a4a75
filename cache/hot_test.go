package cache

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// lookup is one lookup of a probe, through the index (find) and by
// reading every entry (t and parts: the index key it looks up).
type lookup struct {
	name  string
	find  func(v *View) ([]*Entry, error)
	t     byte
	parts []string
}

func lookupsOf(probe string) []lookup {
	attr := func(name string) lookup {
		key, _ := IndexKey(name, probe)
		return lookup{name, func(v *View) ([]*Entry, error) { return v.ByAttr(name, probe) }, tAttr, []string{name, key}}
	}
	return []lookup{
		{"addr", func(v *View) ([]*Entry, error) { return v.ByAddress(probe) }, tAddr, []string{NormalizeAddress(probe)}},
		attr("mail"), attr("uid"), attr("cn"),
	}
}

// lookups returns what every probe finds, as "probe: conn/id ..." lines:
// through the index, and by reading every entry of the view.
func lookups(t *testing.T, s *Store, probes []string) (indexed, scanned string) {
	t.Helper()
	var got, want strings.Builder
	err := s.View(context.Background(), func(v *View) error {
		var all []*Entry
		if err := v.Scan("", func(e *Entry) (bool, error) { all = append(all, e); return true, nil }); err != nil {
			return err
		}
		// As byIndex returns them: connector by connector, by ID.
		slices.SortFunc(all, func(a, b *Entry) int {
			return strings.Compare(a.Connector+"\x00"+a.ID, b.Connector+"\x00"+b.ID)
		})
		for _, p := range probes {
			for _, q := range lookupsOf(p) {
				es, err := q.find(v)
				if err != nil {
					return err
				}
				fmt.Fprintf(&got, "%s %s:", q.name, p)
				fmt.Fprintf(&want, "%s %s:", q.name, p)
				for _, e := range es {
					fmt.Fprintf(&got, " %s/%s", e.Connector, e.ID)
				}
				for _, e := range all {
					if holds(e, q.t, q.parts) {
						fmt.Fprintf(&want, " %s/%s", e.Connector, e.ID)
					}
				}
				got.WriteByte('\n')
				want.WriteByte('\n')
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got.String(), want.String()
}

func randomUser(r *rand.Rand, id string) *Entry {
	pick := func() string { return fmt.Sprintf("v%d", r.IntN(12)) }
	e := user(id, "uid="+id+",dc=x", pick()+"@x.test", pick()+"@x.test")
	e.Attrs = append(e.Attrs, Attr{Name: "cn", Values: []string{strings.ToUpper(pick()), pick()}})
	e.Attrs[2].Values = []string{pick()} // uid
	return e
}

// A lookup must find exactly the entries that hold the key: through full
// syncs, deltas that add, change and delete, and a reopen, on a store that
// builds its index at Open and during full syncs and on one that builds it
// at the first lookup.
func TestIndexMatchesScan(t *testing.T) {
	dir := t.TempDir()
	hot, err := Open(dir, Options{HotIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	cold := openTest(t)
	var probes []string
	for i := range 12 {
		probes = append(probes, fmt.Sprintf("v%d@x.test", i), fmt.Sprintf("v%d", i), fmt.Sprintf("V%d", i))
	}
	r := rand.New(rand.NewPCG(1, 2))
	ids := []string{"a", "b", "c", "d", "e", "f"}
	check := func(step string) {
		t.Helper()
		for name, s := range map[string]*Store{"built at open": hot, "built at first lookup": cold} {
			if got, want := lookups(t, s, probes); got != want {
				t.Fatalf("%s, index %s: found:\n%s\nheld:\n%s", step, name, got, want)
			}
		}
	}
	both := func(f func(s *Store)) { f(hot); f(cold) }
	for round := range 3 {
		var full []*Entry
		for _, id := range ids[:3+round] {
			full = append(full, randomUser(r, id))
		}
		z := randomUser(r, "z")
		both(func(s *Store) { commitAll(t, s, "c", full...) })
		both(func(s *Store) { commitAll(t, s, "d", z) })
		check(fmt.Sprintf("full sync %d", round))
		for step := range 8 {
			d := &Delta{Deletes: []string{ids[r.IntN(len(ids))]}}
			for range 2 {
				d.Upserts = append(d.Upserts, randomUser(r, ids[r.IntN(len(ids))]))
			}
			d.Upserts = slices.CompactFunc(d.Upserts, func(a, b *Entry) bool { return a.ID == b.ID })
			for _, s := range []*Store{hot, cold} {
				// Fresh copies: ApplyDelta normalises the entries it gets.
				dd := &Delta{Deletes: d.Deletes}
				for _, e := range d.Upserts {
					c := *e
					c.Attrs = slices.Clone(e.Attrs)
					dd.Upserts = append(dd.Upserts, &c)
				}
				if _, err := s.ApplyDelta(context.Background(), "c", dd, nil, nil, false); err != nil {
					t.Fatal(err)
				}
			}
			check(fmt.Sprintf("round %d delta %d", round, step))
		}
	}
	// Reopened, the index is loaded from the records and the deltas' keys.
	if err := hot.Close(); err != nil {
		t.Fatal(err)
	}
	if hot, err = Open(dir, Options{HotIndex: true}); err != nil {
		t.Fatal(err)
	}
	defer hot.Close()
	hot.hotBuilds.Wait()
	if x := hot.hotFor("c", hot.served.Load().gens["c"]); x == nil || !x.ready.Load() {
		t.Fatal("no in-memory index after reopening")
	}
	check("reopened")
}

// A view opened before a delta commits must not see, through the index,
// the entries the delta adds; one opened after must.
func TestHotIndexSnapshot(t *testing.T) {
	s, err := Open(t.TempDir(), Options{HotIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	commitAll(t, s, "c", user("a", "uid=a,dc=x", "a@x.test"))
	ctx := context.Background()
	err = s.View(ctx, func(before *View) error {
		d := &Delta{Upserts: []*Entry{user("a", "uid=a,dc=x", "new@x.test"), user("b", "uid=b,dc=x", "a@x.test")}}
		if _, err := s.ApplyDelta(ctx, "c", d, nil, nil, false); err != nil {
			return err
		}
		return expectAddresses(before, "view from before the delta", map[string]string{"a@x.test": "a", "new@x.test": ""})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(ctx, func(after *View) error {
		return expectAddresses(after, "view from after the delta", map[string]string{"a@x.test": "b", "new@x.test": "a"})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// expectAddresses checks which entry IDs each address resolves to in v.
func expectAddresses(v *View, what string, want map[string]string) error {
	for addr, w := range want {
		es, err := v.ByAddress(addr)
		if err != nil {
			return err
		}
		if got := ids(es); got != w {
			return fmt.Errorf("%s: %s -> %q, want %q", what, addr, got, w)
		}
	}
	return nil
}

func ids(es []*Entry) string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	return strings.Join(out, ",")
}
