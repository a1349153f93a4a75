package syncreq

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/cluster/lease"
	"github.com/dirgate/dirgate/cluster/schema/pgtest"
	dirsync "github.com/dirgate/dirgate/sync"
)

// newPools returns n pools on one private, migrated schema: n replicas.
func newPools(t *testing.T, n int) []*pgxpool.Pool {
	t.Helper()
	d := pgtest.New(t)
	out := []*pgxpool.Pool{d.Pool}
	for range n - 1 {
		out = append(out, d.NewPool(t))
	}
	ctx := context.Background()
	if err := lease.Migrate(ctx, out[0]); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, out[0]); err != nil {
		t.Fatal(err)
	}
	return out
}

// leader runs a lease for holder on pool and serves the queue with run
// while it leads; stop ends it (releasing the lease).
func leader(t *testing.T, pool *pgxpool.Pool, holder string, run RunFunc) (stop func()) {
	t.Helper()
	l, err := lease.New(pool, lease.Config{Name: "sync", Holder: holder, TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	q := New(pool, Config{Requester: holder, Poll: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = l.Run(ctx, func(s lease.Status) {
			if s.Leader {
				go q.Serve(s.Ctx, s.Fence, run)
			}
		})
	}()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

func sampleResult(conn string) *dirsync.Result {
	start := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	return &dirsync.Result{
		Run: cache.Run{Connector: conn, Start: start, End: start.Add(3 * time.Second), Trigger: "console", Mode: "full",
			Added: 3, Updated: 2, Deleted: 1, Read: 40, Host: "ldap1", Duration: 3 * time.Second},
		Plan: dirsync.Plan{Deletes: []dirsync.PlanItem{{ID: "42", DN: "uid=x,dc=example,dc=com", Kind: cache.KindUser}}},
	}
}

// TestStandbyRequestRunsOnLeader: a standby's request is run by the
// leader with the standby's options, and the standby returns the
// leader's Result and error as a local run would, sentinels and types
// included.
func TestStandbyRequestRunsOnLeader(t *testing.T) {
	pools := newPools(t, 2)
	type call struct {
		conn string
		o    dirsync.Options
	}
	calls := make(chan call, 10)
	errs := map[string]error{
		"corp":    nil,
		"busy":    fmt.Errorf("sync busy: %w", dirsync.ErrRunning),
		"blocked": &dirsync.BlockedError{Connector: "blocked", Reason: "would delete 60% of users"},
		"broken":  errors.New("sync broken: bind: invalid credentials"),
	}
	leader(t, pools[0], "leader", func(ctx context.Context, conn string, o dirsync.Options) (*dirsync.Result, error) {
		calls <- call{conn, o}
		return sampleResult(conn), errs[conn]
	})
	standby := New(pools[1], Config{Requester: "standby", Poll: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := dirsync.Options{Trigger: "console", DryRun: true, Force: true, Approved: []string{"42"}, Mode: dirsync.ModeFull, Progress: func(int) {}}
	for conn, wantErr := range errs {
		res, err := standby.Do(ctx, conn, o)
		got := <-calls
		if got.conn != conn || got.o.Trigger != o.Trigger || !got.o.DryRun || !got.o.Force || got.o.Mode != o.Mode ||
			!reflect.DeepEqual(got.o.Approved, o.Approved) {
			t.Errorf("%s: leader ran %+v", conn, got)
		}
		if !reflect.DeepEqual(res, sampleResult(conn)) {
			t.Errorf("%s: result\n got %+v\nwant %+v", conn, res, sampleResult(conn))
		}
		switch {
		case wantErr == nil:
			if err != nil {
				t.Errorf("%s: error %v", conn, err)
			}
		case err == nil || err.Error() != wantErr.Error():
			t.Errorf("%s: error %v, want %v", conn, err, wantErr)
		}
		var blocked *dirsync.BlockedError
		if errors.As(wantErr, &blocked) {
			var got *dirsync.BlockedError
			if !errors.As(err, &got) || *got != *blocked {
				t.Errorf("%s: error %#v, want a *BlockedError %#v", conn, err, blocked)
			}
		}
		if errors.Is(err, dirsync.ErrRunning) != errors.Is(wantErr, dirsync.ErrRunning) {
			t.Errorf("%s: errors.Is(%v, ErrRunning) differs from the leader's", conn, err)
		}
	}
	var left int
	if err := pools[0].QueryRow(ctx, `SELECT count(*) FROM sync_request`).Scan(&left); err != nil || left != 0 {
		t.Errorf("answered requests left in the table: %d (%v)", left, err)
	}
}

// TestRequestOfDeadLeaderRedone: a leader that claimed a request and
// stopped before answering does not leave the requester waiting: the next
// leader runs it again, and the first leader's late answer is refused.
func TestRequestOfDeadLeaderRedone(t *testing.T) {
	pools := newPools(t, 3)
	claimed := make(chan struct{})
	release := make(chan struct{})
	var firstAnswered atomic.Bool
	stopFirst := leader(t, pools[0], "first", func(ctx context.Context, conn string, o dirsync.Options) (*dirsync.Result, error) {
		close(claimed)
		<-release // a run that ignores the end of its term, like a paused process
		firstAnswered.Store(true)
		res := sampleResult(conn)
		res.Host = "first"
		return res, nil
	})
	standby := New(pools[2], Config{Requester: "standby", Poll: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type answer struct {
		res *dirsync.Result
		err error
	}
	answers := make(chan answer, 1)
	go func() {
		res, err := standby.Do(ctx, "corp", dirsync.Options{Trigger: "api"})
		answers <- answer{res, err}
	}()
	select {
	case <-claimed:
	case <-ctx.Done():
		t.Fatal("the first leader never claimed the request")
	}
	go stopFirst() // its lease is released; the run is still in progress
	second := make(chan struct{}, 1)
	leader(t, pools[1], "second", func(ctx context.Context, conn string, o dirsync.Options) (*dirsync.Result, error) {
		second <- struct{}{}
		close(release) // now the first leader answers too, too late
		res := sampleResult(conn)
		res.Host = "second"
		return res, nil
	})
	a := <-answers
	if a.err != nil || a.res == nil || a.res.Host != "second" {
		t.Fatalf("answer %+v, %v; want the second leader's", a.res, a.err)
	}
	if len(second) != 1 {
		t.Errorf("the second leader ran the request %d times", len(second))
	}
	deadline := time.Now().Add(10 * time.Second)
	for !firstAnswered.Load() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !firstAnswered.Load() {
		t.Fatal("the first leader's run never returned")
	}
}

// TestWithdrawUnclaimed: a requester that gives up before any leader
// claimed its request deletes it, so no later leader runs it.
func TestWithdrawUnclaimed(t *testing.T) {
	pools := newPools(t, 1)
	q := New(pools[0], Config{Requester: "standby", Poll: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := q.Do(ctx, "corp", dirsync.Options{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do without a leader: %v", err)
	}
	var left int
	if err := pools[0].QueryRow(context.Background(), `SELECT count(*) FROM sync_request`).Scan(&left); err != nil || left != 0 {
		t.Errorf("withdrawn request left in the table: %d (%v)", left, err)
	}
}
