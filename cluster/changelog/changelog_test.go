package changelog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/cluster/lease"
	"github.com/dirgate/dirgate/cluster/schema/pgtest"
	"github.com/dirgate/dirgate/metrics"
	"github.com/dirgate/dirgate/state/pgstate"
)

// env is one test's schema with every table the log works with, and a
// lease held by fence.
type env struct {
	db    *pgtest.DB
	fence lease.Fence
}

func newEnv(t testing.TB) *env {
	t.Helper()
	db := pgtest.New(t)
	ctx := t.Context()
	if err := pgstate.Migrate(ctx, db.Pool); err != nil {
		t.Fatal(err)
	}
	if err := lease.Migrate(ctx, db.Pool); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, db.Pool); err != nil {
		t.Fatal(err)
	}
	e := &env{db: db, fence: lease.Fence{Name: "sync", Holder: "leader-1", Epoch: 1}}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO leader_lease (name, holder, epoch, expires_at)
		VALUES ('sync', 'leader-1', 1, clock_timestamp() + interval '1 hour')`); err != nil {
		t.Fatal(err)
	}
	return e
}

// takeOver hands the lease to another holder, fencing e.fence.
func (e *env) takeOver(t *testing.T) lease.Fence {
	t.Helper()
	if _, err := e.db.Pool.Exec(t.Context(), `UPDATE leader_lease SET holder = 'leader-2', epoch = 2 WHERE name = 'sync'`); err != nil {
		t.Fatal(err)
	}
	return lease.Fence{Name: "sync", Holder: "leader-2", Epoch: 2}
}

func newLog(t testing.TB, pool *pgxpool.Pool, o Options) *Log {
	t.Helper()
	l, err := New(pool, o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func openStore(t testing.TB) *cache.Store {
	t.Helper()
	s, err := cache.Open(t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// leader is a store publishing to the log under e's fence.
func (e *env) leader(t *testing.T) (*cache.Store, *Log) {
	t.Helper()
	l := newLog(t, e.db.Pool, Options{})
	s := openStore(t)
	s.SetPublisher(l.Publisher(e.fence))
	return s, l
}

func user(id, dn string) *cache.Entry {
	mail := id + "@example.test"
	return &cache.Entry{ID: id, DN: dn, Kind: cache.KindUser, Addresses: []string{mail},
		Attrs: []cache.Attr{{Name: "mail", Values: []string{mail}}, {Name: "uid", Values: []string{id}}}}
}

func udn(i int) string { return fmt.Sprintf("uid=u%d,ou=people,dc=example,dc=test", i) }

func group(members ...string) *cache.Entry {
	return &cache.Entry{ID: "g", DN: "cn=staff,dc=example,dc=test", Kind: cache.KindGroup, Members: members,
		Attrs: []cache.Attr{{Name: "cn", Values: []string{"staff"}}}}
}

func testRun(conn string, i int) *cache.Run {
	return &cache.Run{Connector: conn, Start: time.Date(2026, 1, 1, 0, i, 0, 0, time.UTC), Mode: "full"}
}

// full commits entries as a full sync of conn.
func full(t *testing.T, s *cache.Store, conn string, i int, entries ...*cache.Entry) error {
	t.Helper()
	g, err := s.NewGeneration(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Abort()
	for _, e := range entries {
		if err := g.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	return g.Commit(t.Context(), []byte(fmt.Sprintf("cursor-%d", i)), testRun(conn, i))
}

func delta(t *testing.T, s *cache.Store, conn string, i int, d *cache.Delta) error {
	t.Helper()
	_, err := s.ApplyDelta(t.Context(), conn, d, []byte(fmt.Sprintf("cursor-%d", i)), testRun(conn, i), false)
	return err
}

// dump is what a reader of s sees: entries, members, cursors, and with
// runs the history (which a snapshot does not carry: the shared history
// is in PostgreSQL).
func dump(t *testing.T, s *cache.Store, runs bool) string {
	t.Helper()
	var out []string
	err := s.View(t.Context(), func(v *cache.View) error {
		return v.Scan("", func(e *cache.Entry) (bool, error) {
			line := fmt.Sprintf("%s/%s %q %x", e.Connector, e.ID, e.DN, e.Hash())
			if e.Kind == cache.KindGroup {
				m, err := v.MemberIDs(e)
				if err != nil {
					return false, err
				}
				line += fmt.Sprintf(" members=%q", m)
			}
			out = append(out, line)
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	conns, err := s.Connectors()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		cur, err := s.Cursor(c)
		if err != nil {
			t.Fatal(err)
		}
		line := fmt.Sprintf("%s cursor=%q", c, cur)
		if runs {
			rs, err := s.Runs(t.Context(), c, 100)
			if err != nil {
				t.Fatal(err)
			}
			line += fmt.Sprintf(" runs=%+v", rs)
		}
		out = append(out, line)
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

func position(t *testing.T, s *cache.Store) uint64 {
	t.Helper()
	pos, _, err := s.Position()
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// follow runs l.Follow on s until the test ends.
func follow(t *testing.T, l *Log, s *cache.Store) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Follow(ctx, s) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("follow: %v", err)
		}
	})
}

// waitFor waits until follower reaches the leader's position, and returns
// how long that took.
func waitFor(t *testing.T, leader, follower *cache.Store, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	want := position(t, leader)
	for position(t, follower) < want {
		if time.Since(start) > within {
			t.Fatalf("follower at %d, leader at %d after %v", position(t, follower), want, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func TestFencedPublisherRefused(t *testing.T) {
	e := newEnv(t)
	leader, l := e.leader(t)
	if err := full(t, leader, "corp", 1, user("u1", udn(1))); err != nil {
		t.Fatal(err)
	}
	before := dump(t, leader, true)
	e.takeOver(t)
	if err := delta(t, leader, "corp", 2, &cache.Delta{Deletes: []string{"u1"}}); !errors.Is(err, lease.ErrFenced) {
		t.Fatalf("delta of a fenced leader: %v, want ErrFenced", err)
	}
	if err := full(t, leader, "corp", 3, user("u2", udn(2))); !errors.Is(err, lease.ErrFenced) {
		t.Fatalf("full sync of a fenced leader: %v, want ErrFenced", err)
	}
	if got := dump(t, leader, true); got != before {
		t.Fatalf("the fenced leader's cache changed:\n%s\nbefore:\n%s", got, before)
	}
	if head, _, err := l.Head(t.Context()); err != nil || head != 1 || position(t, leader) != 1 {
		t.Fatalf("head %d (%v), position %d; want 1", head, err, position(t, leader))
	}
}

func TestFollowersConverge(t *testing.T) {
	e := newEnv(t)
	leader, _ := e.leader(t)
	followers := []*cache.Store{openStore(t), openStore(t)}
	for _, f := range followers {
		follow(t, newLog(t, e.db.NewPool(t), Options{PollInterval: 200 * time.Millisecond}), f)
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"full syncs", func() error {
			if err := full(t, leader, "corp", 1, user("u1", udn(1)), user("u2", udn(2)), group(udn(1), udn(2))); err != nil {
				return err
			}
			return full(t, leader, "other", 2, user("x1", "uid=x1,dc=other"))
		}},
		{"delta", func() error {
			return delta(t, leader, "corp", 3, &cache.Delta{Upserts: []*cache.Entry{user("u3", udn(3)), user("u1", udn(9))}, Deletes: []string{"u2"}})
		}},
		{"unchanged run", func() error { return leader.SaveCursor(t.Context(), "other", []byte("o4"), testRun("other", 4)) }},
		{"second full sync", func() error {
			return full(t, leader, "corp", 5, user("u1", udn(9)), user("u4", udn(4)), group(udn(9), udn(4)))
		}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		for i, f := range followers {
			waitFor(t, leader, f, 30*time.Second)
			if got, want := dump(t, f, true), dump(t, leader, true); got != want {
				t.Fatalf("after %s follower %d differs:\n%s\nleader:\n%s", st.name, i, got, want)
			}
		}
	}
	// The shared sync state was written with the records.
	var cursor string
	if err := e.db.Pool.QueryRow(t.Context(), `SELECT convert_from(cursor, 'UTF8') FROM sync_cursor WHERE connector = 'corp'`).Scan(&cursor); err != nil || cursor != "cursor-5" {
		t.Fatalf("sync_cursor %q, %v", cursor, err)
	}
	var runs int
	if err := e.db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM sync_run`).Scan(&runs); err != nil || runs != 5 {
		t.Fatalf("sync_run has %d rows (%v), want 5", runs, err)
	}
}

func TestListenWakesFollower(t *testing.T) {
	e := newEnv(t)
	leader, _ := e.leader(t)
	// Polls too slow to matter: only LISTEN can wake this one.
	listening := openStore(t)
	follow(t, newLog(t, e.db.NewPool(t), Options{PollInterval: time.Hour}), listening)
	// Listens where nothing is notified: only its poll can wake it.
	polling := openStore(t)
	deaf := newLog(t, e.db.NewPool(t), Options{PollInterval: 300 * time.Millisecond})
	deaf.channel = "nothing_here"
	follow(t, deaf, polling)
	for i := range 3 {
		if err := full(t, leader, "corp", i, user(fmt.Sprintf("u%d", i), udn(i))); err != nil {
			t.Fatal(err)
		}
		took := waitFor(t, leader, listening, 20*time.Second)
		t.Logf("record %d applied by the listening follower after %v", i+1, took)
		waitFor(t, leader, polling, 20*time.Second)
	}
}

func TestNewFollowerLoadsSnapshot(t *testing.T) {
	e := newEnv(t)
	leader, l := e.leader(t)
	if err := full(t, leader, "corp", 1, user("u1", udn(1)), user("u2", udn(2))); err != nil {
		t.Fatal(err)
	}
	for i := 2; i < 5; i++ {
		if err := delta(t, leader, "corp", i, &cache.Delta{Upserts: []*cache.Entry{user(fmt.Sprintf("n%d", i), udn(10+i))}}); err != nil {
			t.Fatal(err)
		}
	}
	l.opt.CompactDeltas, l.opt.PruneGrace = 2, time.Nanosecond
	if err := l.Compact(t.Context(), leader); err != nil {
		t.Fatal(err)
	}
	var records, bases int
	if err := e.db.Pool.QueryRow(t.Context(), `SELECT count(*), count(*) FILTER (WHERE base) FROM changelog`).Scan(&records, &bases); err != nil {
		t.Fatal(err)
	}
	if records != 1 || bases != 1 || position(t, leader) != 5 {
		t.Fatalf("after compaction: %d records, %d bases, leader at %d; want the one Base at 5", records, bases, position(t, leader))
	}
	if err := delta(t, leader, "corp", 6, &cache.Delta{Deletes: []string{"u1"}}); err != nil {
		t.Fatal(err)
	}
	loads := counter(t, metrics.ChangelogSnapshots)
	follower := openStore(t)
	fl := newLog(t, e.db.NewPool(t), Options{PollInterval: time.Millisecond})
	if err := fl.CatchUp(t.Context(), follower); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if lag := fl.Lag(); lag != 0 {
		t.Errorf("lag %v after catching up, not following", lag)
	}
	if got, want := dump(t, follower, false), dump(t, leader, false); got != want || position(t, follower) != 6 {
		t.Fatalf("new follower at %d:\n%s\nleader:\n%s", position(t, follower), got, want)
	}
	if counter(t, metrics.ChangelogSnapshots) != loads+1 {
		t.Error("the snapshot load was not counted")
	}
}

func TestFarBehindFollowerAfterPrune(t *testing.T) {
	e := newEnv(t)
	leader, l := e.leader(t)
	follower := openStore(t)
	fl := newLog(t, e.db.NewPool(t), Options{})
	if err := full(t, leader, "corp", 1, user("u1", udn(1)), user("u2", udn(2))); err != nil {
		t.Fatal(err)
	}
	if err := full(t, leader, "other", 2, user("x1", "uid=x1,dc=other")); err != nil {
		t.Fatal(err)
	}
	if err := fl.CatchUp(t.Context(), follower); err != nil {
		t.Fatal(err)
	}
	// Away while the leader goes on and compacts: the records after the
	// follower's position are pruned.
	for i := 3; i < 6; i++ {
		if err := delta(t, leader, "corp", i, &cache.Delta{Upserts: []*cache.Entry{user(fmt.Sprintf("n%d", i), udn(10+i))}, Deletes: []string{"u2"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := delta(t, leader, "other", 6, &cache.Delta{Upserts: []*cache.Entry{user("x2", "uid=x2,dc=other")}}); err != nil {
		t.Fatal(err)
	}
	l.opt.CompactDeltas, l.opt.PruneGrace = 2, time.Nanosecond
	if err := l.Compact(t.Context(), leader); err != nil {
		t.Fatal(err)
	}
	var next int
	if err := e.db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM changelog WHERE seq = 3`).Scan(&next); err != nil || next != 0 {
		t.Fatalf("record 3, the follower's next, was not pruned (%v)", err)
	}
	if err := delta(t, leader, "corp", 9, &cache.Delta{Deletes: []string{"n3"}}); err != nil {
		t.Fatal(err)
	}
	if err := fl.CatchUp(t.Context(), follower); err != nil {
		t.Fatal(err)
	}
	if got, want := dump(t, follower, false), dump(t, leader, false); got != want || position(t, follower) != position(t, leader) {
		t.Fatalf("follower at %d, leader at %d:\n%s\nleader:\n%s", position(t, follower), position(t, leader), got, want)
	}
}

// TestPublishOrder: syncs of two connectors committing at once publish in
// an order that PostgreSQL commits too, so a reader never sees a seq
// before every smaller one, and a follower ends identical.
func TestPublishOrder(t *testing.T) {
	e := newEnv(t)
	leader, _ := e.leader(t)
	const n = 30
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for _, conn := range []string{"a", "b"} {
		if err := full(t, leader, conn, 0, user(conn, udn(0))); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= n; i++ {
				if err := delta(t, leader, conn, i, &cache.Delta{Upserts: []*cache.Entry{user(fmt.Sprintf("%s%d", conn, i), udn(i))}}); err != nil {
					errs <- err
				}
			}
		}()
	}
	stop := make(chan struct{})
	go func() { wg.Wait(); close(stop) }()
	for running := true; running; {
		select {
		case <-stop:
			running = false
		default:
		}
		var count, maxSeq int64
		if err := e.db.Pool.QueryRow(t.Context(), `SELECT count(*), coalesce(max(seq), 0) FROM changelog`).Scan(&count, &maxSeq); err != nil {
			t.Fatal(err)
		}
		if count != maxSeq {
			t.Fatalf("a reader saw %d records up to seq %d: a later seq committed first", count, maxSeq)
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	follower := openStore(t)
	if err := newLog(t, e.db.NewPool(t), Options{}).CatchUp(t.Context(), follower); err != nil {
		t.Fatal(err)
	}
	if got, want := dump(t, follower, true), dump(t, leader, true); got != want || position(t, leader) != 2*n+2 {
		t.Fatalf("leader at %d; follower:\n%s\nleader:\n%s", position(t, leader), got, want)
	}
}

// TestPublishBehindRefused: a cache that lacks records of the log (a new
// leader that did not catch up) cannot publish over them; once caught up
// it can.
func TestPublishBehindRefused(t *testing.T) {
	e := newEnv(t)
	old, _ := e.leader(t)
	if err := full(t, old, "corp", 1, user("u1", udn(1))); err != nil {
		t.Fatal(err)
	}
	next := openStore(t)
	l := newLog(t, e.db.Pool, Options{})
	next.SetPublisher(l.Publisher(e.takeOver(t)))
	if err := full(t, next, "other", 2, user("x1", "uid=x1,dc=other")); !errors.Is(err, ErrBehind) {
		t.Fatalf("publish of a cache behind the log: %v, want ErrBehind", err)
	}
	if err := l.CatchUp(t.Context(), next); err != nil {
		t.Fatal(err)
	}
	if err := full(t, next, "other", 2, user("x1", "uid=x1,dc=other")); err != nil {
		t.Fatal(err)
	}
	if position(t, next) != 2 {
		t.Fatalf("position %d, want 2", position(t, next))
	}
}

// lostAck publishes, then reports a failure: a connection lost after
// PostgreSQL committed the record, before the answer arrived.
type lostAck struct{ p cache.Publisher }

func (a lostAck) Publish(ctx context.Context, r *cache.Record) (uint64, error) {
	if _, err := a.p.Publish(ctx, r); err != nil {
		return 0, err
	}
	return 0, errors.New("connection lost")
}

// TestLostAckRepairedByCompact: a leader whose cache aborted a commit that
// the log has is refused further publishes until Compact catches it up.
func TestLostAckRepairedByCompact(t *testing.T) {
	e := newEnv(t)
	leader, l := e.leader(t)
	if err := full(t, leader, "corp", 1, user("u1", udn(1))); err != nil {
		t.Fatal(err)
	}
	leader.SetPublisher(lostAck{l.Publisher(e.fence)})
	if err := delta(t, leader, "corp", 2, &cache.Delta{Upserts: []*cache.Entry{user("u2", udn(2))}}); err == nil {
		t.Fatal("no error from the lost acknowledgement")
	}
	leader.SetPublisher(l.Publisher(e.fence))
	if err := delta(t, leader, "corp", 3, &cache.Delta{Deletes: []string{"u1"}}); !errors.Is(err, ErrBehind) {
		t.Fatalf("publish after a lost acknowledgement: %v, want ErrBehind", err)
	}
	if err := l.Compact(t.Context(), leader); err != nil {
		t.Fatal(err)
	}
	if err := delta(t, leader, "corp", 3, &cache.Delta{Deletes: []string{"u1"}}); err != nil {
		t.Fatal(err)
	}
	follower := openStore(t)
	if err := newLog(t, e.db.NewPool(t), Options{}).CatchUp(t.Context(), follower); err != nil {
		t.Fatal(err)
	}
	if got, want := dump(t, follower, false), dump(t, leader, false); got != want || !strings.Contains(got, "corp/u2") {
		t.Fatalf("follower:\n%s\nleader:\n%s", got, want)
	}
}

// TestFollowerRetriesWhileDatabaseUnreachable: every connection of the
// follower is cut and refused for a while; it keeps serving, its lag
// grows, and it catches up once the database answers again.
func TestFollowerRetriesWhileDatabaseUnreachable(t *testing.T) {
	e := newEnv(t)
	leader, _ := e.leader(t)
	px := e.db.NewProxy(t)
	pool := e.db.PoolVia(t, px.Addr())
	follower := openStore(t)
	fl := newLog(t, pool, Options{PollInterval: 100 * time.Millisecond})
	follow(t, fl, follower)
	if err := full(t, leader, "corp", 1, user("u1", udn(1))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, leader, follower, 20*time.Second)
	errsBefore := counter(t, metrics.ChangelogErrors)
	px.Cut()
	if err := delta(t, leader, "corp", 2, &cache.Delta{Upserts: []*cache.Entry{user("u2", udn(2))}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for counter(t, metrics.ChangelogErrors) < errsBefore+2 || fl.Lag() < time.Second {
		if time.Now().After(deadline) {
			t.Fatalf("no retries counted or lag %v not growing while the database is unreachable", fl.Lag())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if position(t, follower) == position(t, leader) {
		t.Fatal("the follower caught up through a cut connection")
	}
	// Still serving what it has.
	if !strings.Contains(dump(t, follower, true), "corp/u1") {
		t.Fatal("the follower stopped serving")
	}
	px.Restore()
	waitFor(t, leader, follower, 30*time.Second)
	if got, want := dump(t, follower, true), dump(t, leader, true); got != want {
		t.Fatalf("after the outage:\n%s\nleader:\n%s", got, want)
	}
	if lag := fl.Lag(); lag > 5*time.Second {
		t.Fatalf("lag %v after catching up", lag)
	}
}

// counter reads a counter's value.
func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
