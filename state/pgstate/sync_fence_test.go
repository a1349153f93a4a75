package pgstate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dirgate/dirgate/cluster/lease"
	"github.com/dirgate/dirgate/state"
)

// TestSyncWritesFenced: under a context carrying a leader term's fence,
// the sync state's writes succeed while the term holds the lease and are
// refused with lease.ErrFenced, changing nothing, once a successor took
// it; a context without a fence writes as a single process does.
func TestSyncWritesFenced(t *testing.T) {
	s, pool := testStore(t)
	ctx := t.Context()
	if err := lease.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO leader_lease (name, holder, epoch, expires_at) VALUES ('sync', 'a', 1, clock_timestamp() + interval '1 hour')`); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	writes := func(ctx context.Context, tag string) []error {
		return []error{
			s.SaveEngineState(ctx, "corp", state.Engine{LastError: tag}),
			s.RecordRun(ctx, &state.Run{Connector: "corp", Start: start, Error: tag}),
			s.HoldPlan(ctx, "corp", []byte(tag)),
		}
	}
	read := func() (engine, run, plan string) {
		st, err1 := s.EngineState(ctx, "corp")
		runs, err2 := s.Runs(ctx, "corp", 1)
		p, err3 := s.HeldPlan(ctx, "corp")
		if err := errors.Join(err1, err2, err3); err != nil || len(runs) != 1 {
			t.Fatalf("read back: %v (runs %+v)", err, runs)
		}
		return st.LastError, runs[0].Error, string(p)
	}
	term := lease.WithFence(ctx, lease.Fence{Name: "sync", Holder: "a", Epoch: 1})
	for _, err := range writes(term, "leader") {
		if err != nil {
			t.Fatalf("a write of the leading term: %v", err)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE leader_lease SET holder = 'b', epoch = 2`); err != nil {
		t.Fatal(err)
	}
	for i, err := range writes(term, "ex-leader") {
		if !errors.Is(err, lease.ErrFenced) {
			t.Errorf("write %d of the ended term: %v, want lease.ErrFenced", i, err)
		}
	}
	if e, r, p := read(); e != "leader" || r != "leader" || p != "leader" {
		t.Fatalf("after the fenced writes: engine %q, run %q, plan %q; want the leader's", e, r, p)
	}
	for _, err := range writes(ctx, "unfenced") {
		if err != nil {
			t.Fatalf("a write without a fence: %v", err)
		}
	}
	if e, r, p := read(); e != "unfenced" || r != "unfenced" || p != "unfenced" {
		t.Fatalf("after unfenced writes: engine %q, run %q, plan %q", e, r, p)
	}
}
