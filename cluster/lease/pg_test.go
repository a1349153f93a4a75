package lease

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dirgate/dirgate/cluster/schema/pgtest"
)

// testDB is one test's private schema (pgtest) with the lease table
// migrated.
type testDB struct{ *pgtest.DB }

func newTestDB(t *testing.T) *testDB {
	t.Helper()
	d := &testDB{pgtest.New(t)}
	if err := Migrate(context.Background(), d.Pool); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return d
}

// dbExpired reports whether the lease row has expired by the database clock.
func (d *testDB) dbExpired(t *testing.T, name string) bool {
	t.Helper()
	var expired bool
	err := d.Pool.QueryRow(context.Background(),
		`SELECT expires_at <= clock_timestamp() FROM leader_lease WHERE name = $1`, name).Scan(&expired)
	if err != nil {
		t.Fatalf("read lease: %v", err)
	}
	return expired
}

// runLease runs l until the test ends, returning its status reports.
func runLease(t *testing.T, l *Lease) (<-chan Status, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan Status, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := l.Run(ctx, func(s Status) { ch <- s }); err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ch, cancel
}

// next waits for l's next status report.
func next(t *testing.T, ch <-chan Status, within time.Duration) Status {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(within):
		t.Fatalf("no leadership change within %v", within)
		return Status{}
	}
}

func newLease(t *testing.T, db DB, holder string, cfg Config) *Lease {
	t.Helper()
	cfg.Holder = holder
	if cfg.Name == "" {
		cfg.Name = "sync"
	}
	l, err := New(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// nextLeader waits for l's first report, which must be leadership.
func nextLeader(t *testing.T, ch <-chan Status) Status {
	t.Helper()
	s := next(t, ch, 10*time.Second)
	if !s.Leader {
		t.Fatalf("first report %+v, want leadership", s)
	}
	return s
}

// createWrites creates the table write records leader writes in.
func (d *testDB) createWrites(t *testing.T) {
	t.Helper()
	if _, err := d.Pool.Exec(context.Background(), `CREATE TABLE writes (epoch bigint NOT NULL)`); err != nil {
		t.Fatal(err)
	}
}

// mustAcquire takes the lease once, as a leader that then never renews (a
// crashed or SIGSTOPped process).
func mustAcquire(t *testing.T, l *Lease) Fence {
	t.Helper()
	f, ok, err := l.acquire(context.Background())
	if err != nil || !ok {
		t.Fatalf("acquire: ok=%v err=%v", ok, err)
	}
	return f
}

// write records epoch in a table through a fenced transaction.
func write(ctx context.Context, db DB, f Fence) error {
	return f.Do(ctx, db, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO writes (epoch) VALUES ($1)`, f.Epoch)
		return err
	})
}

func isFenced(err error) bool { return errors.Is(err, ErrFenced) }
