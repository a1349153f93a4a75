package authn

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/state"
)

// The throttle's tables.
const (
	accountsTable  = "accounts"
	addressesTable = "addresses"
)

// throttle counts failed attempts per account and per client address in
// a throttle store. An account or address that reaches its limit within
// the window is locked for the lockout duration, and Login refuses it
// before the upstream is asked.
//
// It also bounds the attempts on their way to the upstream per account: an
// attempt is admitted with a reservation in the store (state.Throttle's
// Reserve), which the store grants atomically only while fewer attempts
// hold one than the account has failures left before its lock, whichever
// process made them. So concurrent guesses cannot overshoot the limit, not
// even spread over a cluster's replicas: the upstream never sees more than
// AccountFailures failures per window. The failure is counted before the
// reservation is released, so an attempt is never missing from both.
//
// No lock is held across a store call: a slow store (a network round trip
// in cluster mode) delays the logins it answers, never the others'.
type throttle struct {
	cfg   config.Throttle
	now   func() time.Time
	store state.Throttle
	log   *slog.Logger

	mu       sync.Mutex // guards inflight and its entries
	inflight map[string]*admission
}

// admission is what this process knows of one account's attempts, in
// inflight while anyone uses it.
type admission struct {
	refs int           // goroutines in begin, plus attempts in flight
	held []string      // the reservations of this process's attempts in flight
	wake chan struct{} // closed when one of them ends
	// failures is the account's count of failures as this process last
	// learned it, from the store's answers to its reservations, failures
	// and resets while the state exists; an attempt's own reservation sets
	// it before the attempt ends.
	failures int
}

// reservationTTL bounds an attempt's reservation: a replica that dies
// holding one stops counting after it. It is longer than any attempt takes
// (a bind is bounded by auth.bind_timeout, 15s by default).
const reservationTTL = 5 * time.Minute

// reservationPoll is how often an attempt waiting for a place looks again,
// for places freed by other replicas (this process's own wake it at once).
const reservationPoll = 200 * time.Millisecond

func newThrottle(cfg config.Throttle, now func() time.Time, store state.Throttle, log *slog.Logger) *throttle {
	return &throttle{cfg: cfg, now: now, store: store, log: log, inflight: map[string]*admission{}}
}

func (th *throttle) accountLimit() state.Limit {
	return state.Limit{Failures: th.cfg.AccountFailures, Window: th.cfg.Window.Std(), Lockout: th.cfg.Lockout.Std()}
}

func (th *throttle) addressLimit() state.Limit {
	return state.Limit{Failures: th.cfg.AddressFailures, Window: th.cfg.Window.Std(), Lockout: th.cfg.Lockout.Std()}
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
func throttledError(what string, c state.Counter) error {
	return &Error{Reason: ReasonThrottled, Err: &lockedError{what: what, until: c.Until, failures: c.Failures}}
}

// storeError is returned when the throttle store cannot answer: the
// attempt is refused, since it cannot be counted.
func storeError(err error) error {
	return &Error{Reason: ReasonUnavailable, Err: fmt.Errorf("throttle: %w", err)}
}

// addressLocked returns an error when the client address key is locked.
func (th *throttle) addressLocked(key string) error {
	if key == "" {
		return nil
	}
	// A read only: no admission depends on it, so it takes no lock.
	c, err := th.store.Counter(context.Background(), addressesTable, key, th.now(), th.addressLimit())
	switch {
	case err != nil:
		return storeError(err)
	case c.Locked():
		return throttledError("client address "+key, c)
	}
	return nil
}

// acquire returns key's admission state, referenced once more.
func (th *throttle) acquire(key string) *admission {
	th.mu.Lock()
	defer th.mu.Unlock()
	a := th.inflight[key]
	if a == nil {
		a = &admission{}
		th.inflight[key] = a
	}
	a.refs++
	return a
}

// releaseLocked drops a reference to key's admission state, and the state
// when none is left.
func (th *throttle) releaseLocked(key string, a *admission) {
	if a.refs--; a.refs <= 0 {
		delete(th.inflight, key)
	}
}

func (th *throttle) release(key string, a *admission) {
	th.mu.Lock()
	defer th.mu.Unlock()
	th.releaseLocked(key, a)
}

// begin admits an attempt on the account key: it fails with a throttled
// error when the account is locked, and waits (bounded by ctx) while as
// many attempts as the account has failures left are already in flight,
// here or on other replicas. Every successful begin must be followed by
// one end.
func (th *throttle) begin(ctx context.Context, key string) error {
	a := th.acquire(key)
	for {
		id, now := rand.Text(), th.now()
		c, ok, err := th.store.Reserve(ctx, accountsTable, key, id, now, now.Add(reservationTTL), th.accountLimit())
		switch {
		case err != nil:
			err = storeError(err)
		case c.Locked():
			err = throttledError("account", c)
		}
		th.mu.Lock()
		if err == nil {
			a.failures = c.Failures
		}
		if err != nil || ok {
			if ok {
				a.held = append(a.held, id) // keeps the reference until end
			} else {
				th.releaseLocked(key, a)
			}
			th.mu.Unlock()
			return err
		}
		if a.wake == nil {
			a.wake = make(chan struct{})
		}
		wake := a.wake
		th.mu.Unlock()
		poll := time.NewTimer(reservationPoll)
		select {
		case <-wake:
		case <-poll.C:
		case <-ctx.Done():
			poll.Stop()
			th.release(key, a)
			return waitError(ctx)
		}
		poll.Stop()
	}
}

// waitError is begin's answer when ctx ended while it waited.
func waitError(ctx context.Context) error {
	return &Error{Reason: ReasonUnavailable, Err: fmt.Errorf("waiting for other attempts on this account: %w", ctx.Err())}
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
// resets the account's count. The attempt's reservation is released after
// its outcome is counted.
//
// A success skips the reset (a store round trip) when this process last
// learned the count at zero, its reservation's answer or a later one:
// there was nothing to reset then, and a failure counted since by a
// concurrent attempt may be taken to have followed this success. Skipping
// can leave a failure counted that a reset would have cleared, never drop
// one.
func (th *throttle) end(key, addrKey string, o outcome) int {
	th.mu.Lock()
	a := th.inflight[key]
	var id string
	clean := false
	if a != nil {
		if len(a.held) > 0 {
			id, a.held = a.held[len(a.held)-1], a.held[:len(a.held)-1]
		}
		clean = a.failures == 0
	}
	th.mu.Unlock()
	ctx, now := context.Background(), th.now()
	var err error
	n, learned := 0, false
	switch o {
	case outcomeSuccess:
		if !clean {
			err = th.store.Reset(ctx, accountsTable, key)
			learned = err == nil
		}
	case outcomeFailure:
		var c state.Counter
		c, err = th.store.Fail(ctx, accountsTable, key, now, th.accountLimit())
		n, learned = c.Failures, err == nil
		if addrKey != "" && err == nil {
			_, err = th.store.Fail(ctx, addressesTable, addrKey, now, th.addressLimit())
		}
	}
	if id != "" && th.cfg.AccountFailures > 0 {
		err = errors.Join(err, th.store.Release(ctx, accountsTable, key, id))
	}
	if err != nil {
		// The answer stands; only the count is lost, which the log says.
		th.log.Error("throttle: count not recorded", "err", err)
	}
	if a != nil && learned {
		th.mu.Lock()
		a.failures = n
		th.mu.Unlock()
	}
	if id != "" {
		th.mu.Lock()
		if a.wake != nil {
			close(a.wake)
			a.wake = nil
		}
		th.releaseLocked(key, a)
		th.mu.Unlock()
	}
	return n
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
