package google

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dirgate/dirgate/clock"
)

// budget meters requests so that no minute, however it is placed, holds
// more than perMinute of them (a sliding window over the last perMinute
// requests): a token bucket of the same rate would allow twice that
// across a refill. Google counts queries per minute per user as they
// arrive, so a request is dated by its answer, which comes after Google
// counted it: with several requests in flight, one sent early could
// otherwise arrive late, in the same minute as those allowed a minute
// after it. A request that has to wait for its turn first waits for the
// requests in flight to be answered, so that none of them is dated by
// the end of its wait.
type budget struct {
	clk       clock.Clock
	perMinute int
	mu        sync.Mutex // held by a request waiting for its turn, so that they wait in turn
	inFlight  sync.WaitGroup
	answers   []*atomic.Int64 // ring of the last perMinute requests' answer times (Unix ns); 0 while in flight
	next      int             // the ring's oldest request once it is full
}

func newBudget(clk clock.Clock, perMinute int) *budget {
	return &budget{clk: clk, perMinute: perMinute}
}

// wait returns when one more request fits, and counts it; the request
// must call done once it is answered (or has failed).
func (b *budget) wait(ctx context.Context) (done func(), err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.answers) < b.perMinute {
		b.answers = append(b.answers, new(atomic.Int64))
		return b.take(b.answers[len(b.answers)-1]), nil
	}
	// The oldest of the last perMinute requests must have been answered a
	// minute ago.
	old := b.answers[b.next]
	if at := old.Load(); at == 0 || time.Unix(0, at).Add(time.Minute).After(b.clk.Now()) {
		b.inFlight.Wait()
		if d := time.Unix(0, old.Load()).Add(time.Minute).Sub(b.clk.Now()); d > 0 {
			if err := b.clk.Sleep(ctx, d); err != nil {
				return nil, err
			}
		}
	}
	b.next = (b.next + 1) % b.perMinute
	return b.take(old), nil
}

// take counts a request whose answer time goes to slot, and returns its
// done.
func (b *budget) take(slot *atomic.Int64) func() {
	b.inFlight.Add(1)
	slot.Store(0)
	return func() {
		slot.Store(b.clk.Now().UnixNano())
		b.inFlight.Done()
	}
}
