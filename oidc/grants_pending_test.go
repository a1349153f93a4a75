package oidc

import (
	"testing"
	"time"
)

// TestPendingRequestsSweptInBulk: expired pending sign-ins are dropped once
// the table fills (so it never stays full of dead requests), a full table
// is swept at most once a second, and live requests are never dropped.
func TestPendingRequestsSweptInBulk(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	g := newGrants(nil, func() time.Time { return now })
	live, ok := g.putRequest(&authRequest{Expires: now.Add(time.Hour)})
	if !ok {
		t.Fatal("first request refused")
	}
	for i := 1; i < maxPending; i++ {
		if _, ok := g.putRequest(&authRequest{Expires: now.Add(100 * time.Millisecond)}); !ok {
			t.Fatalf("request %d refused below the bound", i)
		}
	}
	if _, ok := g.putRequest(&authRequest{Expires: now.Add(time.Minute)}); ok {
		t.Fatal("a full table of live requests accepted one more")
	}
	now = now.Add(500 * time.Millisecond) // all but the first have expired
	if _, ok := g.putRequest(&authRequest{Expires: now.Add(time.Minute)}); ok {
		t.Fatal("a full table was swept again within a second")
	}
	now = now.Add(600 * time.Millisecond)
	if _, ok := g.putRequest(&authRequest{Expires: now.Add(time.Minute)}); !ok {
		t.Fatal("expired requests were not swept from the full table")
	}
	if n := g.requests.Len(); n != 2 {
		t.Fatalf("%d requests left after the sweep, want the live one and the new one", n)
	}
	if _, ok := g.request(live); !ok {
		t.Fatal("a live request was dropped")
	}
}
