// Package pending holds round trips in progress (OAuth state values and
// the like) in memory: single use, expiring, bounded in number overall
// and per owner.
//
// Expired entries are swept in bulk, not on every Put: a sweep runs when
// the table has doubled since the last one, which keeps Put amortised
// O(1), and, once the table is full, at most once per FullSweepEvery, so
// a flood of starts that are never finished costs a refusal each, not a
// walk of the whole table each.
package pending

import (
	"sync"
	"time"
)

// FullSweepEvery is how often a full table is swept at most.
const FullSweepEvery = time.Second

// minSweep is the size below which expired entries are left to Take.
const minSweep = 1024

// Table maps state values to round trips. The zero value is not usable:
// use New.
type Table[T any] struct {
	mu       sync.Mutex
	m        map[string]entry[T]
	owners   map[string]int // live entries per owner
	max      int
	perOwner int
	sweepAt  int       // sweep when the table reaches this size
	swept    time.Time // last sweep
	walked   int       // entries the sweeps examined, for the tests
}

type entry[T any] struct {
	v       T
	owner   string
	expires time.Time
}

// New returns a table of at most max entries, and at most perOwner for
// one owner (0: no per-owner bound).
func New[T any](max, perOwner int) *Table[T] {
	return &Table[T]{m: map[string]entry[T]{}, owners: map[string]int{}, max: max, perOwner: perOwner, sweepAt: min(max, minSweep)}
}

// Put stores v under id until expires, for owner. It returns false, and
// stores nothing, when the table is full or owner holds its share.
func (t *Table[T]) Put(now time.Time, id, owner string, v T, expires time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= t.sweepAt && (len(t.m) < t.max || now.Sub(t.swept) >= FullSweepEvery) {
		t.sweep(now)
	}
	if len(t.m) >= t.max || (t.perOwner > 0 && t.owners[owner] >= t.perOwner) {
		return false
	}
	if old, ok := t.m[id]; ok {
		t.release(old.owner)
	}
	t.m[id] = entry[T]{v: v, owner: owner, expires: expires}
	t.owners[owner]++
	return true
}

// Take removes the entry of id and returns its value unless it expired.
func (t *Table[T]) Take(now time.Time, id string) (T, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[id]
	if !ok {
		var zero T
		return zero, false
	}
	delete(t.m, id)
	t.release(e.owner)
	if now.After(e.expires) {
		var zero T
		return zero, false
	}
	return e.v, true
}

// Get returns the value of id, leaving it in place, unless it expired:
// for round trips read more than once before they end (a sign-in page
// shown, then posted).
func (t *Table[T]) Get(now time.Time, id string) (T, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[id]
	if !ok || now.After(e.expires) {
		var zero T
		return zero, false
	}
	return e.v, true
}

// Delete removes the entry of id, if any.
func (t *Table[T]) Delete(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.m[id]; ok {
		delete(t.m, id)
		t.release(e.owner)
	}
}

// Len returns the number of entries held, expired ones included.
func (t *Table[T]) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

func (t *Table[T]) sweep(now time.Time) {
	t.walked += len(t.m)
	for k, e := range t.m {
		if now.After(e.expires) {
			delete(t.m, k)
			t.release(e.owner)
		}
	}
	t.swept = now
	t.sweepAt = min(t.max, max(2*len(t.m), minSweep))
}

func (t *Table[T]) release(owner string) {
	if t.owners[owner]--; t.owners[owner] <= 0 {
		delete(t.owners, owner)
	}
}
