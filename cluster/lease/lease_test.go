package lease

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dirgate/dirgate/cluster/schema/pgtest"
)

func TestNewConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{Name: "sync", Holder: "a"}, true},
		{"short ttl", Config{Name: "sync", Holder: "a", TTL: time.Second}, true},
		{"no name", Config{Holder: "a"}, false},
		{"no holder", Config{Name: "sync"}, false},
		{"deadline not below ttl", Config{Name: "sync", Holder: "a", TTL: time.Second, RenewDeadline: time.Second}, false},
		{"interval not below deadline", Config{Name: "sync", Holder: "a", TTL: time.Second, RenewInterval: 700 * time.Millisecond}, false},
		{"negative retry", Config{Name: "sync", Holder: "a", RetryInterval: -time.Second}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := New(nil, tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("New: err=%v, want ok=%v", err, tc.ok)
			}
			if tc.ok && !(l.cfg.RenewInterval < l.cfg.RenewDeadline && l.cfg.RenewDeadline < l.cfg.TTL) {
				t.Fatalf("defaults out of order: %+v", l.cfg)
			}
		})
	}
}

func TestMigrateConcurrentIdempotent(t *testing.T) {
	d := newTestDB(t)
	ctx := context.Background()
	if _, err := d.Pool.Exec(ctx, `DROP TABLE leader_lease, schema_migrations`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() { errs <- Migrate(ctx, d.Pool) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent migrate: %v", err)
		}
	}
	mustAcquire(t, newLease(t, d.Pool, "a", Config{}))
	if err := Migrate(ctx, d.Pool); err != nil {
		t.Fatalf("migrate again: %v", err)
	}
}

// Of N contenders racing for the lease, exactly one gets it: when the row
// does not exist yet (concurrent inserts) and when it exists but expired
// (concurrent updates).
func TestExactlyOneOfConcurrentContenders(t *testing.T) {
	d := newTestDB(t)
	const n = 8
	leases := make([]*Lease, n)
	for i := range leases {
		leases[i] = newLease(t, d.Pool, "replica-"+strconv.Itoa(i), Config{TTL: time.Second})
	}
	race := func() (winner Fence) {
		start := make(chan struct{})
		var mu sync.Mutex
		var wins []Fence
		var wg sync.WaitGroup
		for _, l := range leases {
			wg.Go(func() {
				<-start
				f, ok, err := l.acquire(context.Background())
				if err != nil {
					t.Errorf("acquire: %v", err)
				}
				if ok {
					mu.Lock()
					wins = append(wins, f)
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if len(wins) != 1 {
			t.Fatalf("%d contenders got the lease, want exactly 1: %+v", len(wins), wins)
		}
		return wins[0]
	}
	first := race()
	for !d.dbExpired(t, "sync") {
		time.Sleep(50 * time.Millisecond)
	}
	second := race()
	if second.Epoch != first.Epoch+1 {
		t.Fatalf("epochs %d then %d, want consecutive", first.Epoch, second.Epoch)
	}
}

// Replicas running side by side settle on one leader, which keeps the lease
// through many renewals while the others stay standbys.
func TestRunKeepsOneLeader(t *testing.T) {
	d := newTestDB(t)
	cfg := Config{TTL: 3 * time.Second, RenewInterval: 200 * time.Millisecond, RetryInterval: 100 * time.Millisecond}
	var reports []<-chan Status
	for i := range 3 {
		ch, _ := runLease(t, newLease(t, d.Pool, "replica-"+strconv.Itoa(i), cfg))
		reports = append(reports, ch)
	}
	merged := make(chan Status, 16)
	for _, ch := range reports {
		go func() {
			for s := range ch {
				merged <- s
			}
		}()
	}
	first := next(t, merged, 10*time.Second)
	if !first.Leader {
		t.Fatalf("first report is a step-down: %+v", first)
	}
	select {
	case s := <-merged:
		t.Fatalf("leadership changed during steady state: %+v (leader was %+v)", s, first.Fence)
	case <-time.After(2 * time.Second): // ten renewals
	}
	var holder string
	if err := d.Pool.QueryRow(context.Background(), `SELECT holder FROM leader_lease WHERE name = 'sync'`).Scan(&holder); err != nil {
		t.Fatal(err)
	}
	if holder != first.Fence.Holder || first.Ctx.Err() != nil {
		t.Fatalf("database names %q, reported leader %q (ctx err %v)", holder, first.Fence.Holder, first.Ctx.Err())
	}
}

// A leader that stops renewing (crashed, or SIGSTOPped) is replaced once its
// lease expires by the database clock, not before, and within about TTL +
// retry interval.
func TestTakeoverAfterExpiry(t *testing.T) {
	d := newTestDB(t)
	cfg := Config{TTL: time.Second, RetryInterval: 100 * time.Millisecond}
	start := time.Now()
	old := mustAcquire(t, newLease(t, d.Pool, "paused", cfg))
	ch, _ := runLease(t, newLease(t, d.Pool, "standby", cfg))
	s := next(t, ch, 15*time.Second)
	took := time.Since(start)
	t.Logf("takeover after %v (TTL %v, retry %v)", took, cfg.TTL, cfg.RetryInterval)
	if !s.Leader || s.Fence.Epoch != old.Epoch+1 {
		t.Fatalf("standby report %+v, want leadership at epoch %d", s, old.Epoch+1)
	}
	if took < cfg.TTL*9/10 {
		t.Fatalf("standby took over after %v, before the %v lease could expire", took, cfg.TTL)
	}
	if limit := cfg.TTL + cfg.RetryInterval + 5*time.Second; took > limit {
		t.Fatalf("takeover took %v, more than %v", took, limit)
	}
}

// A paused leader's writes are refused once its lease expired, with or
// without a successor; the successor's writes go through.
func TestPausedLeaderIsFenced(t *testing.T) {
	d := newTestDB(t)
	ctx := context.Background()
	d.createWrites(t)
	cfg := Config{TTL: time.Second}
	pausedLease := newLease(t, d.Pool, "paused", cfg)
	paused := mustAcquire(t, pausedLease)
	if err := write(ctx, d.Pool, paused); err != nil {
		t.Fatalf("leader write: %v", err)
	}
	for !d.dbExpired(t, "sync") {
		time.Sleep(50 * time.Millisecond)
	}
	if err := write(ctx, d.Pool, paused); !isFenced(err) {
		t.Fatalf("write on an expired lease, no successor: err=%v, want ErrFenced", err)
	}
	if err := pausedLease.renew(ctx, paused); !errors.Is(err, errLost) {
		t.Fatalf("renewal of an expired term on resume: err=%v, want errLost", err)
	}
	successor := mustAcquire(t, newLease(t, d.Pool, "successor", cfg))
	if err := write(ctx, d.Pool, paused); !isFenced(err) {
		t.Fatalf("write after a successor acquired: err=%v, want ErrFenced", err)
	}
	if err := write(ctx, d.Pool, successor); err != nil {
		t.Fatalf("successor write: %v", err)
	}
	var got []int64
	rows, err := d.Pool.Query(ctx, `SELECT epoch FROM writes ORDER BY epoch`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var e int64
		if err := rows.Scan(&e); err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != paused.Epoch || got[1] != successor.Epoch {
		t.Fatalf("writes %v, want [%d %d]", got, paused.Epoch, successor.Epoch)
	}
}

// A fenced write that passed its check holds the successor off until it
// commits: no write of an old epoch lands after the new epoch exists.
func TestFencedWriteCommitsBeforeSuccessor(t *testing.T) {
	d := newTestDB(t)
	ctx := context.Background()
	d.createWrites(t)
	cfg := Config{TTL: time.Second}
	old := mustAcquire(t, newLease(t, d.Pool, "old", cfg))
	successor := newLease(t, d.Pool, "successor", cfg)
	var mu sync.Mutex
	var order []string
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	checked := make(chan struct{})
	acquired := make(chan Fence, 1)
	go func() {
		<-checked
		for {
			f, ok, err := successor.acquire(ctx)
			if err != nil {
				t.Errorf("successor acquire: %v", err)
				return
			}
			if ok {
				note("acquired")
				acquired <- f
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	err := old.Do(ctx, d.Pool, func(tx pgx.Tx) error {
		close(checked)
		// Outlive the lease inside the transaction.
		time.Sleep(cfg.TTL + 500*time.Millisecond)
		_, err := tx.Exec(ctx, `INSERT INTO writes (epoch) VALUES ($1)`, old.Epoch)
		note("committing")
		return err
	})
	if err != nil {
		t.Fatalf("fenced write: %v", err)
	}
	f := <-acquired
	if f.Epoch != old.Epoch+1 {
		t.Fatalf("successor epoch %d, want %d", f.Epoch, old.Epoch+1)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 2 || order[0] != "committing" {
		t.Fatalf("order %v: the successor acquired while the old leader's checked write was open", order)
	}
}

// Every acquisition opens a higher epoch, including a holder taking back its
// own lease after stepping down locally, which fences its previous term.
func TestEpochsStrictlyIncrease(t *testing.T) {
	d := newTestDB(t)
	ctx := context.Background()
	d.createWrites(t)
	cfg := Config{TTL: time.Second}
	a := newLease(t, d.Pool, "a", cfg)
	b := newLease(t, d.Pool, "b", cfg)
	var epochs []int64
	steps := []struct {
		name string
		do   func() Fence
	}{
		{"a acquires", func() Fence { return mustAcquire(t, a) }},
		{"a releases, b acquires", func() Fence {
			if err := a.release(ctx, Fence{Name: "sync", Holder: "a", Epoch: epochs[len(epochs)-1]}); err != nil {
				t.Fatal(err)
			}
			return mustAcquire(t, b)
		}},
		{"b expires, a acquires", func() Fence {
			for !d.dbExpired(t, "sync") {
				time.Sleep(50 * time.Millisecond)
			}
			return mustAcquire(t, a)
		}},
		{"a takes back its unexpired lease", func() Fence { return mustAcquire(t, a) }},
	}
	for _, s := range steps {
		f := s.do()
		if len(epochs) > 0 && f.Epoch <= epochs[len(epochs)-1] {
			t.Fatalf("%s: epoch %d after %v", s.name, f.Epoch, epochs)
		}
		epochs = append(epochs, f.Epoch)
	}
	prev := Fence{Name: "sync", Holder: "a", Epoch: epochs[len(epochs)-2]}
	if err := write(ctx, d.Pool, prev); !isFenced(err) {
		t.Fatalf("write of a's previous term: err=%v, want ErrFenced", err)
	}
}

// A leader whose term the database no longer shows (expired, or taken over)
// steps down at its next renewal, not only when its renew deadline passes.
func TestLeaderStepsDownWhenTakenOver(t *testing.T) {
	d := newTestDB(t)
	cfg := Config{TTL: 30 * time.Second, RenewInterval: 100 * time.Millisecond}
	ch, _ := runLease(t, newLease(t, d.Pool, "leader", cfg))
	lead := nextLeader(t, ch)
	if _, err := d.Pool.Exec(context.Background(),
		`UPDATE leader_lease SET holder = 'usurper', epoch = epoch + 1 WHERE name = 'sync'`); err != nil {
		t.Fatal(err)
	}
	down := next(t, ch, 10*time.Second)
	if down.Leader || down.Fence != lead.Fence || lead.Ctx.Err() == nil {
		t.Fatalf("after a takeover: %+v (term ctx err %v), want step-down of %+v", down, lead.Ctx.Err(), lead.Fence)
	}
}

// A leader whose write is fenced steps down at once, not at its next
// renewal.
func TestFencedWriteEndsTerm(t *testing.T) {
	d := newTestDB(t)
	d.createWrites(t)
	cfg := Config{TTL: 30 * time.Second, RenewInterval: 15 * time.Second}
	l := newLease(t, d.Pool, "leader", cfg)
	ch, _ := runLease(t, l)
	lead := nextLeader(t, ch)
	if _, err := d.Pool.Exec(context.Background(),
		`UPDATE leader_lease SET holder = 'usurper', epoch = epoch + 1 WHERE name = 'sync'`); err != nil {
		t.Fatal(err)
	}
	err := l.Do(lead.Ctx, lead.Fence, func(tx pgx.Tx) error {
		_, err := tx.Exec(lead.Ctx, `INSERT INTO writes (epoch) VALUES ($1)`, lead.Fence.Epoch)
		return err
	})
	if !isFenced(err) {
		t.Fatalf("write after a takeover: err=%v, want ErrFenced", err)
	}
	down := next(t, ch, 5*time.Second)
	if down.Leader || down.Fence != lead.Fence || lead.Ctx.Err() == nil {
		t.Fatalf("after a fenced write: %+v (term ctx err %v), want step-down of %+v", down, lead.Ctx.Err(), lead.Fence)
	}
}

// A leader cut off from the database steps down before its lease can
// expire, so its successor never overlaps it: at once when the connection
// fails, at its renew deadline when the network silently drops everything.
func TestLeaderLosingDatabaseStepsDown(t *testing.T) {
	for _, tc := range []struct {
		name string
		lose func(*pgtest.Proxy)
	}{
		{"connections cut", (*pgtest.Proxy).Cut},
		{"silent partition", (*pgtest.Proxy).Hang},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDB(t)
			cfg := Config{TTL: 2 * time.Second, RetryInterval: 100 * time.Millisecond}
			p := d.NewProxy(t)
			ch, _ := runLease(t, newLease(t, d.PoolVia(t, p.Addr()), "cut-off", cfg))
			t.Cleanup(p.Cut) // first: hung connections would hold up the shutdown
			lead := nextLeader(t, ch)
			standby, _ := runLease(t, newLease(t, d.Pool, "standby", cfg))
			tc.lose(p)
			down := next(t, ch, 10*time.Second)
			if down.Leader || down.Fence != lead.Fence || lead.Ctx.Err() == nil {
				t.Fatalf("after losing the database: %+v (term ctx err %v), want step-down of %+v", down, lead.Ctx.Err(), lead.Fence)
			}
			select {
			case s := <-standby:
				t.Fatalf("standby reported %+v before the cut-off leader's lease could expire", s)
			default:
			}
			s := next(t, standby, 10*time.Second)
			if !s.Leader || s.Fence.Epoch <= lead.Fence.Epoch {
				t.Fatalf("standby report %+v, want leadership after epoch %d", s, lead.Fence.Epoch)
			}
		})
	}
}

// A leader shutting down releases the lease: the standby takes over on its
// next attempt, long before the TTL.
func TestReleaseOnShutdownHandsOver(t *testing.T) {
	d := newTestDB(t)
	cfg := Config{TTL: 30 * time.Second, RetryInterval: 100 * time.Millisecond}
	ch, stop := runLease(t, newLease(t, d.Pool, "leaving", cfg))
	lead := nextLeader(t, ch)
	standby, _ := runLease(t, newLease(t, d.Pool, "standby", cfg))
	start := time.Now()
	stop()
	if s := next(t, ch, 10*time.Second); s.Leader || lead.Ctx.Err() == nil {
		t.Fatalf("leaving leader reported %+v (term ctx err %v), want step-down", s, lead.Ctx.Err())
	}
	s := next(t, standby, cfg.TTL/3)
	t.Logf("handover after %v (TTL %v)", time.Since(start), cfg.TTL)
	if !s.Leader || s.Fence.Epoch != lead.Fence.Epoch+1 {
		t.Fatalf("standby report %+v, want leadership at epoch %d", s, lead.Fence.Epoch+1)
	}
}
