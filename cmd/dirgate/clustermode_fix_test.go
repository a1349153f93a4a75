package main

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/cluster/changelog"
	"github.com/dirgate/dirgate/cluster/lease"
	"github.com/dirgate/dirgate/cluster/schema"
	"github.com/dirgate/dirgate/cluster/schema/pgtest"
	"github.com/dirgate/dirgate/config"
)

// TestBehindCaughtUpAtOnce: when the log refuses a leader's commit because
// its cache lacks records of the log (changelog.ErrBehind), the term's
// upkeep catches the cache up at once, not at the next compaction minutes
// later, and the leader's commits publish again.
func TestBehindCaughtUpAtOnce(t *testing.T) {
	db := pgtest.New(t)
	ctx := t.Context()
	if _, err := schema.Apply(ctx, db.Pool); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO leader_lease (name, holder, epoch, expires_at) VALUES ('sync', 'a', 1, clock_timestamp() + interval '1 hour')`); err != nil {
		t.Fatal(err)
	}
	f := lease.Fence{Name: "sync", Holder: "a", Epoch: 1}
	clog, err := changelog.New(db.Pool, changelog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	openCache := func() *cache.Store {
		s, err := cache.Open(t.TempDir(), cache.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	commit := func(s *cache.Store, conn string) error {
		g, err := s.NewGeneration(conn)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Abort()
		if err := g.Put(&cache.Entry{ID: "u1", DN: "uid=u1,dc=" + conn, Kind: cache.KindUser,
			Attrs: []cache.Attr{{Name: "uid", Values: []string{"u1"}}}}); err != nil {
			t.Fatal(err)
		}
		return g.Commit(ctx, []byte("cursor"), &cache.Run{Connector: conn, Mode: "full"})
	}
	// A record the leader's cache lacks: a commit whose local apply was
	// lost, say.
	other := openCache()
	other.SetPublisher(clog.Publisher(f))
	if err := commit(other, "x"); err != nil {
		t.Fatal(err)
	}

	store := openCache()
	behind := make(chan struct{}, 1)
	store.SetPublisher(behindSignal{clog.Publisher(f), behind})
	r := &replica{log: slog.New(slog.DiscardHandler), clog: clog, store: store}
	term, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.upkeep(term, behind); close(done) }()
	defer func() { cancel(); <-done }()
	if err := commit(store, "y"); !errors.Is(err, changelog.ErrBehind) {
		t.Fatalf("commit of a cache behind the log: %v, want ErrBehind", err)
	}
	eventually(t, "the leader's cache caught up with the log", func() bool {
		pos, _, err := store.Position()
		return err == nil && pos == 1
	})
	if err := commit(store, "y"); err != nil {
		t.Fatalf("commit after the catch-up: %v", err)
	}
}

// TestLeaseOwnPool: the lease does not share the replica's pool, so a pool
// exhausted by sign-ins (here: every connection held) cannot keep the
// lease from being acquired and renewed.
func TestLeaseOwnPool(t *testing.T) {
	replicas, _ := clusterFixture(t, "a")
	cfg, err := config.Load(replicas["a"].path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r, err := openReplica(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	for range r.pool.Config().MaxConns {
		c, err := r.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
	}
	led := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.lease.Run(ctx, func(st lease.Status) {
			if st.Leader {
				close(led)
			}
		})
	}()
	defer func() { cancel(); <-done }()
	select {
	case <-led:
	case <-time.After(20 * time.Second):
		t.Fatal("the lease was not acquired while the replica's pool was exhausted")
	}
}
