package oidc

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/dirgate/dirgate/state"
)

// sweepRecorder passes its calls to SweepExpired on, keeping their
// arguments.
type sweepRecorder struct {
	state.Grants
	calls chan time.Duration
}

func (s sweepRecorder) SweepExpired(ctx context.Context, now time.Time, familyTTL time.Duration) (int, error) {
	n, err := s.Grants.SweepExpired(ctx, now, familyTTL)
	select {
	case s.calls <- familyTTL:
	default: // the test reads the first call only
	}
	return n, err
}

// signInSweeps passes its calls to SweepSignIns on, telling of them.
type signInSweeps struct {
	state.SignIns
	calls chan struct{}
}

func (s signInSweeps) SweepSignIns(ctx context.Context, now time.Time) (int, error) {
	select {
	case s.calls <- struct{}{}:
	default:
	}
	return s.SignIns.SweepSignIns(ctx, now)
}

// TestGrantsSwept: expired refresh tokens and sign-ins in progress are
// removed on timers, not left to accumulate.
func TestGrantsSwept(t *testing.T) {
	f := newFixture(t)
	g := f.p.grants
	ctx, cancel := context.WithCancel(t.Context())
	rec := sweepRecorder{Grants: g.store, calls: make(chan time.Duration, 1)}
	g.store = rec
	signIns := signInSweeps{SignIns: g.signIns, calls: make(chan struct{}, 1)}
	g.signIns = signIns
	expired, err := g.putRefresh(ctx, refreshGrant{ClientID: "wiki", Family: "f", Expires: f.p.now().Add(-time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		g.sweep(ctx, time.Millisecond, time.Millisecond, 7*time.Hour, slog.New(slog.DiscardHandler))
		close(done)
	}()
	select {
	case ttl := <-rec.calls:
		if ttl != 7*time.Hour {
			t.Errorf("swept with family lifetime %s, want 7h", ttl)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no sweep")
	}
	select {
	case <-signIns.calls:
	case <-time.After(30 * time.Second):
		t.Fatal("no sweep of the sign-ins")
	}
	cancel()
	<-done
	// The token's record is gone: a sweep now finds nothing left.
	if n, err := rec.Grants.SweepExpired(t.Context(), f.p.now(), 7*time.Hour); err != nil || n != 0 {
		t.Errorf("records left after the timed sweep: %d, %v", n, err)
	}
	if r, err := g.refresh(t.Context(), expired); r != nil || err != nil {
		t.Errorf("expired token after the sweep: %+v, %v", r, err)
	}
}
