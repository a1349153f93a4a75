package registry

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dirgate/dirgate/cluster/lease"
	"github.com/dirgate/dirgate/cluster/schema/migration"
	"github.com/dirgate/dirgate/cluster/schema/pgtest"
)

// newDB is a private schema with the lease and registry tables.
func newDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.New(t).Pool
	ms, err := migration.Merge(lease.Migrations(), Migrations())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migration.Apply(t.Context(), pool, ms); err != nil {
		t.Fatal(err)
	}
	return pool
}

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatal(err)
	}
}

func newRegistry(t *testing.T, pool *pgxpool.Pool, cfg Config) *Registry {
	t.Helper()
	r, err := New(pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestNewNeedsNameAndHolder(t *testing.T) {
	for _, cfg := range []Config{{Name: "a"}, {Holder: "h"}} {
		if _, err := New(nil, cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

func TestStatus(t *testing.T) {
	pool := newDB(t)
	ctx := t.Context()
	headAt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var leading atomic.Bool
	leading.Store(true)
	one := newRegistry(t, pool, Config{Name: "one", Holder: "h1", AdminURL: "https://one:8443", Version: "v2",
		Position: func() (uint64, time.Time, error) { return 10, headAt, nil }, Leader: leading.Load})
	two := newRegistry(t, pool, Config{Name: "two", Holder: "h2", Version: "v2",
		Position: func() (uint64, time.Time, error) { return 7, headAt.Add(-90 * time.Second), nil }})
	fresh := newRegistry(t, pool, Config{Name: "three", Holder: "h3", Version: "v1"})
	for _, r := range []*Registry{one, two, fresh} {
		if err := r.Beat(ctx); err != nil {
			t.Fatal(err)
		}
	}
	exec(t, pool, `INSERT INTO leader_lease VALUES ('sync', 'h1', 4, clock_timestamp() + interval '10 seconds')`)
	exec(t, pool, `UPDATE cluster_replica SET started = clock_timestamp() - interval '1 minute' WHERE name = 'three'`)
	head := func(context.Context) (uint64, time.Time, error) { return 10, headAt, nil }

	st, err := Read(ctx, pool, ReadOptions{Head: head})
	if err != nil {
		t.Fatal(err)
	}
	if st.Lease == nil || st.Lease.Holder != "h1" || st.Lease.Epoch != 4 || !st.Lease.Valid || st.Head != 10 || st.LeaderName() != "one" {
		t.Fatalf("status %+v lease %+v", st, st.Lease)
	}
	if len(st.Replicas) != 3 {
		t.Fatalf("replicas %+v", st.Replicas)
	}
	byName := map[string]Replica{}
	for _, r := range st.Replicas {
		byName[r.Name] = r
	}
	if r := byName["one"]; !r.Leader || r.Gone || r.Lag != 0 || r.Behind != 0 || r.AdminURL != "https://one:8443" || !r.PositionAt.Equal(headAt) {
		t.Errorf("one: %+v", r)
	}
	if r := byName["two"]; r.Leader || r.Behind != 3 || r.Lag != 90*time.Second {
		t.Errorf("two: %+v", r)
	}
	// Nothing applied yet: it lags by the time since it started.
	if r := byName["three"]; r.Behind != 10 || r.Lag < time.Minute || r.Lag > 10*time.Minute || !r.PositionAt.IsZero() {
		t.Errorf("three: %+v", r)
	}

	// The lease expires: nobody leads, whatever the rows say.
	exec(t, pool, `UPDATE leader_lease SET expires_at = clock_timestamp() - interval '1 second'`)
	exec(t, pool, `UPDATE cluster_replica SET seen = clock_timestamp() - interval '1 minute' WHERE name = 'two'`)
	if st, err = Read(ctx, pool, ReadOptions{Head: head}); err != nil {
		t.Fatal(err)
	}
	if st.Lease.Valid || st.LeaderName() != "" {
		t.Errorf("expired lease: %+v, leader %q", st.Lease, st.LeaderName())
	}
	for _, r := range st.Replicas {
		if r.Gone != (r.Name == "two") {
			t.Errorf("%s gone = %v", r.Name, r.Gone)
		}
	}
	if st, err = Read(ctx, pool, ReadOptions{Head: head, GoneAfter: 2 * time.Minute}); err != nil || st.Replicas[2].Gone {
		t.Errorf("with gone_after 2m: %+v, %v", st.Replicas, err)
	}
}

func TestStatusBeforeAnyLease(t *testing.T) {
	st, err := Read(t.Context(), newDB(t), ReadOptions{})
	if err != nil || st.Lease != nil || len(st.Replicas) != 0 || st.Head != 0 {
		t.Fatalf("%+v, %v", st, err)
	}
}

// A restart under the same name (a new holder) resets started; the same
// process beating keeps it. Rows not seen for a week are forgotten.
func TestBeatKeepsOrResetsStarted(t *testing.T) {
	pool := newDB(t)
	ctx := t.Context()
	started := func() time.Time {
		var at time.Time
		if err := pool.QueryRow(ctx, `SELECT started FROM cluster_replica WHERE name = 'r'`).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	r := newRegistry(t, pool, Config{Name: "r", Holder: "run1"})
	if err := r.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	exec(t, pool, `UPDATE cluster_replica SET started = started - interval '1 hour'`)
	first := started()
	if err := r.Beat(ctx); err != nil || !started().Equal(first) {
		t.Errorf("same process: started %v, want %v kept (%v)", started(), first, err)
	}
	if err := newRegistry(t, pool, Config{Name: "r", Holder: "run2"}).Beat(ctx); err != nil || !started().After(first) {
		t.Errorf("restarted process: started %v, want later than %v (%v)", started(), first, err)
	}
	exec(t, pool, `INSERT INTO cluster_replica (name, holder, started, seen) VALUES ('old', 'x', now() - interval '8 days', now() - interval '8 days')`)
	if err := r.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM cluster_replica WHERE name = 'old'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("a row unseen for 8 days is still there (%d, %v)", n, err)
	}
}

// Run beats until its context ends and survives a failing position.
func TestRun(t *testing.T) {
	pool := newDB(t)
	var calls atomic.Int32
	r := newRegistry(t, pool, Config{Name: "r", Holder: "h", Interval: 20 * time.Millisecond, Position: func() (uint64, time.Time, error) {
		if calls.Add(1) == 1 {
			return 0, time.Time{}, errors.New("cache closed")
		}
		return uint64(calls.Load()), time.Now(), nil
	}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for calls.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	var pos int64
	if err := pool.QueryRow(t.Context(), `SELECT position FROM cluster_replica WHERE name = 'r'`).Scan(&pos); err != nil || pos < 2 {
		t.Errorf("position after beats: %d, %v", pos, err)
	}
}

// TestStatusShowsReportedLag: the status shows the lag a replica reports
// (the change log's measure: the time since it was last known at the
// head), not one derived from positions, which reads 0 for a replica at
// the head's position that stopped hearing from the log; a replica that
// reports none keeps the derived one.
func TestStatusShowsReportedLag(t *testing.T) {
	pool := newDB(t)
	ctx := t.Context()
	headAt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(seq uint64, t time.Time) func() (uint64, time.Time, error) {
		return func() (uint64, time.Time, error) { return seq, t, nil }
	}
	for _, cfg := range []Config{
		{Name: "cut-off", Holder: "h1", Position: at(10, headAt), Lag: func() time.Duration { return 42 * time.Second }},
		{Name: "current", Holder: "h2", Position: at(7, headAt.Add(-time.Minute)), Lag: func() time.Duration { return 0 }},
		{Name: "old-release", Holder: "h3", Position: at(7, headAt.Add(-time.Minute))},
	} {
		if err := newRegistry(t, pool, cfg).Beat(ctx); err != nil {
			t.Fatal(err)
		}
	}
	st, err := Read(ctx, pool, ReadOptions{Head: func(context.Context) (uint64, time.Time, error) { return 10, headAt, nil }})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{"cut-off": 42 * time.Second, "current": 0, "old-release": time.Minute}
	for _, r := range st.Replicas {
		if r.Lag != want[r.Name] {
			t.Errorf("%s: lag %v, want %v", r.Name, r.Lag, want[r.Name])
		}
	}
}
