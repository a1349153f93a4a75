package dirsync

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
)

// probeSource calls during before reading the upstream.
type probeSource struct {
	*fakeSource
	during func()
}

func (p probeSource) Full(ctx context.Context, emit func(*cache.Entry) error) (Listing, error) {
	p.during()
	return p.fakeSource.Full(ctx, emit)
}

// TestRecordStarts: with RecordStarts, a run is in the history without an
// end while it runs (and shown as running), and its final record replaces
// that one.
func TestRecordStarts(t *testing.T) {
	src := newFake(3)
	s, _ := schedulerFixture(t, src)
	s.eng.RecordStarts()
	ctx := context.Background()
	var during []cache.Run
	var running bool
	s.sources = func(*config.Connector) (Source, error) {
		return probeSource{src, func() {
			during, _ = s.eng.state.Runs(ctx, "c", 10)
			st, _ := s.Status(ctx)
			running = st[0].Running
		}}, nil
	}
	if _, err := s.SyncNow(ctx, "c", Options{Trigger: "api"}); err != nil {
		t.Fatal(err)
	}
	if len(during) != 1 || !during[0].End.IsZero() || during[0].Trigger != "api" || !running {
		t.Fatalf("history during the run: %+v (running %v), want one run without an end", during, running)
	}
	after, _ := s.eng.state.Runs(ctx, "c", 10)
	if len(after) != 1 || after[0].End.IsZero() || after[0].Added != 3 || !after[0].Start.Equal(during[0].Start) {
		t.Fatalf("history after the run: %+v", after)
	}
}

// TestLeadAbortsUnfinishedRuns: a new leader records the runs that never
// ended before its term as aborted and redoes a scheduled one; an
// on-demand one is not redone here (its request is claimed again), and a
// run of its own term is left alone.
func TestLeadAbortsUnfinishedRuns(t *testing.T) {
	for _, tc := range []struct {
		trigger string
		redo    bool
	}{{TriggerSchedule, true}, {TriggerMissed, true}, {"console", false}} {
		t.Run(tc.trigger, func(t *testing.T) {
			s, _ := schedulerFixture(t, newFake(4))
			s.eng.RecordStarts()
			ctx, cancel := context.WithCancel(context.Background())
			since := time.Now()
			dead := cache.Run{Connector: "c", Start: since.Add(-time.Minute).UTC(), Trigger: tc.trigger, Mode: ModeFull}
			if err := s.eng.state.RecordRun(ctx, &dead); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { s.Lead(ctx, since); close(done) }()
			var runs []cache.Run
			deadline := time.Now().Add(10 * time.Second)
			for {
				runs, _ = s.eng.state.Runs(ctx, "c", 10)
				old := runs[len(runs)-1]
				if !old.End.IsZero() && (!tc.redo || len(runs) == 2 && !runs[0].End.IsZero()) {
					if !strings.HasPrefix(old.Error, "aborted") || !old.Start.Equal(dead.Start) {
						t.Fatalf("the dead run is recorded as %+v", old)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("history %+v", runs)
				}
				time.Sleep(20 * time.Millisecond)
			}
			cancel()
			<-done
			runs, _ = s.eng.state.Runs(context.Background(), "c", 10)
			redone := len(runs) == 2 && runs[0].Trigger == TriggerRedo && runs[0].Error == "" && runs[0].Added == 4
			if redone != tc.redo {
				t.Fatalf("redone %v, want %v: %+v", redone, tc.redo, runs)
			}
		})
	}
	// A run of this term (started after since) is not aborted.
	s, _ := schedulerFixture(t, newFake(1))
	since := time.Now().Add(-time.Hour)
	own := cache.Run{Connector: "c", Start: time.Now().UTC(), Trigger: "api"}
	if err := s.eng.state.RecordRun(context.Background(), &own); err != nil {
		t.Fatal(err)
	}
	s.catchUp(context.Background(), since)
	s.wg.Wait()
	if runs, _ := s.eng.state.Runs(context.Background(), "c", 10); len(runs) != 1 || !runs[0].End.IsZero() {
		t.Fatalf("a run of the term was touched: %+v", runs)
	}
	// Nor is a run in progress here whose start, by this replica's clock,
	// is before since, by the database's (the clocks differ).
	s, _ = schedulerFixture(t, newFake(1))
	own = cache.Run{Connector: "c", Start: time.Now().Add(-time.Second).UTC(), Trigger: "api"}
	if err := s.eng.state.RecordRun(context.Background(), &own); err != nil {
		t.Fatal(err)
	}
	s.eng.running.Store("c", struct{}{})
	s.catchUp(context.Background(), time.Now())
	s.wg.Wait()
	if runs, _ := s.eng.state.Runs(context.Background(), "c", 10); len(runs) != 1 || !runs[0].End.IsZero() {
		t.Fatalf("the run in progress here was touched: %+v", runs)
	}
}

// TestForward: with a Forward set, on-demand runs go there and not to the
// local engine, which returns their outcome; their blocked plan is held by
// the replica that ran them, not here (TestHeldPlanSharedByReplicas); an
// unknown connector is refused here.
func TestForward(t *testing.T) {
	src := newFake(5)
	s, _ := schedulerFixture(t, src)
	ctx := context.Background()
	var got []Options
	plan := &Result{Run: cache.Run{Connector: "c", Blocked: "too many deletions"}, Plan: Plan{Deletes: []PlanItem{{ID: "u001"}}}}
	s.SetForward(func(_ context.Context, name string, o Options) (*Result, error) {
		got = append(got, o)
		return plan, &BlockedError{Connector: name, Reason: "too many deletions"}
	})
	_, err := s.SyncNow(ctx, "c", Options{Trigger: "console", Mode: ModeFull})
	var b *BlockedError
	if !errors.As(err, &b) || len(got) != 1 || got[0].Trigger != "console" {
		t.Fatalf("forwarded run: %v, calls %+v", err, got)
	}
	if p, ok := s.Blocked("c"); ok {
		t.Fatalf("the forwarding replica holds the plan of a run it did not run: %+v", p)
	}
	if runs, _ := s.eng.state.Runs(ctx, "c", 10); len(runs) != 0 {
		t.Fatalf("a forwarded run ran here: %+v", runs)
	}
	if _, err := s.SyncNow(ctx, "nope", Options{}); !errors.Is(err, ErrUnknownConnector) || len(got) != 1 {
		t.Fatalf("unknown connector: %v (forwarded %d)", err, len(got))
	}
	s.SetForward(nil)
	if _, err := s.SyncNow(ctx, "c", Options{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Blocked("c"); ok || len(got) != 1 {
		t.Fatal("after SetForward(nil) the run did not happen here")
	}
}
