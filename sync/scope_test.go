package dirsync

import (
	"context"
	"errors"
	"testing"
)

// scopedFake is a fakeSource whose scope lives outside the connector's
// settings, as an agent's does.
type scopedFake struct {
	*fakeSource
	scope string
	err   error
}

func (s *scopedFake) Scope() (string, error) { return s.scope, s.err }

// TestSourceScopeChangeForcesFull: a change of the scope a ScopedSource
// reports (an agent's filters, which the hub's connector settings do not
// hold) makes the next run a full one, with the usual safety rules; an
// error of Scope fails the run without reading.
func TestSourceScopeChangeForcesFull(t *testing.T) {
	e, s, c := setup(t)
	ctx := context.Background()
	src := &scopedFake{fakeSource: newFake(20), scope: "a"}
	mustMode := func(want string) *Result {
		t.Helper()
		res, err := e.Run(ctx, c, src, Options{})
		if err != nil || res.Mode != want {
			t.Fatalf("mode %q, want %q: %v", res.Mode, want, err)
		}
		return res
	}
	mustMode(ModeFull)
	mustMode(ModeIncremental)

	// The agent's filter narrows: 10 entries leave its scope, which only
	// a full run finds (the change log says nothing of them).
	src.scope = "b"
	for _, id := range []string{"u000", "u001", "u002", "u003", "u004", "u005", "u006", "u007", "u008", "u009"} {
		delete(src.entries, id)
	}
	src.log = nil
	res, err := e.Run(ctx, c, src, Options{})
	var blocked *BlockedError
	if res.Mode != ModeFull || !errors.As(err, &blocked) {
		t.Fatalf("after the scope change: mode %q, %v; want a full run the safety rules block", res.Mode, err)
	}
	if count(t, s) != 20 {
		t.Fatalf("served %d", count(t, s))
	}

	// A source that cannot tell its scope fails the run unread.
	src.err = errors.New("two agents disagree")
	if _, err := e.Run(ctx, c, src, Options{}); !errors.Is(err, src.err) {
		t.Fatalf("run with no agreed scope: %v", err)
	}
}
