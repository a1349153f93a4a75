package state

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/dirgate/dirgate/internal/pending"
)

// TestMemorySignInsSweptInBulk: in one process, expired pending sign-ins
// are dropped once the table fills (so it never stays full of dead
// requests), a full table is swept at most once a second, and live
// requests are never dropped.
func TestMemorySignInsSweptInBulk(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	m := NewMemorySignIns()
	put := func(key string, ttl time.Duration) error {
		return m.PutRequest(ctx, key, SignInRequest{Expires: now.Add(ttl)}, now)
	}
	if err := put("live", time.Hour); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < MaxPending; i++ {
		if err := put(strconv.Itoa(i), 100*time.Millisecond); err != nil {
			t.Fatalf("request %d refused below the bound: %v", i, err)
		}
	}
	if err := put("one more", time.Minute); err != ErrFull {
		t.Fatalf("a full table of live requests: %v, want ErrFull", err)
	}
	now = now.Add(500 * time.Millisecond) // all but the first have expired
	if err := put("again", time.Minute); err != ErrFull {
		t.Fatalf("a full table swept again within %v: %v", pending.FullSweepEvery, err)
	}
	now = now.Add(600 * time.Millisecond)
	if err := put("new", time.Minute); err != nil {
		t.Fatalf("expired requests were not swept from the full table: %v", err)
	}
	if n := m.requests.Len(); n != 2 {
		t.Fatalf("%d requests left after the sweep, want the live one and the new one", n)
	}
	if _, err := m.Request(ctx, "live", now); err != nil {
		t.Fatalf("a live request was dropped: %v", err)
	}
}
