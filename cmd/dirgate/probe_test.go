package main

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/state"
	dirsync "github.com/dirgate/dirgate/sync"
)

// sharedHistory is the cluster's run history as the leader wrote it, or
// a database that does not answer (err).
type sharedHistory struct {
	state.Sync
	runs []state.Run
	err  error
}

func (h *sharedHistory) Runs(context.Context, string, int) ([]state.Run, error) { return h.runs, h.err }

// countingPublisher stands for the change log: each record gets the next
// sequence number.
type countingPublisher struct{ seq uint64 }

func (p *countingPublisher) Publish(context.Context, *cache.Record) (uint64, error) {
	p.seq++
	return p.seq, nil
}

// TestProbeStatusOwnCache: a replica's /readyz judges each connector's
// cache age on the runs its own cache holds, not on the shared history (a
// standby whose cache missed the leader's runs ages); a connector whose
// cache holds no run takes the shared last success only once the cache
// applied the log past it; the shared status failing to read changes
// nothing of that.
func TestProbeStatusOwnCache(t *testing.T) {
	now := time.Now().UTC()
	ok := func(end time.Duration) state.Run {
		return state.Run{Connector: "demo", Start: now.Add(-end - time.Minute), End: now.Add(-end)}
	}
	tests := []struct {
		name      string
		local     []state.Run   // runs in this replica's cache
		shared    []state.Run   // the shared history
		sharedErr error         // the shared status cannot be read
		applied   bool          // the cache applied a record since the shared run
		want      time.Duration // last success before now; 0: none
	}{
		{"own cache older than the shared history", []state.Run{ok(30 * time.Hour)}, []state.Run{ok(time.Hour)}, nil, true, 30 * time.Hour},
		{"own cache newer", []state.Run{ok(time.Hour)}, []state.Run{ok(2 * time.Hour)}, nil, true, time.Hour},
		{"snapshot only, applied past the run", nil, []state.Run{ok(time.Hour)}, nil, true, time.Hour},
		{"snapshot only, not applied", nil, []state.Run{ok(time.Hour)}, nil, false, 0},
		{"database unreachable", []state.Run{ok(2 * time.Hour)}, nil, errors.New("connection refused"), true, 2 * time.Hour},
		{"failed runs do not count", []state.Run{{Connector: "demo", Start: now.Add(-time.Hour), End: now.Add(-time.Hour), Error: "x"}, ok(5 * time.Hour)}, nil, nil, true, 5 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store, err := cache.Open(t.TempDir(), cache.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			for _, r := range tc.local {
				if err := store.RecordRun(&r); err != nil {
					t.Fatal(err)
				}
			}
			if tc.applied {
				// Published here, applied on a standby: the position's
				// time is now.
				store.SetPublisher(&countingPublisher{})
				if err := store.SaveCursor(t.Context(), "other", []byte("c"), nil); err != nil {
					t.Fatal(err)
				}
				store.SetPublisher(nil)
			}
			states := store.States()
			states.Sync = &sharedHistory{Sync: states.Sync, runs: tc.shared, err: tc.sharedErr}
			cfg := &config.Config{Connectors: []config.Connector{{Name: "demo", Type: "openldap"}}}
			log := slog.New(slog.DiscardHandler)
			sched, err := dirsync.NewScheduler(cfg, dirsync.New(store, states, log), store, nil, log)
			if err != nil {
				t.Fatal(err)
			}
			b := &adminBackend{sched: sched, store: store, cfg: func() *config.Config { return cfg }, cluster: &clusterView{}, log: log}
			sts, err := b.ProbeStatus(t.Context())
			if err != nil || len(sts) != 1 {
				t.Fatalf("%+v %v", sts, err)
			}
			got := sts[0].LastSuccess
			if tc.want == 0 && !got.IsZero() || tc.want != 0 && !got.Equal(now.Add(-tc.want)) {
				t.Errorf("last success %v, want %v before %v", got, tc.want, now)
			}
		})
	}
}
