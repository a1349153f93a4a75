package dirsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/config"
)

func schedulerFixture(t *testing.T, src *fakeSource) (*Scheduler, *config.Config) {
	t.Helper()
	e, _, c := setup(t)
	cfg := &config.Config{Connectors: []config.Connector{*c}}
	cfg.Connectors[0].IncrementalInterval = 0
	s, err := NewScheduler(cfg, e, e.store, func(*config.Connector) (Source, error) { return src, nil }, e.log)
	if err != nil {
		t.Fatal(err)
	}
	return s, cfg
}

func TestSchedulerCatchUpAndStatus(t *testing.T) {
	src := newFake(10)
	s, _ := schedulerFixture(t, src)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	// Never synced: the missed run starts at once.
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := s.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st[0].State == "ok" {
			if st[0].Users != 10 || st[0].LastRun.Trigger != TriggerMissed || st[0].NextRun.IsZero() {
				t.Fatalf("status after catch-up: %+v", st[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no catch-up run: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	// A second start right after: nothing was missed.
	runs, _ := s.store.Runs(context.Background(), "c", 10)
	s2, _ := schedulerFixture(t, src)
	s2.store = s.store
	if sc := s2.scheds["c"]; sc.Missed(runs[0].Start, time.Now()) {
		t.Fatal("a run just made counts as missed")
	}
}

func TestSchedulerBlockedPlan(t *testing.T) {
	src := newFake(20)
	s, _ := schedulerFixture(t, src)
	ctx := context.Background()
	if _, err := s.SyncNow(ctx, "c", Options{Trigger: "api"}); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		src.del(fmt.Sprintf("u%03d", i))
	}
	_, err := s.SyncNow(ctx, "c", Options{Trigger: "api", Mode: ModeFull})
	var b *BlockedError
	if !errors.As(err, &b) {
		t.Fatalf("want blocked, got %v", err)
	}
	plan, ok := s.Blocked("c")
	if !ok || len(plan.Plan.Deletes) != 8 || plan.Plan.Deletes[0].DN == "" {
		t.Fatalf("blocked plan: %v %+v", ok, plan)
	}
	st, _ := s.Status(ctx)
	if st[0].State != "blocked" {
		t.Fatalf("state %q", st[0].State)
	}
	if _, err := s.SyncNow(ctx, "c", Options{Trigger: "console", Force: true, Mode: ModeFull}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Blocked("c"); ok {
		t.Fatal("the plan stays pending after it was applied")
	}
	if _, err := s.SyncNow(ctx, "nope", Options{}); !errors.Is(err, ErrUnknownConnector) {
		t.Fatalf("unknown connector: %v", err)
	}
}

func TestSchedulerPlanIncrementalInterval(t *testing.T) {
	s, cfg := schedulerFixture(t, newFake(1))
	cfg.Connectors[0].IncrementalInterval = config.Duration(10 * time.Minute)
	base := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return base }
	if err := s.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	next, fire := s.plan()
	if !next.Equal(base.Add(10*time.Minute)) || fire[0].trigger != TriggerInterval {
		t.Fatalf("first event %s %+v, want the interval at 09:10", next, fire)
	}
	s.now = func() time.Time { return base.Add(10 * time.Minute) }
	next, _ = s.plan()
	if !next.Equal(base.Add(20 * time.Minute)) {
		t.Fatalf("the interval must move on: %s", next)
	}
	s.now = func() time.Time { return base.Add(3*time.Hour + 55*time.Minute) } // 12:55
	s.nextInc = map[string]time.Time{"c": base.Add(5 * time.Hour)}
	next, fire = s.plan()
	if !next.Equal(time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC)) || fire[0].trigger != TriggerSchedule {
		t.Fatalf("the 13:00 scheduled run: %s %+v", next, fire)
	}
}

func TestApplyOnlyReviewedDeletions(t *testing.T) {
	src := newFake(20)
	s, _ := schedulerFixture(t, src)
	ctx := context.Background()
	if _, err := s.SyncNow(ctx, "c", Options{}); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		src.del(fmt.Sprintf("u%03d", i))
	}
	if _, err := s.SyncNow(ctx, "c", Options{Mode: ModeFull}); err == nil {
		t.Fatal("not blocked")
	}
	plan, _ := s.Blocked("c")
	var approved []string
	for _, d := range plan.Plan.Deletes {
		approved = append(approved, d.ID)
	}
	// The directory loses one more entry after the review.
	src.del("u010")
	_, err := s.SyncNow(ctx, "c", Options{Mode: ModeFull, Force: true, Approved: approved})
	var b *BlockedError
	if !errors.As(err, &b) || !strings.Contains(b.Reason, "1 deletions are not in the reviewed plan") {
		t.Fatalf("a deletion outside the reviewed plan was applied: %v", err)
	}
	st, _ := s.Status(ctx)
	if st[0].Users != 20 {
		t.Fatalf("%d users served after the refused apply", st[0].Users)
	}
	// Reviewed again: applies.
	plan, _ = s.Blocked("c")
	approved = approved[:0]
	for _, d := range plan.Plan.Deletes {
		approved = append(approved, d.ID)
	}
	if _, err := s.SyncNow(ctx, "c", Options{Mode: ModeFull, Force: true, Approved: approved}); err != nil {
		t.Fatal(err)
	}
	if st, _ = s.Status(ctx); st[0].Users != 11 {
		t.Fatalf("%d users after the reviewed apply, want 11", st[0].Users)
	}
}
