package changelog

import (
	"testing"
	"time"
)

// TestExLeaderLagStartsWhenItStopsLeading: a leader's cache is at the head
// however long ago it last published; when it starts following again and
// cannot read the head (PostgreSQL down), its lag counts from then, not
// from its last publish hours earlier.
func TestExLeaderLagStartsWhenItStopsLeading(t *testing.T) {
	l, err := New(nil, Options{PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l.checked(true, time.Now())
	l.mu.Lock()
	l.lastAtHead = time.Now().Add(-3 * time.Hour) // last published long ago
	l.lastCheck = l.lastAtHead
	l.mu.Unlock()
	if lag := l.Lag(); lag != 0 {
		t.Fatalf("leader's lag %s, want 0", lag)
	}
	l.setFollowing(+1)                // the lease is lost; the follower starts
	time.Sleep(50 * time.Millisecond) // no head read: the database is down
	if lag := l.Lag(); lag <= 0 || lag > time.Minute {
		t.Fatalf("ex-leader's lag %s: want the time since it stopped leading (about 50ms), not since its last publish", lag)
	}
}

// TestAtHeadAsOfTheReadsStart: a head read that found the cache at the
// head vouches for the state when the read began; a record committed while
// it ran is not in what it saw, so a replica stuck on that record must
// count its lag from the read's start (TestStuckReplicaLagGrows failed by
// microseconds when a poll's read straddled the new head).
func TestAtHeadAsOfTheReadsStart(t *testing.T) {
	l, err := New(nil, Options{PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	time.Sleep(200 * time.Millisecond) // a slow head read
	l.checked(true, began)
	l.behind() // the next read finds a record it cannot apply
	if lag := l.Lag(); lag < 200*time.Millisecond {
		t.Fatalf("lag %s: want at least the time since the last read that saw the head began", lag)
	}
}
