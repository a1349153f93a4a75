package cache

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// TestApplyDeltaTooBigForTxn applies a delta far larger than one Badger
// transaction while readers scan: it must apply whole, through a new
// generation, with the cursor, and every reader must see the state before
// it or the state after, never a mix.
func TestApplyDeltaTooBigForTxn(t *testing.T) {
	const n = 6000
	s, err := Open(t.TempDir(), Options{HotIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	versioned := func(i int, v string) *Entry {
		e := user(fmt.Sprintf("u%05d", i), fmt.Sprintf("uid=u%05d,dc=x", i), fmt.Sprintf("u%05d-%s@x.test", i, v))
		e.Attrs = append(e.Attrs, Attr{Name: "description", Values: []string{v}})
		return e
	}
	var before []*Entry
	for i := range n {
		before = append(before, versioned(i, "old"))
	}
	before = append(before, &Entry{ID: "g", DN: "cn=g,dc=x", Kind: KindGroup,
		Members: []string{"uid=u00001,dc=x", "uid=u00200,dc=x"}, Attrs: []Attr{{Name: "cn", Values: []string{"g"}}}})
	commitAll(t, s, "corp", before...)
	base := s.served.Load().gens["corp"]

	// Every user but the first 100 changes; those are deleted, u00001 among
	// them; n more join.
	d := &Delta{}
	for i := range 100 {
		d.Deletes = append(d.Deletes, fmt.Sprintf("u%05d", i))
	}
	for i := 100; i < 2*n; i++ {
		d.Upserts = append(d.Upserts, versioned(i, "new"))
	}
	if _, err := s.applyInTxn(ctx, "corp", d, nil, nil, true, nil); err != errTxnTooBig {
		t.Fatalf("the delta fits one transaction (%v): the test does not test the large path", err)
	}

	// Readers: the number of users in each state must be all before or all
	// after.
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				var old, nu int
				err := s.View(ctx, func(v *View) error {
					return v.Scan("", func(e *Entry) (bool, error) {
						switch e.First("description") {
						case "old":
							old++
						case "new":
							nu++
						}
						return true, nil
					})
				})
				if err != nil {
					errs <- err
					return
				}
				if !(old == n && nu == 0) && !(old == 0 && nu == 2*n-100) {
					errs <- fmt.Errorf("a reader saw %d old and %d new users", old, nu)
					return
				}
			}
		}()
	}
	run := &Run{Connector: "corp", Mode: "incremental"}
	counts, err := s.ApplyDelta(ctx, "corp", d, []byte("c2"), run, false)
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if want := (DeltaCounts{Added: n, Updated: n - 100, Deleted: 100}); counts != want || run.Added != n {
		t.Fatalf("counts %+v (run %+v), want %+v", counts, run, want)
	}
	if s.served.Load().gens["corp"] == base {
		t.Fatal("the delta was not written as a new generation")
	}
	if c, _ := s.Cursor("corp"); string(c) != "c2" {
		t.Fatalf("cursor = %q", c)
	}
	s.drops.Wait()
	err = s.View(ctx, func(v *View) error {
		if got, _ := v.ByAddress("u00200-old@x.test"); len(got) != 0 {
			return fmt.Errorf("an old address still resolves")
		}
		if got, _ := v.ByAddress("u09999-new@x.test"); len(got) != 1 {
			return fmt.Errorf("an added address does not resolve: %v", got)
		}
		if _, err := v.Get("corp", "u00050"); err != ErrNotFound {
			return fmt.Errorf("a deleted user is still served: %v", err)
		}
		g, err := v.Get("corp", "g")
		if err != nil {
			return fmt.Errorf("the unchanged group was not carried over: %w", err)
		}
		if ids, _ := v.MemberIDs(g); fmt.Sprint(ids) != "[u00200]" {
			return fmt.Errorf("members of g = %v, want [u00200]", ids)
		}
		users, groups, err := v.Counts("corp")
		if users != 2*n-100 || groups != 1 {
			return fmt.Errorf("served %d users, %d groups", users, groups)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
