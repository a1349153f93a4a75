package changelog

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/cluster/lease"
)

// users returns n users.
func users(n int) []*cache.Entry {
	out := make([]*cache.Entry, n)
	for i := range out {
		out[i] = user(fmt.Sprintf("u%05d", i), udn(i))
	}
	return out
}

// count returns the number of rows of table.
func count(t *testing.T, e *env, table string) int {
	t.Helper()
	var n int
	if err := e.db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBaseOfManyParts: a Base larger than a part is staged part by part
// and published whole; a replica reads it part by part into the same
// state, and nothing stays staged.
func TestBaseOfManyParts(t *testing.T) {
	e := newEnv(t)
	l := newLog(t, e.db.Pool, Options{PartSize: 1 << 10})
	leader := openStore(t)
	leader.SetPublisher(l.Publisher(e.fence))
	if err := full(t, leader, "corp", 1, users(3000)...); err != nil {
		t.Fatal(err)
	}
	var parts int
	if err := e.db.Pool.QueryRow(t.Context(), `SELECT parts FROM changelog WHERE seq = 1`).Scan(&parts); err != nil || parts < 3 {
		t.Fatalf("the Base has %d parts (%v), want several", parts, err)
	}
	if n := count(t, e, "changelog_part"); n != parts {
		t.Fatalf("%d parts stored, the record says %d", n, parts)
	}
	if n := count(t, e, "changelog_stage"); n != 0 {
		t.Fatalf("%d staged parts left after the publish", n)
	}
	replica := openStore(t)
	catchUp(t, newLog(t, e.db.NewPool(t), Options{}), replica)
	if got, want := dump(t, replica, false), dump(t, leader, false); got != want {
		t.Fatalf("replica differs from the leader:\n%s\nleader:\n%s", got, want)
	}
}

// TestRefusedBaseLeavesNothingStaged: a Base whose publish is refused
// (fenced) after its parts were staged leaves no record and no staged part.
func TestRefusedBaseLeavesNothingStaged(t *testing.T) {
	e := newEnv(t)
	l := newLog(t, e.db.Pool, Options{PartSize: 1 << 10})
	leader := openStore(t)
	leader.SetPublisher(l.Publisher(e.fence))
	e.takeOver(t)
	if err := full(t, leader, "corp", 1, users(2000)...); !errors.Is(err, lease.ErrFenced) {
		t.Fatalf("full sync of a fenced leader: %v, want ErrFenced", err)
	}
	for _, table := range []string{"changelog", "changelog_part", "changelog_stage"} {
		if n := count(t, e, table); n != 0 {
			t.Errorf("%s has %d rows after a refused publish", table, n)
		}
	}
}

// TestBaseMissingPartChangesNothing: a replica reading a Base whose later
// part is gone (pruned while it was read) applies none of it: its state
// and position stay, and the failure says the record is gone.
func TestBaseMissingPartChangesNothing(t *testing.T) {
	e := newEnv(t)
	l := newLog(t, e.db.Pool, Options{PartSize: 1 << 10})
	leader := openStore(t)
	leader.SetPublisher(l.Publisher(e.fence))
	if err := full(t, leader, "corp", 1, user("u1", udn(1))); err != nil {
		t.Fatal(err)
	}
	replica := openStore(t)
	rl := newLog(t, e.db.NewPool(t), Options{})
	catchUp(t, rl, replica)
	before := dump(t, replica, true)
	if err := full(t, leader, "corp", 2, users(3000)...); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(t.Context(), `DELETE FROM changelog_part WHERE seq = 2 AND part = (SELECT max(part) FROM changelog_part WHERE seq = 2)`); err != nil {
		t.Fatal(err)
	}
	if err := rl.CatchUp(t.Context(), replica); !errors.Is(err, errGone) {
		t.Fatalf("catch-up over a Base missing a part: %v, want errGone", err)
	}
	if got := dump(t, replica, true); got != before || position(t, replica) != 1 {
		t.Fatalf("a Base missing a part changed the replica (position %d):\n%s\nwas:\n%s", position(t, replica), got, before)
	}
}

// TestCompactDeletesStaleStagedParts: parts a dead publisher staged long
// ago are deleted by compaction; recent ones, perhaps of a publish in
// progress, stay.
func TestCompactDeletesStaleStagedParts(t *testing.T) {
	e := newEnv(t)
	leader, l := e.leader(t)
	if _, err := e.db.Pool.Exec(t.Context(), `INSERT INTO changelog_stage (id, part, data, at) VALUES
		(1, 0, 'x', now() - interval '2 hours'), (2, 0, 'y', now())`); err != nil {
		t.Fatal(err)
	}
	if err := l.Compact(t.Context(), leader); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	rows, err := e.db.Pool.Query(t.Context(), `SELECT id FROM changelog_stage`)
	if err == nil {
		ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	}
	if err != nil || len(ids) != 1 || ids[0] != 2 {
		t.Fatalf("staged parts left: %v (%v), want only the recent one", ids, err)
	}
}
