package dirsync

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/state/pgstate/pgtest"
)

// TestHeldPlanSharedByReplicas: the plan of a run the safety rules blocked
// on the leader is held in the shared state (PostgreSQL): a standby shows
// it, a new leader (a fresh scheduler, after a failover) still holds it,
// and the standby's approval, forwarded to that leader, applies it and
// drops it everywhere.
func TestHeldPlanSharedByReplicas(t *testing.T) {
	db := pgtest.New(t)
	_, _, c := setup(t)
	src := newFake(20)
	ctx := context.Background()
	replica := func(store *cache.Store) *Scheduler {
		eng := New(store, db.Store(t, "").Stores(), nil)
		eng.RecordStarts()
		cfg := &config.Config{Connectors: []config.Connector{*c}}
		s, err := NewScheduler(cfg, eng, store, func(*config.Connector) (Source, error) { return src, nil }, eng.log)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	openCache := func() *cache.Store {
		s, err := cache.Open(t.TempDir(), cache.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	leaderCache := openCache()
	leader, standby := replica(leaderCache), replica(openCache())
	standby.SetForward(leader.RunHere)
	if _, err := standby.SyncNow(ctx, "c", Options{Trigger: "console"}); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		src.del(fmt.Sprintf("u%03d", i))
	}
	var b *BlockedError
	if _, err := standby.SyncNow(ctx, "c", Options{Trigger: "console", Mode: ModeFull}); !errors.As(err, &b) {
		t.Fatalf("want blocked, got %v", err)
	}
	plan, ok := standby.Blocked("c")
	if !ok || len(plan.Plan.Deletes) != 8 || plan.Plan.Deletes[0].DN == "" {
		t.Fatalf("the standby's view of the blocked plan: %v %+v", ok, plan)
	}
	if st, err := standby.Status(ctx); err != nil || st[0].State != "blocked" || st[0].Blocked == "" {
		t.Fatalf("the standby's status: %+v %v", st, err)
	}

	next := replica(leaderCache) // the new leader: nothing carried in memory
	if p, ok := next.Blocked("c"); !ok || len(p.Plan.Deletes) != 8 {
		t.Fatalf("the new leader's view of the blocked plan: %v %+v", ok, p)
	}
	standby.SetForward(next.RunHere)
	approved := make([]string, 0, len(plan.Plan.Deletes))
	for _, d := range plan.Plan.Deletes {
		approved = append(approved, d.ID)
	}
	res, err := standby.SyncNow(ctx, "c", Options{Trigger: "console", Mode: ModeFull, Force: true, Approved: approved})
	if err != nil || res.Deleted != 8 {
		t.Fatalf("approving the held plan: %+v %v", res, err)
	}
	for name, s := range map[string]*Scheduler{"standby": standby, "old leader": leader, "new leader": next} {
		if p, ok := s.Blocked("c"); ok {
			t.Errorf("%s still holds the applied plan: %+v", name, p)
		}
	}
}
