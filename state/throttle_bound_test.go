package state

import (
	"context"
	"testing"
	"time"
)

// TestMemoryThrottleNoBound: a throttle made without a bound (0, as a
// caller that forgets it passes) keeps every key's failures, up to the
// default bound, instead of only the last key's.
func TestMemoryThrottleNoBound(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	l := Limit{Failures: 3, Window: time.Minute, Lockout: time.Minute}
	for _, max := range []int{0, -1} {
		m := NewMemoryThrottle(max)
		keys := []string{"alice", "bob", "carol"}
		for _, k := range keys {
			if _, err := m.Fail(context.Background(), "accounts", k, now, l); err != nil {
				t.Fatal(err)
			}
		}
		for _, k := range keys {
			if c, _ := m.Counter(context.Background(), "accounts", k, now, l); c.Failures != 1 {
				t.Errorf("NewMemoryThrottle(%d): %s's failure was forgotten: %+v", max, k, c)
			}
		}
	}
}
