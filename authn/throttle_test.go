package authn

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/state"
)

const maxTestKeys = 1000

// testThrottleOn returns a throttle under testThrottle whose tables hold
// at most max keys each.
func testThrottleOn(now func() time.Time, max int) *throttle {
	return newThrottle(testThrottle, now, state.NewMemoryThrottle(max), slog.New(slog.DiscardHandler))
}

// counter returns th's counter of key in table.
func counter(t *testing.T, th *throttle, table, key string) state.Counter {
	t.Helper()
	c, err := th.store.Counter(t.Context(), table, key, th.now(), th.accountLimit())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var testThrottle = config.Throttle{
	AccountFailures: 3,
	AddressFailures: 5,
	Window:          config.Duration(10 * time.Minute),
	Lockout:         config.Duration(15 * time.Minute),
	BaseDelay:       config.Duration(200 * time.Millisecond),
}

// tstep is one event in a throttle scenario: wait, then make an attempt on
// acct from addr with the given outcome. want says how the attempt fares:
// "ok" (admitted), "account" or "address" (refused as locked there).
type tstep struct {
	wait       time.Duration
	acct, addr string
	result     outcome
	want       string
	wantN      int // failures counted on the account after the attempt, when > 0
}

func runThrottle(t *testing.T, th *throttle, clock *fakeClock, steps []tstep) {
	t.Helper()
	for i, s := range steps {
		clock.Add(s.wait)
		got := "ok"
		if err := th.addressLocked(s.addr); err != nil {
			got = "address"
		} else if err := th.begin(context.Background(), s.acct); err != nil {
			if ReasonOf(err) != ReasonThrottled {
				t.Fatalf("step %d: begin: %v", i, err)
			}
			got = "account"
		} else if n := th.end(s.acct, s.addr, s.result); s.wantN > 0 && n != s.wantN {
			t.Errorf("step %d: %d failures counted, want %d", i, n, s.wantN)
		}
		if got != s.want {
			t.Fatalf("step %d (%+v): %s, want %s", i, s, got, s.want)
		}
	}
}

func TestThrottle(t *testing.T) {
	const (
		f  = outcomeFailure
		ok = outcomeSuccess
		nt = outcomeNeutral
	)
	cases := []struct {
		name  string
		steps []tstep
	}{
		{"account locks at the limit", []tstep{
			{acct: "alice", addr: "ip1", result: f, want: "ok", wantN: 1},
			{acct: "alice", addr: "ip2", result: f, want: "ok", wantN: 2},
			{acct: "alice", addr: "ip3", result: f, want: "ok", wantN: 3},
			{acct: "alice", addr: "ip4", result: ok, want: "account"}, // even the right password
			{acct: "bob", addr: "ip4", result: ok, want: "ok"},        // other accounts are not affected
			{wait: 15*time.Minute - time.Second, acct: "alice", addr: "ip4", want: "account"},
			{wait: time.Second, acct: "alice", addr: "ip4", result: f, want: "ok", wantN: 1}, // lock over: counting restarts
		}},
		{"success resets the account", []tstep{
			{acct: "alice", addr: "ip1", result: f, want: "ok", wantN: 1},
			{acct: "alice", addr: "ip1", result: f, want: "ok", wantN: 2},
			{acct: "alice", addr: "ip1", result: ok, want: "ok"},
			{acct: "alice", addr: "ip1", result: f, want: "ok", wantN: 1},
			{acct: "alice", addr: "ip1", result: f, want: "ok", wantN: 2},
			{acct: "alice", addr: "ip1", result: ok, want: "ok"},
		}},
		{"neutral outcomes neither count nor reset", []tstep{
			{acct: "alice", result: f, want: "ok", wantN: 1},
			{acct: "alice", result: nt, want: "ok"},
			{acct: "alice", result: f, want: "ok", wantN: 2},
		}},
		{"window counts from the previous failure", []tstep{
			{acct: "alice", result: f, want: "ok", wantN: 1},
			{wait: 9 * time.Minute, acct: "alice", result: f, want: "ok", wantN: 2},
			{wait: 9 * time.Minute, acct: "alice", result: f, want: "ok", wantN: 3}, // 18m after the first
			{acct: "alice", result: ok, want: "account"},
		}},
		{"failures older than the window are forgotten", []tstep{
			{acct: "alice", result: f, want: "ok", wantN: 1},
			{acct: "alice", result: f, want: "ok", wantN: 2},
			{wait: 10*time.Minute + time.Second, acct: "alice", result: f, want: "ok", wantN: 1},
		}},
		{"address locks at its limit across accounts", []tstep{
			{acct: "u1", addr: "ip1", result: f, want: "ok"},
			{acct: "u2", addr: "ip1", result: f, want: "ok"},
			{acct: "u3", addr: "ip1", result: f, want: "ok"},
			{acct: "u4", addr: "ip1", result: f, want: "ok"},
			{acct: "u5", addr: "ip1", result: f, want: "ok"},
			{acct: "u6", addr: "ip1", result: ok, want: "address"},
			{acct: "u6", addr: "ip2", result: ok, want: "ok"},
			{acct: "u6", addr: "", result: ok, want: "ok"}, // no address: no address throttling
			{wait: 15 * time.Minute, acct: "u6", addr: "ip1", result: ok, want: "ok"},
		}},
		{"a success does not reset the address", []tstep{
			{acct: "u1", addr: "ip1", result: f, want: "ok"},
			{acct: "u2", addr: "ip1", result: f, want: "ok"},
			{acct: "u3", addr: "ip1", result: f, want: "ok"},
			{acct: "u4", addr: "ip1", result: f, want: "ok"},
			{acct: "u5", addr: "ip1", result: ok, want: "ok"},
			{acct: "u6", addr: "ip1", result: f, want: "ok"},
			{acct: "u7", addr: "ip1", result: ok, want: "address"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := newClock()
			runThrottle(t, testThrottleOn(clock.Now, maxTestKeys), clock, c.steps)
		})
	}
}

func TestThrottleDelay(t *testing.T) {
	ms := time.Millisecond
	th := testThrottleOn(time.Now, maxTestKeys)
	for n, want := range map[int]time.Duration{
		0: 0, 1: 200 * ms, 2: 400 * ms, 3: 800 * ms, 4: 1600 * ms, 5: 3200 * ms, 6: 5 * time.Second, 7: 5 * time.Second, 1000: 5 * time.Second,
	} {
		if got := th.delay(n); got != want {
			t.Errorf("delay(%d) = %v, want %v", n, got, want)
		}
	}
	th.cfg.BaseDelay = config.Duration(3 * time.Second)
	if got := th.delay(2); got != 5*time.Second {
		t.Errorf("delay(2) with a 3s base = %v, want the 5s cap", got)
	}
	th.cfg.BaseDelay = 0
	if got := th.delay(3); got != 0 {
		t.Errorf("delay with base 0 = %v", got)
	}
}

// TestThrottleInFlight: attempts on one account are admitted only as far
// as its failures left allow, so concurrent guesses cannot overshoot.
func TestThrottleInFlight(t *testing.T) {
	clock := newClock()
	th := testThrottleOn(clock.Now, maxTestKeys)
	ctx := context.Background()
	th.begin(ctx, "alice")
	th.end("alice", "", outcomeFailure) // 2 failures left
	for range 2 {
		if err := th.begin(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := th.begin(short, "alice"); ReasonOf(err) != ReasonUnavailable {
		t.Fatalf("a third attempt in flight was admitted: %v", err)
	}
	admitted := make(chan error, 1)
	go func() { admitted <- th.begin(ctx, "alice") }()
	select {
	case err := <-admitted:
		t.Fatalf("admitted while two attempts are in flight: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	th.end("alice", "", outcomeSuccess) // resets: the waiter gets in
	if err := <-admitted; err != nil {
		t.Fatal(err)
	}
	// The count was reset: three attempts may be in flight. When all three
	// fail the account locks, and a fourth that waited is refused as
	// throttled, never admitted.
	if err := th.begin(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	go func() { admitted <- th.begin(ctx, "alice") }()
	time.Sleep(20 * time.Millisecond)
	th.end("alice", "", outcomeFailure)
	th.end("alice", "", outcomeFailure)
	select {
	case err := <-admitted:
		t.Fatalf("admitted with one failure left and one attempt in flight: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	th.end("alice", "", outcomeFailure)
	if err := <-admitted; ReasonOf(err) != ReasonThrottled {
		t.Fatalf("waiter after the lock: %v, want throttled", err)
	}
	th.mu.Lock()
	a := th.inflight["alice"]
	th.mu.Unlock()
	if c := counter(t, th, accountsTable, "alice"); a != nil || !c.Locked() {
		t.Fatalf("after the lock: %+v in flight, counter %+v", a, c)
	}
}

func TestThrottleBounded(t *testing.T) {
	clock := newClock()
	th := testThrottleOn(clock.Now, 10)
	mem := th.store.(*state.MemoryThrottle)
	ctx := context.Background()
	if err := th.begin(ctx, "in-flight"); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		k := fmt.Sprint("user", i)
		th.begin(ctx, k)
		th.end(k, fmt.Sprint("ip", i), outcomeFailure)
	}
	if n, m := mem.Len(accountsTable), mem.Len(addressesTable); n > 10 || m > 10 {
		t.Fatalf("tables hold %d accounts and %d addresses, cap 10", n, m)
	}
	if len(th.inflight) != 1 || th.inflight["in-flight"] == nil {
		t.Fatalf("attempts in flight: %v, want the one on in-flight only", th.inflight)
	}
	if counter(t, th, accountsTable, "user49").Failures != 1 || counter(t, th, accountsTable, "user0").Failures != 0 {
		t.Fatal("eviction did not drop the least recently touched entries")
	}
	th.end("in-flight", "", outcomeSuccess)
	if len(th.inflight) != 0 {
		t.Fatal("an account with nothing in flight is kept")
	}
	// Successes leave nothing behind.
	before := mem.Len(accountsTable)
	for i := range 20 {
		k := fmt.Sprint("good", i)
		th.begin(ctx, k)
		th.end(k, "ip", outcomeSuccess)
	}
	if after := mem.Len(accountsTable); after > before {
		t.Fatalf("successful accounts are remembered: %d accounts, %d before", after, before)
	}
}

func TestAddressKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:3890":             "192.0.2.1",
		"192.0.2.1":                  "192.0.2.1",
		"[::ffff:192.0.2.1]:1":       "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:389": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1":       "2001:db8:1:2::/64",
		"[fe80::1%eth0]:389":         "fe80::/64",
		"":                           "",
		" ":                          "",
		"Some.Host:1":                "some.host",
	} {
		if got := addressKey(in); got != want {
			t.Errorf("addressKey(%q) = %q, want %q", in, got, want)
		}
	}
	if accountKey("a", "1", "x") == accountKey("", "", "x") || accountKey("", "", " Alice@X ") != accountKey("", "", "alice@x") {
		t.Error("account keys")
	}
}

// resetCounter is a throttle store that counts its resets.
type resetCounter struct {
	*state.MemoryThrottle
	resets int
}

func (r *resetCounter) Reset(ctx context.Context, table, key string) error {
	r.resets++
	return r.MemoryThrottle.Reset(ctx, table, key)
}

// TestThrottleResetOnlyAfterFailures: a success resets the account's count
// when there were failures to reset, and saves the store the call when the
// count it learned was zero (a round trip to the shared store of a
// cluster, on every successful login).
func TestThrottleResetOnlyAfterFailures(t *testing.T) {
	clock := newClock()
	store := &resetCounter{MemoryThrottle: state.NewMemoryThrottle(maxTestKeys)}
	th := newThrottle(testThrottle, clock.Now, store, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	for i, s := range []struct {
		o          outcome
		wantResets int
		wantCount  int
	}{
		{outcomeSuccess, 0, 0},
		{outcomeFailure, 0, 1},
		{outcomeFailure, 0, 2},
		{outcomeSuccess, 1, 0},
		{outcomeSuccess, 1, 0},
	} {
		if err := th.begin(ctx, "alice"); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		th.end("alice", "ip", s.o)
		if c := counter(t, th, accountsTable, "alice"); store.resets != s.wantResets || c.Failures != s.wantCount {
			t.Fatalf("step %d: %d resets, %d failures counted; want %d and %d", i, store.resets, c.Failures, s.wantResets, s.wantCount)
		}
	}
	// A failure counted by a concurrent attempt after this one's
	// reservation saw none: the success needs no reset of it, but the
	// failure, which this process learned of, is reset.
	if err := th.begin(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := th.begin(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	th.end("alice", "ip", outcomeFailure)
	th.end("alice", "ip", outcomeSuccess)
	if c := counter(t, th, accountsTable, "alice"); store.resets != 2 || c.Failures != 0 {
		t.Fatalf("success after a concurrent failure: %d resets, %d failures counted; want 2 and 0", store.resets, c.Failures)
	}
}
