package pgstate_test

import (
	"testing"
	"time"

	"github.com/dirgate/dirgate/state"
	"github.com/dirgate/dirgate/state/pgstate/pgtest"
)

// TestSweepThrottle: the sweep removes the counters that count for nothing
// (a lock whose time is up, unlocked failures older than the window) and
// the lapsed reservations, and keeps every other one as it was; a spray
// over many keys does not stay in the table.
func TestSweepThrottle(t *testing.T) {
	ctx := t.Context()
	db := pgtest.New(t)
	s := db.Store(t, "")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l := state.Limit{Failures: 3, Window: 15 * time.Minute, Lockout: 10 * time.Minute}
	fail := func(key string, at time.Time, n int) {
		t.Helper()
		for range n {
			if _, err := s.Fail(ctx, "accounts", key, at, l); err != nil {
				t.Fatal(err)
			}
		}
	}
	fail("recent", now.Add(-time.Minute), 1)
	fail("old", now.Add(-16*time.Minute), 2)
	fail("locked", now.Add(-5*time.Minute), 3)
	fail("lock-over", now.Add(-11*time.Minute), 3)
	for i := range 300 { // a spray, two days old
		fail(string(rune('a'+i%26))+"\x00spray"+time.Duration(i).String(), now.Add(-48*time.Hour), 1)
	}
	reserve := func(id string, until time.Time) {
		t.Helper()
		if _, ok, err := s.Reserve(ctx, "accounts", "recent", id, now.Add(-time.Minute), until, l); err != nil || !ok {
			t.Fatalf("reserve %s: %v %v", id, ok, err)
		}
	}
	reserve("lapsed", now.Add(-time.Second))
	reserve("live", now.Add(time.Minute))

	n, err := s.SweepThrottle(ctx, now, l.Window)
	if err != nil {
		t.Fatal(err)
	}
	if want := 300 + 2 + 1; n != want {
		t.Errorf("swept %d rows, want %d (the spray, old, lock-over, the lapsed reservation)", n, want)
	}
	rows := map[string]bool{}
	r, err := db.Pool.Query(ctx, `SELECT key FROM throttle`)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var k []byte
		if err := r.Scan(&k); err != nil {
			t.Fatal(err)
		}
		rows[string(k)] = true
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	if len(rows) != 2 || !rows["recent"] || !rows["locked"] {
		t.Errorf("throttle rows after the sweep: %v, want recent and locked", rows)
	}
	if c, err := s.Counter(ctx, "accounts", "locked", now, l); err != nil || !c.Locked() {
		t.Errorf("the live lock after the sweep: %+v %v", c, err)
	}
	var ids []string
	if err := db.Pool.QueryRow(ctx, `SELECT array_agg(id) FROM throttle_inflight`).Scan(&ids); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0] != "live" {
		t.Errorf("reservations after the sweep: %v, want live", ids)
	}
}
