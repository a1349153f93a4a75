package dirsync

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
)

// fakeSource is an in-memory upstream: entries by ID, a change log, and
// failure switches.
type fakeSource struct {
	entries map[string]*cache.Entry
	log     []Change // changes since the last cursor
	failAll error
	badCur  bool
}

func newFake(n int) *fakeSource {
	f := &fakeSource{entries: map[string]*cache.Entry{}}
	for i := range n {
		f.put(fmt.Sprintf("u%03d", i))
	}
	return f
}

func (f *fakeSource) entry(id string) *cache.Entry {
	return &cache.Entry{ID: id, DN: "uid=" + id + ",dc=x", Kind: cache.KindUser, Addresses: []string{id + "@x.test"},
		Attrs: []cache.Attr{{Name: "uid", Values: []string{id}}}}
}

func (f *fakeSource) put(id string) {
	f.entries[id] = f.entry(id)
	f.log = append(f.log, Change{Upsert: f.entry(id)})
}

func (f *fakeSource) del(id string) {
	delete(f.entries, id)
	f.log = append(f.log, Change{DeleteID: id})
}

func (f *fakeSource) Full(_ context.Context, emit func(*cache.Entry) error) (Listing, error) {
	if f.failAll != nil {
		return Listing{}, f.failAll
	}
	f.log = nil
	for _, e := range f.entries {
		c := *e
		if err := emit(&c); err != nil {
			return Listing{}, err
		}
	}
	return Listing{Host: "fake", Cursor: []byte("c")}, nil
}

func (f *fakeSource) Changes(_ context.Context, _ []byte, _ Known, emit func(Change) error) (ChangeSet, error) {
	if f.badCur {
		return ChangeSet{}, ErrCursorInvalid
	}
	if f.failAll != nil {
		return ChangeSet{}, f.failAll
	}
	for _, c := range f.log {
		if err := emit(c); err != nil {
			return ChangeSet{}, err
		}
	}
	n := len(f.log)
	f.log = nil
	return ChangeSet{Host: "fake", Cursor: []byte("c"), Read: n, Method: "fake"}, nil
}

func setup(t *testing.T) (*Engine, *cache.Store, *config.Connector) {
	t.Helper()
	s, err := cache.Open(t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := &config.Connector{Name: "c", Type: "openldap", FullSyncInterval: config.Duration(time.Hour),
		Safety: config.Safety{MaxDeletes: 5, MaxDeletePercent: 50}}
	return New(s, s.States(), nil), s, c
}

func count(t *testing.T, s *cache.Store) int {
	var n int
	_ = s.View(context.Background(), func(v *cache.View) error { n, _, _ = v.Counts("c"); return nil })
	return n
}

func TestEngineModes(t *testing.T) {
	e, s, c := setup(t)
	ctx := context.Background()
	src := newFake(20)
	res, err := e.Run(ctx, c, src, Options{})
	if err != nil || res.Mode != ModeFull || res.Added != 20 {
		t.Fatalf("first run: %+v %v", res.Run, err)
	}
	src.put("new")
	src.del("u001")
	res, err = e.Run(ctx, c, src, Options{})
	if err != nil || res.Mode != ModeIncremental || res.Added != 1 || res.Deleted != 1 || res.Read != 2 {
		t.Fatalf("incremental: %+v %v", res.Run, err)
	}
	if count(t, s) != 20 {
		t.Fatalf("served %d", count(t, s))
	}

	// An invalid cursor falls back to a full run.
	src.badCur = true
	src.del("u002")
	res, err = e.Run(ctx, c, src, Options{})
	if err != nil || res.Mode != ModeFull || res.Deleted != 1 {
		t.Fatalf("fallback: %+v %v", res.Run, err)
	}
	src.badCur = false

	// A scope change forces a full run.
	c.UserFilter = "(uid=*)"
	if res, _ = e.Run(ctx, c, src, Options{}); res.Mode != ModeFull {
		t.Fatalf("after a scope change: mode %q", res.Mode)
	}
	// So does an old last full run.
	e.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if res, _ = e.Run(ctx, c, src, Options{}); res.Mode != ModeFull {
		t.Fatalf("after the full sync interval: mode %q", res.Mode)
	}
	e.now = time.Now
}

func TestEngineIncrementalSafety(t *testing.T) {
	e, s, c := setup(t)
	ctx := context.Background()
	src := newFake(20)
	if _, err := e.Run(ctx, c, src, Options{}); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		src.del(fmt.Sprintf("u%03d", i))
	}
	res, err := e.Run(ctx, c, src, Options{})
	var b *BlockedError
	if !errors.As(err, &b) || res.Mode != ModeIncremental || count(t, s) != 20 {
		t.Fatalf("6 incremental deletions with max 5: %v %+v, %d served", err, res.Run, count(t, s))
	}
	// The blocked run did not advance the cursor: the forced rerun sees the
	// same deletions.
	src.log = nil
	for i := range 6 {
		src.log = append(src.log, Change{DeleteID: fmt.Sprintf("u%03d", i)})
	}
	if res, err = e.Run(ctx, c, src, Options{Force: true}); err != nil || res.Deleted != 6 || count(t, s) != 14 {
		t.Fatalf("forced: %+v %v", res.Run, err)
	}
}

func TestDeletesPausedAfterError(t *testing.T) {
	e, s, c := setup(t)
	ctx := context.Background()
	src := newFake(20)
	if _, err := e.Run(ctx, c, src, Options{}); err != nil {
		t.Fatal(err)
	}
	src.failAll = errors.New("upstream exploded")
	if _, err := e.Run(ctx, c, src, Options{}); err == nil {
		t.Fatal("failing source succeeded")
	}
	src.failAll = nil
	src.del("u003")
	src.put("fresh")
	res, err := e.Run(ctx, c, src, Options{})
	if err != nil || res.Mode != ModeFull || res.DeletesPaused != 1 || res.Deleted != 0 || res.Added != 1 {
		t.Fatalf("run after an error: %+v %v", res.Run, err)
	}
	if count(t, s) != 21 {
		t.Fatalf("the paused deletion was applied: %d served", count(t, s))
	}
	res, err = e.Run(ctx, c, src, Options{})
	if err != nil || res.Mode != ModeFull || res.Deleted != 1 || count(t, s) != 20 {
		t.Fatalf("the next run applies it: %+v %v (%d served)", res.Run, err, count(t, s))
	}
	if res, _ = e.Run(ctx, c, src, Options{}); res.Mode != ModeIncremental {
		t.Fatalf("then back to incremental: %q", res.Mode)
	}
}
