package dirsync

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestStatusBlockedAndCacheAge: a status carries the reason of the pending
// blocked plan until a run applies, and the cache age at the scheduler's
// clock.
func TestStatusBlockedAndCacheAge(t *testing.T) {
	src := newFake(20)
	s, _ := schedulerFixture(t, src)
	ctx := context.Background()
	status := func() ConnectorStatus {
		t.Helper()
		st, err := s.Status(ctx)
		if err != nil || len(st) != 1 {
			t.Fatalf("status: %v %+v", err, st)
		}
		return st[0]
	}
	if st := status(); st.CacheAge != 0 || st.Blocked != "" {
		t.Fatalf("never synced: %+v", st)
	}
	if _, err := s.SyncNow(ctx, "c", Options{}); err != nil {
		t.Fatal(err)
	}
	synced := status().LastSuccess
	s.now = func() time.Time { return synced.Add(90 * time.Minute) }
	if st := status(); st.CacheAge != 90*time.Minute || st.Blocked != "" {
		t.Fatalf("after a sync: age %s, blocked %q", st.CacheAge, st.Blocked)
	}
	for i := range 8 {
		src.del(fmt.Sprintf("u%03d", i))
	}
	_, err := s.SyncNow(ctx, "c", Options{Mode: ModeFull})
	var b *BlockedError
	if !errors.As(err, &b) {
		t.Fatalf("want blocked, got %v", err)
	}
	if st := status(); st.Blocked != b.Reason || st.Blocked == "" || st.CacheAge != 90*time.Minute {
		t.Fatalf("blocked: reason %q, want %q; age %s", st.Blocked, b.Reason, st.CacheAge)
	}
	if _, err := s.SyncNow(ctx, "c", Options{Mode: ModeFull, Force: true}); err != nil {
		t.Fatal(err)
	}
	if st := status(); st.Blocked != "" {
		t.Fatalf("the plan was applied, still blocked: %q", st.Blocked)
	}
}
