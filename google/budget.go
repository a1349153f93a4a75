package google

import (
	"context"
	"sync"
	"time"

	"github.com/dirgate/dirgate/clock"
)

// budget meters requests so that no minute, however it is placed, holds
// more than perMinute of them (a sliding window over the times of the
// last perMinute requests): a token bucket of the same rate would allow
// twice that across a refill. Google counts queries per minute per user.
type budget struct {
	clk       clock.Clock
	perMinute int
	mu        sync.Mutex
	times     []time.Time // ring of the last perMinute request times
	next      int
}

func newBudget(clk clock.Clock, perMinute int) *budget {
	return &budget{clk: clk, perMinute: perMinute, times: make([]time.Time, 0, min(perMinute, 4096))}
}

// wait returns when one more request fits, and counts it.
func (b *budget) wait(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.times) < b.perMinute {
		b.times = append(b.times, b.clk.Now())
		return nil
	}
	// The oldest of the last perMinute requests must be a minute old.
	if d := b.times[b.next].Add(time.Minute).Sub(b.clk.Now()); d > 0 {
		if err := b.clk.Sleep(ctx, d); err != nil {
			return err
		}
	}
	b.times[b.next] = b.clk.Now()
	b.next = (b.next + 1) % b.perMinute
	return nil
}
