package state

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// sweepingThrottle is a shared store that counts its sweeps.
type sweepingThrottle struct {
	*flakyThrottle
	sweeps int
}

func (s *sweepingThrottle) SweepThrottle(context.Context, time.Time, time.Duration) (int, error) {
	if err := s.err(); err != nil {
		return 0, err
	}
	s.sweeps++
	return 7, nil
}

// TestFallbackSweep: the fallback sweeps the shared store when it is one,
// not while the store is down, and a sweep's failure does not put the
// throttle on this replica's counts.
func TestFallbackSweep(t *testing.T) {
	ctx := t.Context()
	now := time.Now()
	l := Limit{Failures: 3, Window: time.Minute, Lockout: time.Minute}
	shared := &sweepingThrottle{flakyThrottle: &flakyThrottle{MemoryThrottle: NewMemoryThrottle(10)}}
	f := NewFallback(shared, NewMemoryThrottle(10), slog.New(slog.DiscardHandler))
	f.RetryEvery = 0
	if n, err := f.SweepThrottle(ctx, now, time.Minute); err != nil || n != 7 || shared.sweeps != 1 {
		t.Fatalf("sweep: %d %v, %d sweeps of the shared store", n, err, shared.sweeps)
	}
	shared.set(true)
	if _, err := f.Fail(ctx, "accounts", "k", now, l); err != nil { // marks the store down
		t.Fatal(err)
	}
	if n, err := f.SweepThrottle(ctx, now, time.Minute); err != nil || n != 0 || shared.sweeps != 1 {
		t.Fatalf("sweep while the store is down: %d %v, %d sweeps of the shared store", n, err, shared.sweeps)
	}
	shared.set(false)
	if _, err := f.Counter(ctx, "accounts", "k", now, l); err != nil { // back up
		t.Fatal(err)
	}
	shared.set(true)
	if _, err := f.SweepThrottle(ctx, now, time.Minute); err == nil {
		t.Fatal("a failed sweep reported no error")
	}
	if ok, _ := f.Shared(); !ok {
		t.Error("a failed sweep put the throttle on this replica's counts")
	}
	// A memory store needs no sweep.
	m := NewFallback(NewMemoryThrottle(10), NewMemoryThrottle(10), slog.New(slog.DiscardHandler))
	if n, err := m.SweepThrottle(ctx, now, time.Minute); err != nil || n != 0 {
		t.Errorf("sweep of a memory store: %d %v", n, err)
	}
}
