package dirsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/cluster/changelog"
	"github.com/dirgate/dirgate/cluster/lease"
	"github.com/dirgate/dirgate/config"
)

// failingPublisher refuses every commit with err, as the change log does
// for an ex-leader (lease.ErrFenced) or a cache behind the log
// (changelog.ErrBehind).
type failingPublisher struct{ err error }

func (p failingPublisher) Publish(context.Context, *cache.Record) (uint64, error) {
	return 0, fmt.Errorf("changelog: publish: %w", p.err)
}

// TestRefusedPublishIsNotTheUpstreamsFault: a run whose commit the cluster
// refused (fenced, or the cache behind the log) leaves the connector's
// engine state alone, so the next run applies an upstream deletion instead
// of pausing it; a fenced run is not recorded either (the successor owns
// the history), one refused for a stale cache is, with its error.
func TestRefusedPublishIsNotTheUpstreamsFault(t *testing.T) {
	for _, tc := range []struct {
		err      error
		recorded bool
	}{{lease.ErrFenced, false}, {changelog.ErrBehind, true}} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			e, store, c := setup(t)
			ctx := context.Background()
			src := newFake(20)
			if _, err := e.Run(ctx, c, src, Options{}); err != nil {
				t.Fatal(err)
			}
			store.SetPublisher(failingPublisher{tc.err})
			src.put("u100")
			if _, err := e.Run(ctx, c, src, Options{Trigger: TriggerSchedule}); !errors.Is(err, tc.err) {
				t.Fatalf("run with a refused publish: %v", err)
			}
			st, err := e.state.EngineState(ctx, "c")
			if err != nil || st.NeedFull || st.LastError != "" {
				t.Fatalf("engine state after the refused run: %+v %v", st, err)
			}
			runs, _ := e.state.Runs(ctx, "c", 10)
			if recorded := len(runs) == 2 && strings.Contains(runs[0].Error, tc.err.Error()); recorded != tc.recorded || len(runs) > 2 {
				t.Fatalf("history %+v: refused run recorded %v, want %v", runs, recorded, tc.recorded)
			}
			store.SetPublisher(nil)
			src.del("u001")
			res, err := e.Run(ctx, c, src, Options{Trigger: TriggerSchedule})
			if err != nil || res.DeletesPaused != 0 || res.Deleted != 1 {
				t.Fatalf("next run: %+v %v; want the deletion applied", res.Run, err)
			}
		})
	}
}

// gatedSource reads once started is closed and release is.
type gatedSource struct {
	*fakeSource
	started, release chan struct{}
}

func (g gatedSource) Full(ctx context.Context, emit func(*cache.Entry) error) (Listing, error) {
	close(g.started)
	<-g.release
	return g.fakeSource.Full(ctx, emit)
}

// fakeQueue stands for cluster/syncreq: forwarded requests wait in it
// until a leader serves them.
type fakeQueue struct {
	mu   sync.Mutex
	reqs []Options
}

func (q *fakeQueue) forward(ctx context.Context, _ string, o Options) (*Result, error) {
	q.mu.Lock()
	q.reqs = append(q.reqs, o)
	q.mu.Unlock()
	<-ctx.Done()
	return nil, ctx.Err()
}

func (q *fakeQueue) take() []Options {
	q.mu.Lock()
	defer q.mu.Unlock()
	r := q.reqs
	q.reqs = nil
	return r
}

// TestTakeoverRunsScheduledRunOnce: the leader's scheduled run runs on the
// leader, not through the request queue (where the next leader would claim
// it again). When the leader dies during it, the next leader records it as
// aborted and runs it again once; the dead leader, should it resume, is
// fenced and overwrites neither the history nor the engine state.
func TestTakeoverRunsScheduledRunOnce(t *testing.T) {
	engB, storeB, c := setup(t)
	shared := storeB.States()
	storeA, err := cache.Open(t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer storeA.Close()
	engA := New(storeA, shared, nil)
	src := newFake(5)
	gate := gatedSource{src, make(chan struct{}), make(chan struct{})}
	scheduler := func(eng *Engine, store *cache.Store, src Source, q *fakeQueue) *Scheduler {
		eng.RecordStarts()
		cfg := &config.Config{Connectors: []config.Connector{*c}}
		s, err := NewScheduler(cfg, eng, store, func(*config.Connector) (Source, error) { return src, nil }, eng.log)
		if err != nil {
			t.Fatal(err)
		}
		s.SetForward(q.forward)
		return s
	}
	queue := &fakeQueue{}
	a := scheduler(engA, storeA, gate, queue)
	b := scheduler(engB, storeB, src, queue)

	// A leads; the connector never synced, so its missed run starts now,
	// and A "dies" during it (it hangs in the upstream read).
	ctxA, cancelA := context.WithCancel(context.Background())
	doneA := make(chan struct{})
	go func() { a.Lead(ctxA, time.Now()); close(doneA) }()
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(gate.release) }) }
	defer func() { release(); cancelA(); <-doneA }()
	select {
	case <-gate.started:
	case <-time.After(10 * time.Second):
		t.Fatalf("the leader's scheduled run did not run on the leader; queued requests: %+v", queue.take())
	}
	storeA.SetPublisher(failingPublisher{lease.ErrFenced}) // from now on A is an ex-leader

	// B takes over: it redoes what A left unfinished, then serves the
	// queue as syncreq would (requests of the dead term are claimed again).
	ctxB, cancelB := context.WithCancel(context.Background())
	doneB := make(chan struct{})
	go func() { b.Lead(ctxB, time.Now()); close(doneB) }()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for ended := 0; ended == 0; {
		runs, _ := engB.state.Runs(ctx, "c", 10)
		for _, r := range runs {
			if !r.End.IsZero() && r.Error == "" {
				ended++
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new leader ran nothing: %+v", runs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancelB()
	<-doneB
	for _, o := range queue.take() {
		if _, err := b.RunHere(ctx, "c", o); err != nil {
			t.Fatal(err)
		}
	}

	// A resumes: its run's commit is fenced.
	release()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, busy := engA.running.Load("c"); !busy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the ex-leader's run did not end")
		}
	}

	runs, _ := engB.state.Runs(ctx, "c", 10)
	var ok, aborted int
	for _, r := range runs {
		switch {
		case r.End.IsZero():
			t.Errorf("a run without an end is left: %+v", r)
		case strings.HasPrefix(r.Error, "aborted"):
			aborted++
		case r.Error == "":
			ok++
		}
	}
	if ok != 1 || aborted != 1 || len(runs) != 2 {
		t.Fatalf("history after the takeover: %+v; want the dead leader's run aborted and run once again", runs)
	}
	if st, _ := engB.state.EngineState(ctx, "c"); st.NeedFull || st.LastError != "" {
		t.Fatalf("the fenced ex-leader wrote the engine state: %+v", st)
	}
}
