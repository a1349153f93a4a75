package state

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dirgate/dirgate/internal/testlog"
	"github.com/dirgate/dirgate/metrics"
)

// flakyThrottle is a shared store that fails while down.
type flakyThrottle struct {
	*MemoryThrottle
	mu    sync.Mutex
	down  bool
	calls int
}

func (f *flakyThrottle) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.down {
		return errors.New("connection refused")
	}
	return nil
}

func (f *flakyThrottle) set(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *flakyThrottle) Counter(ctx context.Context, table, key string, now time.Time, l Limit) (Counter, error) {
	if err := f.err(); err != nil {
		return Counter{}, err
	}
	return f.MemoryThrottle.Counter(ctx, table, key, now, l)
}

func (f *flakyThrottle) Fail(ctx context.Context, table, key string, now time.Time, l Limit) (Counter, error) {
	if err := f.err(); err != nil {
		return Counter{}, err
	}
	return f.MemoryThrottle.Fail(ctx, table, key, now, l)
}

func (f *flakyThrottle) Reset(ctx context.Context, table, key string) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.MemoryThrottle.Reset(ctx, table, key)
}

// throttleShared reads the dirgate_throttle_shared gauge.
func throttleShared(t *testing.T) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "dirgate_throttle_shared" {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no dirgate_throttle_shared metric")
	return 0
}

// TestFallbackThrottle: while the shared store fails, failures are counted
// and locked in memory, the outage is logged once and shown by the metric
// and Shared; once the store answers, counting goes back to it, and what
// the outage counted still holds.
func TestFallbackThrottle(t *testing.T) {
	ctx := t.Context()
	l := Limit{Failures: 3, Window: 10 * time.Minute, Lockout: 15 * time.Minute}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	shared := &flakyThrottle{MemoryThrottle: NewMemoryThrottle(100)}
	var logs testlog.Buffer
	f := NewFallback(shared, NewMemoryThrottle(100), slog.New(slog.NewTextHandler(&logs, nil)))
	f.RetryEvery = 0 // every call tries the store again
	fail := func(key string) Counter {
		t.Helper()
		c, err := f.Fail(ctx, "accounts", key, now, l)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	counter := func(key string) Counter {
		t.Helper()
		c, err := f.Counter(ctx, "accounts", key, now, l)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	fail("alice")
	if c, _ := shared.MemoryThrottle.Counter(ctx, "accounts", "alice", now, l); c.Failures != 1 {
		t.Fatalf("shared store counted %d failures, want 1", c.Failures)
	}
	shared.set(true)
	for i := range 3 {
		if c := fail("bob"); c.Failures != i+1 {
			t.Fatalf("failure %d during the outage counted as %+v", i+1, c)
		}
	}
	if c := counter("bob"); !c.Locked() {
		t.Fatalf("bob after 3 failures during the outage: %+v, want locked", c)
	}
	fail("carol")
	if ok, since := f.Shared(); ok || since.IsZero() {
		t.Errorf("Shared() = %v, %v during the outage", ok, since)
	}
	if got := throttleShared(t); got != 0 {
		t.Errorf("throttle_shared = %v during the outage, want 0", got)
	}
	if n := strings.Count(logs.String(), "throttle store unreachable"); n != 1 {
		t.Errorf("the outage was logged %d times, want once:\n%s", n, logs.String())
	}

	shared.set(false)
	if c := counter("bob"); !c.Locked() {
		t.Errorf("the lock set during the outage was lost when the store came back: %+v", c)
	}
	if ok, _ := f.Shared(); !ok || throttleShared(t) != 1 {
		t.Error("the fallback did not go back to the shared store")
	}
	if !strings.Contains(logs.String(), "throttle store answers again") {
		t.Errorf("the recovery was not logged:\n%s", logs.String())
	}
	// carol's outage failure keeps counting: two more lock her, though the
	// shared store saw only those two.
	fail("carol")
	if c := fail("carol"); !c.Locked() {
		t.Errorf("carol after 1 failure during the outage and 2 after: %+v, want locked", c)
	}
	if c, _ := shared.MemoryThrottle.Counter(ctx, "accounts", "carol", now, l); c.Failures != 2 {
		t.Errorf("the shared store counted %d of carol's failures after the outage, want 2", c.Failures)
	}
	// Without an outage counter, failures go to the shared store only.
	fail("dave")
	if c := fail("dave"); c.Failures != 2 {
		t.Errorf("dave: %+v", c)
	}
	if f.local.Len("accounts") != 2 {
		t.Errorf("memory holds %d accounts, want the outage's bob and carol", f.local.Len("accounts"))
	}
	if err := f.Reset(ctx, "accounts", "carol"); err != nil {
		t.Fatal(err)
	}
	if c := counter("carol"); live(c) {
		t.Errorf("carol after a reset: %+v", c)
	}
}

// TestFallbackRetriesSparingly: while the store is down, one call per
// RetryEvery tries it; the others are counted in memory at once.
func TestFallbackRetriesSparingly(t *testing.T) {
	ctx := t.Context()
	l := Limit{Failures: 100, Window: time.Hour, Lockout: time.Hour}
	shared := &flakyThrottle{MemoryThrottle: NewMemoryThrottle(100), down: true}
	f := NewFallback(shared, NewMemoryThrottle(100), slog.New(slog.DiscardHandler))
	clock := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	f.now = func() time.Time { return clock }
	f.RetryEvery = time.Minute
	for range 10 {
		if _, err := f.Fail(ctx, "accounts", "x", clock, l); err != nil {
			t.Fatal(err)
		}
	}
	if shared.calls != 1 {
		t.Errorf("the store was tried %d times within RetryEvery, want once", shared.calls)
	}
	shared.set(false)
	clock = clock.Add(time.Minute)
	c, err := f.Fail(ctx, "accounts", "x", clock, l)
	if err != nil || shared.calls != 2 || c.Failures != 11 {
		t.Errorf("after RetryEvery: %+v, %v, %d calls; want the store tried and 11 failures", c, err, shared.calls)
	}
	if ok, _ := f.Shared(); !ok {
		t.Error("not shared after the store answered")
	}
}
