package authn

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/dirgate/dirgate/state"
	"github.com/dirgate/dirgate/state/pgstate/pgtest"
)

// blockingThrottle is a throttle store whose calls on one key block until
// released, as a store on a slow network does.
type blockingThrottle struct {
	*state.MemoryThrottle
	slow    string
	entered chan struct{}
	release chan struct{}
}

func (b *blockingThrottle) wait(key string) {
	if key == b.slow {
		b.entered <- struct{}{}
		<-b.release
	}
}

func (b *blockingThrottle) Counter(ctx context.Context, table, key string, now time.Time, l state.Limit) (state.Counter, error) {
	b.wait(key)
	return b.MemoryThrottle.Counter(ctx, table, key, now, l)
}

func (b *blockingThrottle) Reserve(ctx context.Context, table, key, id string, now, until time.Time, l state.Limit) (state.Counter, bool, error) {
	b.wait(key)
	return b.MemoryThrottle.Reserve(ctx, table, key, id, now, until, l)
}

func (b *blockingThrottle) Fail(ctx context.Context, table, key string, now time.Time, l state.Limit) (state.Counter, error) {
	b.wait(key)
	return b.MemoryThrottle.Fail(ctx, table, key, now, l)
}

// TestThrottleSlowStoreBlocksOneAccount: while the store takes its time
// over one account, the logins of other accounts are admitted and counted.
func TestThrottleSlowStoreBlocksOneAccount(t *testing.T) {
	store := &blockingThrottle{MemoryThrottle: state.NewMemoryThrottle(maxTestKeys), slow: "slow",
		entered: make(chan struct{}), release: make(chan struct{})}
	clock := newClock()
	th := newThrottle(testThrottle, clock.Now, store, slog.New(slog.DiscardHandler))
	slowDone := make(chan error, 1)
	go func() { slowDone <- th.begin(context.Background(), "slow") }()
	<-store.entered // the slow account's admission is inside the store

	others := make(chan error, 1)
	go func() {
		for _, k := range []string{"alice", "bob"} {
			if err := th.begin(context.Background(), k); err != nil {
				others <- err
				return
			}
			th.end(k, "ip", outcomeFailure)
		}
		others <- nil
	}()
	select {
	case err := <-others:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the logins of other accounts waited for the store's answer about one account")
	}
	if c := counter(t, th, accountsTable, "bob"); c.Failures != 1 {
		t.Errorf("bob's failure was counted as %+v", c)
	}
	close(store.release)
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
	th.end("slow", "", outcomeSuccess)
	if len(th.inflight) != 0 {
		t.Errorf("admission state left behind: %v", th.inflight)
	}
}

// TestThrottleSharedAcrossReplicas: two replicas counting in one
// PostgreSQL schema lock an account after AccountFailures failures in all,
// wherever they were made, and a success on one resets it for both.
func TestThrottleSharedAcrossReplicas(t *testing.T) {
	db := pgtest.New(t)
	clock := newClock()
	replica := func() *throttle {
		return newThrottle(testThrottle, clock.Now, db.Store(t, ""), slog.New(slog.DiscardHandler))
	}
	a, b := replica(), replica()
	steps := []struct {
		on   *throttle
		o    outcome
		want string // "ok" or "account"
	}{
		{a, outcomeFailure, "ok"},
		{b, outcomeFailure, "ok"},
		{a, outcomeSuccess, "ok"}, // resets for both
		{b, outcomeFailure, "ok"},
		{a, outcomeFailure, "ok"},
		{b, outcomeFailure, "ok"}, // the third: locked on both
		{a, outcomeSuccess, "account"},
		{b, outcomeSuccess, "account"},
	}
	for i, s := range steps {
		got := "ok"
		if err := s.on.begin(context.Background(), "alice"); err != nil {
			if ReasonOf(err) != ReasonThrottled {
				t.Fatalf("step %d: %v", i, err)
			}
			got = "account"
		} else {
			s.on.end("alice", "ip", s.o)
		}
		if got != s.want {
			t.Fatalf("step %d: %s, want %s", i, got, s.want)
		}
	}
}

// TestLoginThrottleConcurrentAcrossReplicas: a burst of parallel guesses
// spread over two replicas counting in one PostgreSQL schema, against an
// upstream slow enough that every guess is in flight at once, cannot push
// more failures upstream than account_failures in all (each replica
// admitting its own share would let through twice as many).
func TestLoginThrottleConcurrentAcrossReplicas(t *testing.T) {
	const limit = 4
	env := startDemo(t, demoOpt{forwarder: true, auth: fmt.Sprintf("{throttle: {account_failures: %d, address_failures: 1000}}", limit)})
	env.fwd.latency.Store(int64(300 * time.Millisecond))
	db := pgtest.New(t)
	replica := func() *Authenticator {
		st := db.Store(t, "").Stores()
		st.Throttle = state.NewFallback(st.Throttle, state.NewMemoryThrottle(maxTestKeys), slog.New(slog.DiscardHandler))
		a, err := New(env.cfg, env.store, st, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		a.now, a.wait = env.clock.Now, env.slept.wait
		return a
	}
	replicas := []*Authenticator{replica(), replica()}
	const guesses = 30
	results := make(chan Reason, guesses)
	var wg sync.WaitGroup
	for i := range guesses {
		wg.Go(func() {
			_, err := replicas[i%2].Login(context.Background(), Attempt{Login: "bob@demo.dirgate", Password: "guess", Remote: "192.0.2.1", Protocol: "ldap"})
			results <- ReasonOf(err)
		})
	}
	wg.Wait()
	close(results)
	counts := map[Reason]int{}
	for r := range results {
		counts[r]++
	}
	if got := env.fwd.binds.Load(); got > limit {
		t.Fatalf("%d guesses reached the upstream through two replicas, want at most %d", got, limit)
	}
	if counts[ReasonInvalidCredentials] != limit || counts[ReasonThrottled] != guesses-limit {
		t.Fatalf("results %v, want %d wrong passwords and the rest throttled", counts, limit)
	}
}
