package state_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/dirgate/dirgate/state"
	"github.com/dirgate/dirgate/state/pgstate/pgtest"
	"github.com/dirgate/dirgate/state/statetest"
)

// TestFallbackConformance: the stores as cluster mode assembles them, the
// throttle behind the fallback, pass the conformance suite.
func TestFallbackConformance(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Stores {
		s := pgtest.New(t).Store(t, "").Stores()
		s.Throttle = state.NewFallback(s.Throttle, state.NewMemoryThrottle(100), slog.New(slog.DiscardHandler))
		return s
	})
}

// TestFallbackOnPostgreSQL: two replicas count in one PostgreSQL schema;
// when the database is cut away from one of them, that replica counts and
// locks on its own, and once the database is back it counts in it again.
func TestFallbackOnPostgreSQL(t *testing.T) {
	ctx := t.Context()
	db := pgtest.New(t)
	proxy := db.NewProxy(t)
	l := state.Limit{Failures: 3, Window: 10 * time.Minute, Lockout: 15 * time.Minute}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	a := state.NewFallback(db.Store(t, proxy.Addr()), state.NewMemoryThrottle(100), slog.New(slog.DiscardHandler))
	b := state.NewFallback(db.Store(t, ""), state.NewMemoryThrottle(100), slog.New(slog.DiscardHandler))
	a.RetryEvery = 0

	// Shared: failures on both replicas add up.
	for _, r := range []*state.Fallback{a, b} {
		if _, err := r.Fail(ctx, "accounts", "alice", now, l); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := b.Counter(ctx, "accounts", "alice", now, l); err != nil || c.Failures != 2 {
		t.Fatalf("alice after a failure on each replica: %+v, %v; want 2 failures", c, err)
	}

	proxy.Cut()
	for i := range 3 {
		c, err := a.Fail(ctx, "accounts", "bob", now, l)
		if err != nil || c.Failures != i+1 {
			t.Fatalf("failure %d with the database cut: %+v, %v", i+1, c, err)
		}
	}
	if c, err := a.Counter(ctx, "accounts", "bob", now, l); err != nil || !c.Locked() {
		t.Fatalf("bob after 3 failures with the database cut: %+v, %v; want locked", c, err)
	}
	if ok, _ := a.Shared(); ok {
		t.Error("the replica cut from the database says it counts in it")
	}
	if c, err := b.Counter(ctx, "accounts", "bob", now, l); err != nil || c.Failures != 0 {
		t.Errorf("the other replica sees %+v, %v for the failures counted during the cut", c, err)
	}

	proxy.Restore()
	if c, err := a.Counter(ctx, "accounts", "bob", now, l); err != nil || !c.Locked() {
		t.Errorf("bob after the database came back: %+v, %v; want still locked", c, err)
	}
	if ok, _ := a.Shared(); !ok {
		t.Error("the replica did not go back to the database")
	}
	if _, err := a.Fail(ctx, "accounts", "alice", now, l); err != nil {
		t.Fatal(err)
	}
	if c, err := b.Counter(ctx, "accounts", "alice", now, l); err != nil || !c.Locked() {
		t.Errorf("alice's third failure, after the database came back, did not lock her for the other replica: %+v, %v", c, err)
	}
}
