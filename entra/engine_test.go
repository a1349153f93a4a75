package entra

import (
	"context"
	"errors"
	"testing"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/internal/fakeentra"
	dirsync "github.com/dirgate/dirgate/sync"
)

// engine is a sync engine over a Badger cache in dir, as a process runs it.
type engine struct {
	store *cache.Store
	*dirsync.Engine
}

func openEngine(t *testing.T, dir string) *engine {
	t.Helper()
	s, err := cache.Open(dir, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &engine{s, dirsync.New(s, s.States(), nil)}
}

func (e *engine) run(t *testing.T, tn *tenant) (*dirsync.Result, error) {
	t.Helper()
	return e.Run(context.Background(), tn.conn, tn.source(t, tn.conn), dirsync.Options{Trigger: "test"})
}

// TestRestartResumesDeltaLink: after the process restarts (cache closed
// and opened again, a new source), the next run reads from the stored
// deltaLinks: one request per resource, no full round.
func TestRestartResumesDeltaLink(t *testing.T) {
	tn := newTenant(t, "")
	for range 10 {
		tn.user(fakeentra.User{})
	}
	dir := t.TempDir()
	e := openEngine(t, dir)
	if res, err := e.run(t, tn); err != nil || res.Mode != dirsync.ModeFull {
		t.Fatalf("first run: %v, %+v", err, res)
	}
	fullRequests := tn.Requests()
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}

	e = openEngine(t, dir)
	added := tn.user(fakeentra.User{})
	res, err := e.run(t, tn)
	if err != nil || res.Mode != dirsync.ModeIncremental || res.Added != 1 {
		t.Fatalf("after restart: %v, mode %s, added %d", err, res.Mode, res.Added)
	}
	if n := tn.Requests() - fullRequests; n != 2 {
		t.Errorf("the run after restart made %d Graph requests, want 2 (one per stored deltaLink); the full round took %d", n, fullRequests)
	}
	if err := e.store.View(context.Background(), func(v *cache.View) error {
		ids, err := v.Hashes(tn.conn.Name)
		if err == nil && (len(ids) != 11 || !dirsync.Known(ids).Has(added)) {
			t.Errorf("cache holds %d entries, want 11 with the new user", len(ids))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestLostDeltaTokenReconcileBlocked: an expired or reset delta token
// makes the engine read in full; when the tenant has lost 60% of its
// users meanwhile, the safety rules block the reconcile and the cache
// keeps them.
func TestLostDeltaTokenReconcileBlocked(t *testing.T) {
	for name, fault := range map[string]func(*fakeentra.Tenant){
		"expired": (*fakeentra.Tenant).ExpireDeltaTokens,
		"reset":   (*fakeentra.Tenant).ResetSyncState,
	} {
		t.Run(name, func(t *testing.T) {
			tn := newTenant(t, "")
			var ids []string
			for range 10 {
				ids = append(ids, tn.user(fakeentra.User{}))
			}
			e := openEngine(t, t.TempDir())
			if _, err := e.run(t, tn); err != nil {
				t.Fatal(err)
			}
			fault(tn.Tenant)
			for _, id := range ids[:6] {
				tn.HardDelete(id)
			}
			res, err := e.run(t, tn)
			var blocked *dirsync.BlockedError
			if !errors.As(err, &blocked) || res.Mode != dirsync.ModeFull {
				t.Fatalf("run = %v (mode %s), want a full run blocked by the safety rules", err, res.Mode)
			}
			if err := e.store.View(context.Background(), func(v *cache.View) error {
				h, err := v.Hashes(tn.conn.Name)
				if err == nil && len(h) != 10 {
					t.Errorf("cache holds %d entries after the blocked run, want 10", len(h))
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestThrottledRunKeepsCursor: a run throttled beyond the retry cap
// fails without moving the cursor; the next run picks up the change.
func TestThrottledRunKeepsCursor(t *testing.T) {
	tn := newTenant(t, "")
	tn.user(fakeentra.User{})
	e := openEngine(t, t.TempDir())
	if _, err := e.run(t, tn); err != nil {
		t.Fatal(err)
	}
	before, err := e.store.Cursor(tn.conn.Name)
	if err != nil {
		t.Fatal(err)
	}
	tn.user(fakeentra.User{})
	tn.Throttle(1000, 503, 0)
	if _, err := e.run(t, tn); err == nil {
		t.Fatal("a run throttled beyond the retry cap succeeded")
	}
	after, err := e.store.Cursor(tn.conn.Name)
	if err != nil || string(after) != string(before) {
		t.Fatalf("the cursor moved after a failed run (%v)", err)
	}
	tn.Throttle(0, 0, 0)
	// The engine may choose a full run after a failed one; either way
	// the change arrives.
	if res, err := e.run(t, tn); err != nil || res.Added != 1 {
		t.Fatalf("the next run: %v, %+v", err, res)
	}
}
