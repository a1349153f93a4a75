package state

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/dirgate/dirgate/metrics"
)

// Fallback is a Throttle that counts in a shared store (PostgreSQL in
// cluster mode, so that N replicas do not allow N times the guesses) and,
// while that store fails, in this replica's memory: a throttle that stops
// counting would let an attacker guess freely for as long as the database
// is away, and one that refuses every sign-in would turn a database outage
// into a sign-in outage.
//
// Counts made locally during an outage are kept after it: while a key still
// has a live local counter, its failures go on counting there too, and the
// counter served is the stricter of the shared and the local one (more
// failures, later lock). So a lock set during the outage holds until it
// expires, and failures counted during it still lead to one. They are not
// copied into the shared store: other replicas do not see them.
//
// While the store is down, calls go to memory directly and one call every
// RetryEvery tries the store again; each call to the store is bounded by
// Timeout, so a store that hangs costs a login at most that long.
type Fallback struct {
	shared Throttle
	local  *MemoryThrottle
	log    *slog.Logger
	now    func() time.Time

	// Timeout bounds one call to the shared store; RetryEvery is how often
	// a call tries the store while it is down. Set them before use.
	Timeout, RetryEvery time.Duration

	mu    sync.Mutex
	down  bool
	since time.Time // of the current outage
	probe time.Time // when a call may try the store again
}

// Fallback defaults.
const (
	DefaultFallbackTimeout = 3 * time.Second
	DefaultFallbackRetry   = 5 * time.Second
)

// NewFallback returns a throttle counting in shared and, while shared
// fails, in local.
func NewFallback(shared Throttle, local *MemoryThrottle, log *slog.Logger) *Fallback {
	metrics.ThrottleShared.Set(1)
	return &Fallback{shared: shared, local: local, log: log, now: time.Now,
		Timeout: DefaultFallbackTimeout, RetryEvery: DefaultFallbackRetry}
}

// Shared tells whether failures are counted in the shared store, and since
// when they are not.
func (f *Fallback) Shared() (shared bool, downSince time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.down, f.since
}

// call runs op on the shared store unless it is down and not due for a
// retry; it reports whether the store answered, recording the transitions.
// A caller whose own context ended does not mark the store down.
func (f *Fallback) call(ctx context.Context, op func(ctx context.Context) error) bool {
	f.mu.Lock()
	skip := f.down && f.now().Before(f.probe)
	if f.down && !skip {
		f.probe = f.now().Add(f.RetryEvery) // one caller probes at a time
	}
	f.mu.Unlock()
	if skip {
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, f.Timeout)
	err := op(cctx)
	cancel()
	if err != nil && ctx.Err() != nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case err != nil && !f.down:
		f.down, f.since, f.probe = true, f.now(), f.now().Add(f.RetryEvery)
		metrics.ThrottleShared.Set(0)
		f.log.Warn("throttle store unreachable: counting failures on this replica only", "err", err)
	case err == nil && f.down:
		f.log.Info("throttle store answers again: counting failures in the shared store", "down_for", f.now().Sub(f.since).Round(time.Second))
		f.down, f.since = false, time.Time{}
		metrics.ThrottleShared.Set(1)
	}
	return err == nil
}

// stricter merges two counters of one key: the most failures, the later
// lock.
func stricter(a, b Counter) Counter {
	if b.Failures > a.Failures {
		a.Failures = b.Failures
	}
	if b.Last.After(a.Last) {
		a.Last = b.Last
	}
	if b.Until.After(a.Until) {
		a.Until = b.Until
	}
	return a
}

// live tells whether c counts anything.
func live(c Counter) bool { return c.Failures > 0 || c.Locked() }

// Counter implements Throttle.
func (f *Fallback) Counter(ctx context.Context, table, key string, now time.Time, l Limit) (Counter, error) {
	var sc Counter
	shared := f.call(ctx, func(ctx context.Context) (err error) {
		sc, err = f.shared.Counter(ctx, table, key, now, l)
		return err
	})
	if err := ctx.Err(); err != nil {
		return Counter{}, err
	}
	lc, _ := f.local.Counter(ctx, table, key, now, l) // never fails
	if !shared {
		return lc, nil
	}
	return stricter(sc, lc), nil
}

// Fail implements Throttle.
func (f *Fallback) Fail(ctx context.Context, table, key string, now time.Time, l Limit) (Counter, error) {
	var sc Counter
	shared := f.call(ctx, func(ctx context.Context) (err error) {
		sc, err = f.shared.Fail(ctx, table, key, now, l)
		return err
	})
	if err := ctx.Err(); err != nil {
		return Counter{}, err
	}
	if shared {
		// An outage's counter goes on counting until it expires.
		if lc, _ := f.local.Counter(ctx, table, key, now, l); !live(lc) {
			return sc, nil
		}
	}
	lc, _ := f.local.Fail(ctx, table, key, now, l)
	if !shared {
		return lc, nil
	}
	return stricter(sc, lc), nil
}

// Reset implements Throttle, in both stores. When the shared store does
// not answer, its counter keeps the failures until they expire by the
// window; the outage is logged once by call.
func (f *Fallback) Reset(ctx context.Context, table, key string) error {
	f.call(ctx, func(ctx context.Context) error { return f.shared.Reset(ctx, table, key) })
	_ = f.local.Reset(ctx, table, key) // never fails
	return ctx.Err()
}

// Reserve implements Throttle. While the shared store does not answer, the
// reservation is made in this replica's memory, and so bounds only this
// replica's attempts; a lock set here during an outage refuses before the
// store is asked.
func (f *Fallback) Reserve(ctx context.Context, table, key, id string, now, until time.Time, l Limit) (Counter, bool, error) {
	if lc, _ := f.local.Counter(ctx, table, key, now, l); lc.Locked() { // never fails
		return lc, false, nil
	}
	var sc Counter
	var ok bool
	shared := f.call(ctx, func(ctx context.Context) (err error) {
		sc, ok, err = f.shared.Reserve(ctx, table, key, id, now, until, l)
		return err
	})
	if err := ctx.Err(); err != nil {
		return Counter{}, false, err
	}
	if !shared {
		return f.local.Reserve(ctx, table, key, id, now, until, l)
	}
	lc, _ := f.local.Counter(ctx, table, key, now, l)
	return stricter(sc, lc), ok, nil
}

// Release implements Throttle, in the store that holds the reservation.
// When the shared store does not answer, its reservation lapses at the
// time Reserve was given.
func (f *Fallback) Release(ctx context.Context, table, key, id string) error {
	if !f.local.release(table, key, id) {
		f.call(ctx, func(ctx context.Context) error { return f.shared.Release(ctx, table, key, id) })
	}
	return ctx.Err()
}

// ThrottleSweeper is implemented by a Throttle whose counters outlast
// their use unless removed (a store shared by replicas, where only Reset
// deletes): SweepThrottle removes the counters that count for nothing as
// of now under a window (a lock whose time is up, failures older than the
// window without a lock) and the reservations whose bound passed, and
// returns how many. In-memory throttles bound themselves and need none.
type ThrottleSweeper interface {
	SweepThrottle(ctx context.Context, now time.Time, window time.Duration) (int, error)
}

// SweepThrottle implements ThrottleSweeper on the shared store, when it is
// one (the local counters bound themselves). It is skipped while the store
// is down, and its errors, a slow bulk delete among them, do not count as
// the store's: logins keep counting in it.
func (f *Fallback) SweepThrottle(ctx context.Context, now time.Time, window time.Duration) (int, error) {
	sw, ok := f.shared.(ThrottleSweeper)
	if shared, _ := f.Shared(); !ok || !shared {
		return 0, nil
	}
	return sw.SweepThrottle(ctx, now, window)
}
