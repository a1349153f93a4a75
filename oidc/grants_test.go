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

// TestGrantsSwept: expired refresh tokens are removed on a timer, not left
// to accumulate.
func TestGrantsSwept(t *testing.T) {
	f := newFixture(t)
	g := f.p.grants
	ctx, cancel := context.WithCancel(t.Context())
	rec := sweepRecorder{Grants: g.store, calls: make(chan time.Duration, 1)}
	g.store = rec
	expired, err := g.putRefresh(ctx, refreshGrant{ClientID: "wiki", Family: "f", Expires: f.p.now().Add(-time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { g.sweep(ctx, time.Millisecond, 7*time.Hour, slog.New(slog.DiscardHandler)); close(done) }()
	select {
	case ttl := <-rec.calls:
		if ttl != 7*time.Hour {
			t.Errorf("swept with family lifetime %s, want 7h", ttl)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no sweep")
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
