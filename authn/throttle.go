package authn

import (
	"container/list"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/dirgate/dirgate/config"
)

// maxThrottleKeys bounds each throttle table (accounts, addresses). When a
// table is full the entry touched least recently is forgotten first.
const maxThrottleKeys = 100_000

// throttle counts failed attempts per account and per client address, in
// memory. An account or address that reaches its limit within the window is
// locked for the lockout duration, and Login refuses it before the
// upstream is asked.
//
// It also keeps the number of attempts that are on their way to the
// upstream per account, and admits at most as many as the account has
// failures left before its lock: concurrent guesses cannot overshoot the
// limit, so the upstream never sees more than AccountFailures failures
// through dirgate per window.
type throttle struct {
	cfg config.Throttle
	now func() time.Time

	mu        sync.Mutex
	accounts  *table
	addresses *table
}

type counter struct {
	key      string
	failures int
	last     time.Time // of the latest failure
	until    time.Time // locked until; zero when not locked
	inflight int       // admitted attempts not finished yet (accounts)
	wake     chan struct{}
	elem     *list.Element
}

// table is a bounded map of counters with least-recently-touched eviction.
type table struct {
	max int
	m   map[string]*counter
	lru *list.List // of *counter, front = most recently touched
}

func newTable(max int) *table {
	return &table{max: max, m: map[string]*counter{}, lru: list.New()}
}

func newThrottle(cfg config.Throttle, now func() time.Time) *throttle {
	return &throttle{cfg: cfg, now: now, accounts: newTable(maxThrottleKeys), addresses: newTable(maxThrottleKeys)}
}

// refresh expires what time has made stale: a lock whose time is up (the
// count starts again from zero), or failures whose latest is older than the
// window.
func (th *throttle) refresh(c *counter, now time.Time) {
	if !c.until.IsZero() && !now.Before(c.until) {
		c.until, c.failures = time.Time{}, 0
	}
	if c.until.IsZero() && c.failures > 0 && now.Sub(c.last) > th.cfg.Window.Std() {
		c.failures = 0
	}
}

func (c *counter) idle() bool { return c.failures == 0 && c.until.IsZero() && c.inflight == 0 }

func (t *table) get(key string) *counter { return t.m[key] }

// getOrCreate returns key's counter, making room for it if needed.
func (t *table) getOrCreate(th *throttle, key string, now time.Time) *counter {
	if c := t.m[key]; c != nil {
		t.lru.MoveToFront(c.elem)
		return c
	}
	// Forget a few stale entries on every insertion, and the least recently
	// touched ones (not those with attempts in flight) when full.
	for range 2 {
		if back := t.lru.Back(); back != nil {
			c := back.Value.(*counter)
			if th.refresh(c, now); c.idle() {
				t.drop(c)
			}
		}
	}
	for e := t.lru.Back(); len(t.m) >= t.max && e != nil; {
		c := e.Value.(*counter)
		e = e.Prev()
		if c.inflight == 0 {
			t.drop(c)
		}
	}
	c := &counter{key: key}
	c.elem = t.lru.PushFront(c)
	t.m[key] = c
	return c
}

func (t *table) drop(c *counter) {
	t.lru.Remove(c.elem)
	delete(t.m, c.key)
}

// lockedError is the cause of a ReasonThrottled error: what is locked,
// until when, and after how many failures (which sets the delay of the
// refusal).
type lockedError struct {
	what     string
	until    time.Time
	failures int
}

func (e *lockedError) Error() string {
	return fmt.Sprintf("%s locked by dirgate until %s after too many failed attempts", e.what, e.until.UTC().Format(time.RFC3339))
}

// throttledError is returned for a locked account or address.
func throttledError(what string, c *counter) error {
	return &Error{Reason: ReasonThrottled, Err: &lockedError{what: what, until: c.until, failures: c.failures}}
}

// addressLocked returns an error when the client address key is locked.
func (th *throttle) addressLocked(key string) error {
	if key == "" {
		return nil
	}
	th.mu.Lock()
	defer th.mu.Unlock()
	c := th.addresses.get(key)
	if c == nil {
		return nil
	}
	now := th.now()
	th.refresh(c, now)
	if !c.until.IsZero() {
		return throttledError("client address "+key, c)
	}
	if c.idle() {
		th.addresses.drop(c)
	}
	return nil
}

// begin admits an attempt on the account key: it fails with a throttled
// error when the account is locked, and waits (bounded by ctx) while as
// many attempts as the account has failures left are already in flight.
// Every successful begin must be followed by one end.
func (th *throttle) begin(ctx context.Context, key string) error {
	th.mu.Lock()
	for {
		now := th.now()
		c := th.accounts.getOrCreate(th, key, now)
		th.refresh(c, now)
		if !c.until.IsZero() {
			if c.idle() {
				th.accounts.drop(c)
			}
			th.mu.Unlock()
			return throttledError("account", c)
		}
		limit := th.cfg.AccountFailures
		if limit <= 0 || c.inflight < limit-c.failures {
			c.inflight++
			th.mu.Unlock()
			return nil
		}
		if c.wake == nil {
			c.wake = make(chan struct{})
		}
		wake := c.wake
		th.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return &Error{Reason: ReasonUnavailable, Err: fmt.Errorf("waiting for other attempts on this account: %w", ctx.Err())}
		}
		th.mu.Lock()
	}
}

type outcome int

const (
	outcomeNeutral outcome = iota // neither counts nor resets (upstream down, empty password...)
	outcomeFailure
	outcomeSuccess
)

// end finishes an attempt admitted by begin. A failure counts against the
// account and the client address (addrKey may be ""); it returns the
// account's failure count within the window, for the delay. A success
// resets the account's count.
func (th *throttle) end(key, addrKey string, o outcome) int {
	th.mu.Lock()
	defer th.mu.Unlock()
	now := th.now()
	c := th.accounts.getOrCreate(th, key, now)
	c.inflight = max(0, c.inflight-1)
	if c.wake != nil {
		close(c.wake)
		c.wake = nil
	}
	th.refresh(c, now)
	n := 0
	switch o {
	case outcomeSuccess:
		c.failures = 0
	case outcomeFailure:
		n = th.fail(c, th.cfg.AccountFailures, now)
		if addrKey != "" {
			th.fail(th.addresses.getOrCreate(th, addrKey, now), th.cfg.AddressFailures, now)
		}
	}
	if c.idle() {
		th.accounts.drop(c)
	}
	return n
}

// fail counts one failure on c, locking it when it reaches limit.
func (th *throttle) fail(c *counter, limit int, now time.Time) int {
	th.refresh(c, now)
	c.failures++
	c.last = now
	if limit > 0 && c.failures >= limit && c.until.IsZero() {
		c.until = now.Add(th.cfg.Lockout.Std())
	}
	return c.failures
}

// delay is how long to wait before answering the account's n-th failure:
// BaseDelay·2^(n-1), at most config.MaxThrottleDelay.
func (th *throttle) delay(n int) time.Duration {
	d := th.cfg.BaseDelay.Std()
	if n < 1 || d <= 0 {
		return 0
	}
	for i := 1; i < n && d < config.MaxThrottleDelay; i++ {
		d *= 2
	}
	return min(d, config.MaxThrottleDelay)
}

// addressKey is the throttle key of a client address ("ip:port" or "ip"):
// the IP for IPv4, the /64 for IPv6 (one subscriber's usual allocation), or
// "" when there is no address.
func addressKey(remote string) string {
	host := strings.TrimSpace(remote)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "" {
		return ""
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return strings.ToLower(host)
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

// accountKey is the throttle key of an account: its connector and stable
// ID once resolved, otherwise the login as typed (trimmed, lower-cased), so
// that unknown names are throttled too.
func accountKey(connector, id, login string) string {
	if id != "" {
		return "id\x00" + connector + "\x00" + id
	}
	return "login\x00" + strings.ToLower(strings.TrimSpace(login))
}

// localKey is the throttle key of a LocalAccount tried from a client
// address key: failures lock the account for that address only.
func localKey(account, addrKey string) string {
	return "local\x00" + account + "\x00" + addrKey
}

// waitFrom waits until d after start, or until ctx ends.
func waitFrom(ctx context.Context, start time.Time, d time.Duration) error {
	d = time.Until(start.Add(d))
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
