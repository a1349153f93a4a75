package state

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// Limit is the rule a throttle table counts failures under.
type Limit struct {
	Failures int           // failures that lock the key; <= 0 never locks
	Window   time.Duration // failures older than this are forgotten
	Lockout  time.Duration // how long a lock lasts
}

// Counter is a key's failures within the window and its lock.
type Counter struct {
	Failures int
	Last     time.Time // of the latest failure
	Until    time.Time // locked until; zero when not locked
}

// Locked tells whether the counter holds a lock.
func (c Counter) Locked() bool { return !c.Until.IsZero() }

// refresh expires what time has made stale: a lock whose time is up (the
// count starts again from zero), or failures whose latest is older than the
// window.
func (c *Counter) refresh(now time.Time, l Limit) {
	if c.Locked() && !now.Before(c.Until) {
		c.Until, c.Failures = time.Time{}, 0
	}
	if !c.Locked() && c.Failures > 0 && now.Sub(c.Last) > l.Window {
		c.Failures = 0
	}
}

// Throttle counts failed sign-ins per key in named tables (accounts,
// client addresses). Which attempts are in flight is not its business: that
// is each process's admission control.
type Throttle interface {
	// Counter returns key's counter in table as of now; the zero Counter
	// when there is none.
	Counter(ctx context.Context, table, key string, now time.Time, l Limit) (Counter, error)
	// Fail counts one failure of key at now, atomically, locking the key
	// when it reaches the limit, and returns the counter after it.
	Fail(ctx context.Context, table, key string, now time.Time, l Limit) (Counter, error)
	// Reset forgets key's failures.
	Reset(ctx context.Context, table, key string) error
	// Reserve admits an attempt on key, atomically with reading its
	// counter, which it returns: it refuses (false) when the key is locked
	// or when as many attempts hold a reservation of the key as it has
	// failures left before the lock (l.Failures - Counter.Failures), and
	// otherwise holds the reservation named id (the caller's, unique)
	// until Release, or until the time until: the bound on an attempt,
	// after which a reservation of a process that died no longer counts.
	// So attempts in flight on every process sharing the store cannot
	// overshoot the limit. With l.Failures <= 0 it only checks the lock.
	Reserve(ctx context.Context, table, key, id string, now, until time.Time, l Limit) (Counter, bool, error)
	// Release drops the reservation id of key; an unknown id is ignored.
	Release(ctx context.Context, table, key, id string) error
}

// MemoryThrottle is a Throttle in memory, for one process: each table is
// bounded, the key touched least recently forgotten first when it is full.
// Reservations are kept apart from the counters, so that forgetting a key
// never forgets attempts in flight; there are at most as many as attempts
// in flight.
type MemoryThrottle struct {
	max    int
	mu     sync.Mutex
	tables map[string]*table
	held   map[string]map[string]time.Time // table \x00 key -> reservation id -> until
}

// DefaultThrottleKeys is the bound of a MemoryThrottle's tables when none
// is given.
const DefaultThrottleKeys = 100_000

// NewMemoryThrottle returns a throttle holding at most max keys per table;
// max <= 0 means DefaultThrottleKeys (a bound of 0 would keep one key and
// forget every other failure as soon as it was counted).
func NewMemoryThrottle(max int) *MemoryThrottle {
	if max <= 0 {
		max = DefaultThrottleKeys
	}
	return &MemoryThrottle{max: max, tables: map[string]*table{}, held: map[string]map[string]time.Time{}}
}

type table struct {
	m   map[string]*list.Element
	lru *list.List // of *entry, front = most recently touched
}

type entry struct {
	key string
	Counter
}

// Counter implements Throttle.
func (m *MemoryThrottle) Counter(_ context.Context, table, key string, now time.Time, l Limit) (Counter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counter(table, key, now, l), nil
}

func (m *MemoryThrottle) counter(table, key string, now time.Time, l Limit) Counter {
	t := m.tables[table]
	if t == nil || t.m[key] == nil {
		return Counter{}
	}
	e := t.m[key].Value.(*entry)
	e.refresh(now, l)
	if e.Failures == 0 && !e.Locked() {
		t.drop(e)
	}
	return e.Counter
}

// Reserve implements Throttle.
func (m *MemoryThrottle) Reserve(_ context.Context, table, key, id string, now, until time.Time, l Limit) (Counter, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.counter(table, key, now, l)
	if c.Locked() {
		return c, false, nil
	}
	if l.Failures <= 0 {
		return c, true, nil
	}
	hk := table + "\x00" + key
	h := m.held[hk]
	for r, u := range h {
		if !now.Before(u) {
			delete(h, r)
		}
	}
	if len(h) == 0 {
		delete(m.held, hk)
		h = nil
	}
	if len(h) >= l.Failures-c.Failures {
		return c, false, nil
	}
	if h == nil {
		h = map[string]time.Time{}
		m.held[hk] = h
	}
	h[id] = until
	return c, true, nil
}

// Release implements Throttle.
func (m *MemoryThrottle) Release(_ context.Context, table, key, id string) error {
	m.release(table, key, id)
	return nil
}

// release drops the reservation and tells whether it was held here.
func (m *MemoryThrottle) release(table, key, id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	hk := table + "\x00" + key
	h := m.held[hk]
	if _, ok := h[id]; !ok {
		return false
	}
	if delete(h, id); len(h) == 0 {
		delete(m.held, hk)
	}
	return true
}

// Fail implements Throttle.
func (m *MemoryThrottle) Fail(_ context.Context, table, key string, now time.Time, l Limit) (Counter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.table(table).getOrCreate(key, m.max, now, l)
	e.refresh(now, l)
	e.Failures++
	e.Last = now
	if l.Failures > 0 && e.Failures >= l.Failures && !e.Locked() {
		e.Until = now.Add(l.Lockout)
	}
	return e.Counter, nil
}

// Reset implements Throttle.
func (m *MemoryThrottle) Reset(_ context.Context, table, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.tables[table]; t != nil && t.m[key] != nil {
		t.drop(t.m[key].Value.(*entry))
	}
	return nil
}

// Len returns how many keys table holds.
func (m *MemoryThrottle) Len(table string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.tables[table]; t != nil {
		return len(t.m)
	}
	return 0
}

func (m *MemoryThrottle) table(name string) *table {
	t := m.tables[name]
	if t == nil {
		t = &table{m: map[string]*list.Element{}, lru: list.New()}
		m.tables[name] = t
	}
	return t
}

// getOrCreate returns key's entry, making room for it if needed.
func (t *table) getOrCreate(key string, max int, now time.Time, l Limit) *entry {
	if el := t.m[key]; el != nil {
		t.lru.MoveToFront(el)
		return el.Value.(*entry)
	}
	// Forget a few stale entries on every insertion, and the least recently
	// touched ones when full.
	for range 2 {
		if back := t.lru.Back(); back != nil {
			e := back.Value.(*entry)
			if e.refresh(now, l); e.Failures == 0 && !e.Locked() {
				t.drop(e)
			}
		}
	}
	for len(t.m) >= max && t.lru.Len() > 0 {
		t.drop(t.lru.Back().Value.(*entry))
	}
	e := &entry{key: key}
	t.m[key] = t.lru.PushFront(e)
	return e
}

func (t *table) drop(e *entry) {
	t.lru.Remove(t.m[e.key])
	delete(t.m, e.key)
}
