package changelog

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/cluster/lease"
)

// restore rolls e's log back to head, as a restore of a backup taken at
// that point would: the same log, fewer records.
func (e *env) restore(t *testing.T, head int) {
	t.Helper()
	ctx := t.Context()
	if _, err := e.db.Pool.Exec(ctx, `DELETE FROM changelog WHERE seq > $1`, head); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(ctx, `UPDATE changelog_head SET seq = $1, at = (SELECT at FROM changelog WHERE seq = $1)`, head); err != nil {
		t.Fatal(err)
	}
}

// catchUp brings s up to date with l, failing the test on an error.
func catchUp(t *testing.T, l *Log, s *cache.Store) {
	t.Helper()
	if err := l.CatchUp(t.Context(), s); err != nil {
		t.Fatal(err)
	}
}

// TestCacheOfAnotherHistoryReloads: a replica whose position belongs to
// another history of the log (a new database, or one restored from a
// backup, before or after the new leader got past the replica's position)
// loads the snapshot instead of skipping the log's records as applied,
// and so does a leader whose cache is ahead of the restored log.
func TestCacheOfAnotherHistoryReloads(t *testing.T) {
	// history publishes 1: corp {u1}, 2: +u2, 3: +u3, 4: -u1.
	history := func(t *testing.T, e *env) *cache.Store {
		leader, _ := e.leader(t)
		steps := []func() error{
			func() error { return full(t, leader, "corp", 1, user("u1", udn(1))) },
			func() error {
				return delta(t, leader, "corp", 2, &cache.Delta{Upserts: []*cache.Entry{user("u2", udn(2))}})
			},
			func() error {
				return delta(t, leader, "corp", 3, &cache.Delta{Upserts: []*cache.Entry{user("u3", udn(3))}})
			},
			func() error { return delta(t, leader, "corp", 4, &cache.Delta{Deletes: []string{"u1"}}) },
		}
		for _, do := range steps {
			if err := do(); err != nil {
				t.Fatal(err)
			}
		}
		return leader
	}
	// next is a new leader on e's log: it catches up, then publishes n deltas.
	next := func(t *testing.T, e *env, n int) *cache.Store {
		leader, l := e.leader(t)
		catchUp(t, l, leader)
		for i := range n {
			d := &cache.Delta{Upserts: []*cache.Entry{user(fmt.Sprintf("n%d", i), udn(10+i))}, Deletes: []string{"u2"}}
			if err := delta(t, leader, "corp", 10+i, d); err != nil {
				t.Fatal(err)
			}
		}
		return leader
	}
	cases := []struct {
		name string
		// log returns the env the replica meets next and its leader.
		log func(t *testing.T, old *env) (*env, *cache.Store)
	}{
		{"new database", func(t *testing.T, _ *env) (*env, *cache.Store) {
			e := newEnv(t)
			leader, _ := e.leader(t)
			if err := full(t, leader, "corp", 10, user("u1", udn(1)), user("u2", udn(2))); err != nil {
				t.Fatal(err)
			}
			if err := delta(t, leader, "corp", 11, &cache.Delta{Deletes: []string{"u1"}}); err != nil {
				t.Fatal(err)
			}
			return e, leader
		}},
		{"restored, behind the replica", func(t *testing.T, old *env) (*env, *cache.Store) {
			old.restore(t, 2)
			return old, next(t, old, 1)
		}},
		{"restored, overtaken since", func(t *testing.T, old *env) (*env, *cache.Store) {
			old.restore(t, 2)
			return old, next(t, old, 2) // the log is at 4 again, with other records
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			old := newEnv(t)
			history(t, old)
			replica := openStore(t)
			catchUp(t, newLog(t, old.db.NewPool(t), Options{}), replica)
			e, leader := c.log(t, old)
			l := newLog(t, e.db.NewPool(t), Options{})
			catchUp(t, l, replica)
			if got, want := dump(t, replica, false), dump(t, leader, false); got != want || position(t, replica) != position(t, leader) {
				t.Fatalf("replica at %d, leader at %d:\n%s\nleader:\n%s", position(t, replica), position(t, leader), got, want)
			}
			if lag := l.Lag(); lag != 0 {
				t.Errorf("lag %v after reloading", lag)
			}
		})
	}

	t.Run("leader ahead of the restored log", func(t *testing.T) {
		e := newEnv(t)
		leader := history(t, e)
		e.restore(t, 2)
		l := newLog(t, e.db.Pool, Options{})
		if err := delta(t, leader, "corp", 5, &cache.Delta{Upserts: []*cache.Entry{user("u5", udn(5))}}); !errors.Is(err, ErrBehind) {
			t.Fatalf("publish of a cache ahead of the log: %v, want ErrBehind", err)
		}
		catchUp(t, l, leader)
		if err := delta(t, leader, "corp", 5, &cache.Delta{Upserts: []*cache.Entry{user("u5", udn(5))}}); err != nil {
			t.Fatalf("publish after catching up: %v", err)
		}
		replica := openStore(t)
		catchUp(t, newLog(t, e.db.NewPool(t), Options{}), replica)
		if got, want := dump(t, replica, false), dump(t, leader, false); got != want {
			t.Fatalf("replica:\n%s\nleader:\n%s", got, want)
		}
	})
}

// TestReplicaWaitsForBaseOfOldState: a leader whose cache predates the log
// publishes deltas with no Base before them; a new replica at the head is
// not caught up (its lag grows) until the leader's EnsureBases publishes
// the state it lacks.
func TestReplicaWaitsForBaseOfOldState(t *testing.T) {
	e := newEnv(t)
	l := newLog(t, e.db.Pool, Options{})
	leader := openStore(t)
	// The single instance's state, before cluster mode.
	if err := full(t, leader, "corp", 1, user("u1", udn(1)), user("u2", udn(2))); err != nil {
		t.Fatal(err)
	}
	leader.SetPublisher(l.Publisher(e.fence))
	if err := delta(t, leader, "corp", 2, &cache.Delta{Upserts: []*cache.Entry{user("u3", udn(3))}}); err != nil {
		t.Fatal(err)
	}
	replica := openStore(t)
	fl := newLog(t, e.db.NewPool(t), Options{})
	catchUp(t, fl, replica)
	if waiting, err := replica.Waiting(); err != nil || len(waiting) != 1 || waiting[0] != "corp" {
		t.Fatalf("waiting for a base: %q (%v), want corp", waiting, err)
	}
	lag := fl.Lag()
	time.Sleep(50 * time.Millisecond)
	if now := fl.Lag(); lag == 0 || now < lag+50*time.Millisecond {
		t.Fatalf("lag %v then %v: a replica lacking a connector's state counts as caught up", lag, now)
	}

	if err := l.EnsureBases(t.Context(), leader); err != nil {
		t.Fatal(err)
	}
	head := position(t, leader)
	if err := l.EnsureBases(t.Context(), leader); err != nil || position(t, leader) != head {
		t.Fatalf("a second EnsureBases published again (%v): at %d, was %d", err, position(t, leader), head)
	}
	catchUp(t, fl, replica)
	if got, want := dump(t, replica, false), dump(t, leader, false); got != want {
		t.Fatalf("replica:\n%s\nleader:\n%s", got, want)
	}
	if waiting, err := replica.Waiting(); err != nil || len(waiting) != 0 {
		t.Fatalf("still waiting for %q (%v)", waiting, err)
	}
	if lag := fl.Lag(); lag != 0 {
		t.Errorf("lag %v once the base is applied", lag)
	}
}

// TestStuckReplicaLagGrows: a replica that cannot apply the next record
// (one it cannot decode, as a newer release's would be in a rolling
// upgrade) shows a lag of at least the time since that record appeared.
func TestStuckReplicaLagGrows(t *testing.T) {
	e := newEnv(t)
	leader, _ := e.leader(t)
	if err := full(t, leader, "corp", 1, user("u1", udn(1))); err != nil {
		t.Fatal(err)
	}
	replica := openStore(t)
	fl := newLog(t, e.db.NewPool(t), Options{PollInterval: 50 * time.Millisecond})
	follow(t, fl, replica)
	waitFor(t, leader, replica, 10*time.Second)
	ctx := t.Context()
	// Record 2, as a newer release would write it; the head moves first, so
	// the replica was last at the head before stuck.
	if _, err := e.db.Pool.Exec(ctx, `UPDATE changelog_head SET seq = 2, at = clock_timestamp()`); err != nil {
		t.Fatal(err)
	}
	stuck := time.Now()
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO changelog (seq, connector, base, epoch, at, parts, size) VALUES (2, 'corp', false, 1, clock_timestamp(), 1, 3)`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO changelog_part (seq, part, data) VALUES (2, 0, $1)`, compress(t, []byte{9, 0, 0})); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	since := time.Since(stuck)
	if lag := fl.Lag(); lag < since {
		t.Fatalf("replica stuck below the head for %v reports lag %v", since, lag)
	}
}

// TestPublishBoundedOnHungDatabase: a publish to a database that stopped
// answering fails after Options.Timeout, releasing the cache's write lock,
// so the replica can apply the log once its term ended.
func TestPublishBoundedOnHungDatabase(t *testing.T) {
	e := newEnv(t)
	px := e.db.NewProxy(t)
	l := newLog(t, e.db.PoolVia(t, px.Addr()), Options{Timeout: time.Second})
	s := openStore(t)
	s.SetPublisher(l.Publisher(e.fence))
	if err := full(t, s, "c", 1, user("u1", udn(1))); err != nil {
		t.Fatal(err)
	}
	px.Hang()
	done := make(chan error, 1)
	go func() { done <- s.SaveCursor(context.Background(), "c", []byte("cursor-2"), testRun("c", 2)) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("publish to a hung database: %v, want a deadline", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("SaveCursor still blocked 30s into a hung database with a 1s timeout")
	}
	s.SetPublisher(nil)
	px.Cut() // the sessions end, and their locks with them
	if err := s.ApplyRecord(t.Context(), &cache.Record{Connector: "c", Cursor: []byte("x"), Time: time.Now()}, 100); err != nil {
		t.Fatal(err)
	}
	if position(t, s) != 100 {
		t.Fatalf("position %d, want 100", position(t, s))
	}
}

// TestFencedPublishEndsTerm: with the lease as the publisher's Fencer, a
// fenced publish ends the term at once rather than at the next renewal.
func TestFencedPublishEndsTerm(t *testing.T) {
	e := newEnv(t)
	ls, err := lease.New(e.db.Pool, lease.Config{Name: "fenced", Holder: "me", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	terms := make(chan lease.Status, 4)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); _ = ls.Run(ctx, func(st lease.Status) { terms <- st }) }()
	defer func() { cancel(); <-ran }()
	st := <-terms
	if !st.Leader {
		t.Fatal("not leading")
	}
	s := openStore(t)
	s.SetPublisher(newLog(t, e.db.Pool, Options{}).FencedPublisher(ls, st.Fence))
	if err := full(t, s, "corp", 1, user("u1", udn(1))); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(t.Context(), `UPDATE leader_lease SET holder = 'other', epoch = epoch + 1 WHERE name = 'fenced'`); err != nil {
		t.Fatal(err)
	}
	if err := delta(t, s, "corp", 2, &cache.Delta{Deletes: []string{"u1"}}); !errors.Is(err, lease.ErrFenced) {
		t.Fatalf("publish of a fenced leader: %v, want ErrFenced", err)
	}
	select {
	case <-st.Ctx.Done(): // renewals come every 20 minutes: the refusal ended it
	case <-time.After(10 * time.Second):
		t.Fatal("the term did not end after a fenced publish")
	}
}

// compress returns b as one zstd frame, as a record's data is stored.
func compress(t *testing.T, b []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}
