package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func user(id, dn, mail string, aliases ...string) *Entry {
	return &Entry{ID: id, DN: dn, Kind: KindUser,
		Addresses: append([]string{mail}, aliases...),
		Attrs: []Attr{
			{Name: "objectClass", Values: []string{"inetOrgPerson"}},
			{Name: "mail", Values: append([]string{mail}, aliases...)},
			{Name: "uid", Values: []string{id}},
		}}
}

func commitAll(t *testing.T, s *Store, conn string, entries ...*Entry) {
	t.Helper()
	g, err := s.NewGeneration(conn)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := g.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Commit(context.Background(), []byte("cursor-"+conn), &Run{Connector: conn, Start: time.Now(), Mode: "full", Added: len(entries)}); err != nil {
		t.Fatal(err)
	}
}

func TestIndexes(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	group := &Entry{ID: "g1", DN: `cn=Sales\, EMEA,ou=groups,dc=example,dc=test`, Kind: KindGroup,
		Members: []string{`CN=Doe\2C John,OU=People,DC=Example,DC=Test`, "uid=u2,ou=people,dc=example,dc=test", "uid=gone,ou=people,dc=example,dc=test"},
		Attrs:   []Attr{{Name: "cn", Values: []string{"Sales, EMEA"}}}}
	commitAll(t, s, "corp",
		user("u1", `cn=Doe\, John,ou=people,dc=example,dc=test`, "John.Doe@Example.test", "jd@example.test"),
		user("u2", "uid=u2,ou=people,dc=example,dc=test", "u2@example.test", "shared@example.test"),
		group)
	commitAll(t, s, "other", user("x1", "uid=x1,ou=people,dc=other,dc=test", "x1@other.test", "shared@example.test"))

	err := s.View(ctx, func(v *View) error {
		e, err := v.ByDN(`CN=Doe\2C John,OU=People,DC=EXAMPLE,DC=test`)
		if err != nil || e.ID != "u1" {
			return fmt.Errorf("ByDN: %v %v", e, err)
		}
		got, err := v.ByAddress(" JD@example.TEST ")
		if err != nil || len(got) != 1 || got[0].ID != "u1" {
			return fmt.Errorf("ByAddress alias: %v %v", got, err)
		}
		got, _ = v.ByAddress("shared@example.test")
		if len(got) != 2 {
			return fmt.Errorf("ambiguous address across connectors: got %d entries", len(got))
		}
		got, _ = v.ByAttr("UID", " U2")
		if len(got) != 1 || got[0].DN != "uid=u2,ou=people,dc=example,dc=test" {
			return fmt.Errorf("ByAttr(uid): %v", got)
		}
		if _, err := v.ByAttr("description", "x"); err == nil {
			return fmt.Errorf("ByAttr on an unindexed attribute must fail")
		}
		mo, err := v.MemberOf(e)
		if err != nil || len(mo) != 1 || mo[0] != group.DN {
			return fmt.Errorf("MemberOf: %v %v", mo, err)
		}
		g, _ := v.Get("corp", "g1")
		ids, _ := v.MemberIDs(g)
		if len(ids) != 2 {
			return fmt.Errorf("MemberIDs: %v (the member outside the cache must be skipped)", ids)
		}
		for _, c := range []struct {
			dn   string
			want bool
		}{{"ou=people,dc=example,dc=test", true}, {"dc=test", true}, {"ou=nothere,dc=example,dc=test", false}, {"ou=peopl,dc=example,dc=test", false}} {
			k := dnKeyOf(c.dn)
			if ok, _ := v.Exists(k); ok != c.want {
				return fmt.Errorf("Exists(%q) = %v", c.dn, ok)
			}
		}
		var n int
		if err := v.Scan(dnKeyOf("ou=people,dc=example,dc=test"), func(*Entry) (bool, error) { n++; return true, nil }); err != nil {
			return err
		}
		if n != 2 {
			return fmt.Errorf("subtree scan of ou=people found %d, want 2", n)
		}
		n = 0
		_ = v.Scan("", func(*Entry) (bool, error) { n++; return true, nil })
		if n != 4 {
			return fmt.Errorf("full scan found %d, want 4", n)
		}
		u, gr, _ := v.Counts("corp")
		if u != 2 || gr != 1 {
			return fmt.Errorf("Counts = %d/%d", u, gr)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := s.Cursor("corp")
	if string(cur) != "cursor-corp" {
		t.Errorf("cursor = %q", cur)
	}
	runs, _ := s.Runs(ctx, "corp", 10)
	if len(runs) != 1 || runs[0].Added != 3 {
		t.Errorf("runs = %+v", runs)
	}
}

func TestGenerationIsolation(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	commitAll(t, s, "corp", user("u1", "uid=u1,dc=x", "u1@x.test"))
	g, err := s.NewGeneration("corp")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Put(user("u2", "uid=u2,dc=x", "u2@x.test")); err != nil {
		t.Fatal(err)
	}
	if err := g.wb.Flush(); err != nil { // written, but not committed
		t.Fatal(err)
	}
	g.wb = s.db.NewWriteBatch()
	check := func(wantID string) {
		t.Helper()
		_ = s.View(ctx, func(v *View) error {
			var ids []string
			_ = v.Scan("", func(e *Entry) (bool, error) { ids = append(ids, e.ID); return true, nil })
			if len(ids) != 1 || ids[0] != wantID {
				t.Errorf("served %v, want [%s]", ids, wantID)
			}
			return nil
		})
	}
	check("u1")
	// A reader that started before the flip keeps its snapshot.
	err = s.View(ctx, func(v *View) error {
		if err := g.Commit(ctx, nil, nil); err != nil {
			return err
		}
		if _, err := v.Get("corp", "u1"); err != nil {
			return fmt.Errorf("old snapshot lost u1: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	check("u2")

	g2, err := s.NewGeneration("corp")
	if err != nil {
		t.Fatal(err)
	}
	_ = g2.Put(user("u3", "uid=u3,dc=x", "u3@x.test"))
	g2.Abort()
	check("u2")
}

func TestDuplicateDNRefused(t *testing.T) {
	s := openTest(t)
	g, _ := s.NewGeneration("corp")
	defer g.Abort()
	if err := g.Put(user("a", "uid=a,dc=x", "a@x.test")); err != nil {
		t.Fatal(err)
	}
	if err := g.Put(user("b", "UID=A,DC=X", "b@x.test")); err == nil {
		t.Fatal("two IDs with one DN were accepted")
	}
}

func TestEncodingRoundTrip(t *testing.T) {
	e := user("u1", `cn=J\C3\BCrgen,dc=x`, "j@x.test")
	e.Disabled = true
	e.Members = []string{"a", ""}
	e.Connector = "c"
	e.Normalize()
	got, err := decodeEntry("c", "u1", e.encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash() != e.Hash() || !got.Disabled || got.DN != e.DN || len(got.Attrs) != 3 {
		t.Fatalf("round trip changed the entry: %+v", got)
	}
	for _, bad := range [][]byte{nil, {encVersion}, append(e.encode()[:20:20], 0xff)} {
		if _, err := decodeEntry("c", "u1", bad); !errors.Is(err, errCorrupt) {
			t.Errorf("decode(%x) err = %v", bad, err)
		}
	}
}

func TestHashCachedUntilReordered(t *testing.T) {
	e := &Entry{ID: "x", DN: "cn=x", Kind: KindUser, Attrs: []Attr{{Name: "sn", Values: []string{"a"}}, {Name: "cn", Values: []string{"b"}}}}
	unsorted := e.Hash()
	e.Normalize() // reorders: the cached encoding must go
	sorted := e.Hash()
	if sorted == unsorted {
		t.Fatal("the hash did not follow the reordering")
	}
	fresh := &Entry{ID: "x", DN: "cn=x", Kind: KindUser, Attrs: []Attr{{Name: "cn", Values: []string{"b"}}, {Name: "sn", Values: []string{"a"}}}}
	if fresh.Hash() != sorted {
		t.Fatal("a cached hash differs from a fresh one")
	}
	got, err := decodeEntry("c", "x", e.encode())
	if err != nil || got.Hash() != sorted {
		t.Fatalf("the stored hash does not match the entry: %v", err)
	}
	if got.body != nil {
		t.Fatal("Hash of a decoded entry wrote to it: shared entries would race")
	}
	// A decoded entry changed and written again is stored with the hash of
	// what it now holds.
	got.Disabled = true
	again, err := decodeEntry("c", "x", got.encode())
	changed := &Entry{ID: "x", DN: "cn=x", Kind: KindUser, Disabled: true, Attrs: fresh.Attrs}
	if err != nil || again.Hash() != changed.Hash() || again.Hash() == sorted {
		t.Fatalf("a changed entry kept its old hash: %v", err)
	}
}

// lessFold must order names exactly as the ToLower comparison it replaced:
// the stored hashes of cached entries depend on that order.
func TestLessFoldMatchesToLower(t *testing.T) {
	names := []string{"cn", "CN", "objectClass", "objectclass", "mail", "Mail", "member", "memberOf", "a", "", "z",
		"userPrincipalName", "sAMAccountName", "_x", "Zeta", "ärger", "Äpfel", "x-ÄB", "x-äb", "msDS-X", "msds-x1"}
	for _, a := range names {
		for _, b := range names {
			if got, want := lessFold(a, b), strings.ToLower(a) < strings.ToLower(b); got != want {
				t.Errorf("lessFold(%q, %q) = %v, want %v", a, b, got, want)
			}
		}
	}
}

// TestSweepMetaKind checks that a sweep of one kind leaves the kinds whose
// name it prefixes alone.
func TestSweepMetaKind(t *testing.T) {
	s := openTest(t)
	for _, kv := range [][3]string{{"verifier", "a", "1"}, {"verifier", "b\x00x", "2"}, {"verifierx", "a", "3"}, {"other", "a", "4"}} {
		if err := s.setMeta(kv[0], kv[1], []byte(kv[2])); err != nil {
			t.Fatal(err)
		}
	}
	all := func([]byte) bool { return true }
	n, err := s.sweepMeta(t.Context(), "verifier", all)
	if err != nil || n != 2 {
		t.Fatalf("sweepMeta = %d, %v; want 2, nil", n, err)
	}
	for _, kv := range [][3]string{{"verifier", "a", ""}, {"verifier", "b\x00x", ""}, {"verifierx", "a", "3"}, {"other", "a", "4"}} {
		if v, err := s.getMeta(kv[0], kv[1]); err != nil || string(v) != kv[2] {
			t.Errorf("getMeta(%q, %q) = %q, %v; want %q", kv[0], kv[1], v, err, kv[2])
		}
	}
	if n, err := s.sweepMeta(t.Context(), "verifier", all); err != nil || n != 0 {
		t.Errorf("second sweepMeta = %d, %v; want 0, nil", n, err)
	}
}

func TestProject(t *testing.T) {
	s := openTest(t)
	u := user("u1", "uid=u1,dc=x", "u1@x.test")
	u.Attrs = append(u.Attrs, Attr{Name: "cn", Values: []string{"U One"}}, Attr{Name: "description", Values: []string{"long text"}})
	commitAll(t, s, "c", u)
	var projected []*Entry
	err := s.View(context.Background(), func(v *View) error {
		v.Project(func(name string) bool { return strings.EqualFold(name, "mail") || strings.EqualFold(name, "CN") })
		for _, get := range []func() (*Entry, error){
			func() (*Entry, error) { return v.Get("c", "u1") },
			func() (*Entry, error) {
				es, err := v.ByAddress("u1@x.test")
				if len(es) != 1 {
					return nil, fmt.Errorf("ByAddress: %d entries, %v", len(es), err)
				}
				return es[0], err
			},
		} {
			e, err := get()
			if err != nil {
				return err
			}
			var names []string
			for _, a := range e.Attrs {
				names = append(names, a.Name)
			}
			if strings.Join(names, ",") != "cn,mail" || e.First("mail") != "u1@x.test" || e.DN != "uid=u1,dc=x" || len(e.Addresses) != 1 {
				return fmt.Errorf("projected entry has %v (%+v)", names, e)
			}
			if e.Hash() != u.Hash() {
				return errors.New("a projected entry lost its stored hash")
			}
			projected = append(projected, e)
		}
		v.Project(nil)
		e, err := v.Get("c", "u1")
		if err != nil || len(e.Attrs) != 5 {
			return fmt.Errorf("after Project(nil): %v, %v", e, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.NewGeneration("c")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Abort()
	for _, e := range projected {
		if err := g.Put(e); err == nil {
			t.Fatal("a projected entry was written back")
		}
	}
}

// Views share one read transaction until a commit changes what they see;
// a replaced transaction is discarded when its last view ends, not before.
func TestViewsShareTransaction(t *testing.T) {
	s := openTest(t)
	commitAll(t, s, "c", user("a", "uid=a,dc=x", "a@x.test"))
	ctx := context.Background()
	txnOf := func() (txn *badger.Txn) {
		if err := s.View(ctx, func(v *View) error { txn = v.txn; return nil }); err != nil {
			t.Fatal(err)
		}
		return txn
	}
	first := txnOf()
	if txnOf() != first {
		t.Fatal("two views in a row with no commit between them opened two transactions")
	}
	err := s.View(ctx, func(held *View) error {
		if held.txn != first {
			t.Fatal("a view opened a new transaction with nothing changed")
		}
		if _, err := s.ApplyDelta(ctx, "c", &Delta{Upserts: []*Entry{user("b", "uid=b,dc=x", "b@x.test")}}, nil, nil, false); err != nil {
			return err
		}
		second := txnOf()
		if second == first {
			t.Fatal("a view after a delta reused the transaction from before it")
		}
		if _, err := held.Get("c", "b"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the held view sees the delta: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Get(dataKey("c", s.served.Load().gens["c"], tEntry, "a")); !errors.Is(err, badger.ErrDiscardedTxn) {
		t.Fatalf("the replaced transaction is still open after its last view: %v", err)
	}
	// After a generation flip too.
	before := txnOf()
	commitAll(t, s, "c", user("a", "uid=a,dc=x", "a@x.test"))
	if txnOf() == before {
		t.Fatal("a view after a generation flip reused the transaction from before it")
	}
}

// Concurrent views on the shared transaction, with point reads and
// iterators, while deltas commit (run with -race).
func TestViewsConcurrentWithDeltas(t *testing.T) {
	s := openTest(t)
	commitAll(t, s, "c", user("a", "uid=a,dc=x", "a@x.test"))
	ctx := context.Background()
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for range 4 {
		go func() {
			for {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				err := s.View(ctx, func(v *View) error {
					if es, err := v.ByAddress("a@x.test"); err != nil || len(es) != 1 {
						return fmt.Errorf("a@x.test: %d entries, %v", len(es), err)
					}
					n := 0
					return v.Scan("dc=x", func(*Entry) (bool, error) { n++; return true, nil })
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range 50 {
		id := fmt.Sprintf("u%d", i)
		if _, err := s.ApplyDelta(ctx, "c", &Delta{Upserts: []*Entry{user(id, "uid="+id+",dc=x", id+"@x.test")}}, nil, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// A shared transaction is renewed once it is older than sharedTxnMaxAge,
// and one that old is discarded by its last view, not kept open while the
// store is idle; a commit retires it at once.
func TestSharedTransactionAge(t *testing.T) {
	s := openTest(t)
	commitAll(t, s, "c", user("a", "uid=a,dc=x", "a@x.test"))
	defer func(d time.Duration) { sharedTxnMaxAge = d }(sharedTxnMaxAge)
	sharedTxnMaxAge = 20 * time.Millisecond
	ctx := context.Background()
	var first *badger.Txn
	err := s.View(ctx, func(v *View) error {
		first = v.txn
		time.Sleep(2 * sharedTxnMaxAge)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Get([]byte("x")); !errors.Is(err, badger.ErrDiscardedTxn) {
		t.Fatalf("an old shared transaction outlived its last view: %v", err)
	}
	sharedTxnMaxAge = time.Hour
	var second *badger.Txn
	_ = s.View(ctx, func(v *View) error { second = v.txn; return nil })
	if second == first {
		t.Fatal("an old shared transaction was reused")
	}
	if _, err := s.ApplyDelta(ctx, "c", &Delta{Upserts: []*Entry{user("b", "uid=b,dc=x", "b@x.test")}}, nil, nil, false); err != nil {
		t.Fatal(err)
	}
	if _, err := second.Get([]byte("x")); !errors.Is(err, badger.ErrDiscardedTxn) {
		t.Fatalf("a commit left the idle shared transaction open: %v", err)
	}
}
