package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/dirgate/dirgate/agent/wire"
	"github.com/dirgate/dirgate/cache"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/upstream"
)

// TestStalledReplyFails: a sync read whose agent answers heartbeats but
// never starts its reply stream, or starts it and then sends nothing,
// fails as unreachable (ErrStalled) within the hub's bounds, and the
// agent is told to cancel it; the engine's time over a batch does not
// count as the agent's silence.
func TestStalledReplyFails(t *testing.T) {
	tests := []struct {
		name     string
		start    bool // open the reply stream and send one batch
		finish   bool // then the final result at once
		slowEmit time.Duration
		want     error
	}{
		{name: "never streams", want: ErrStalled},
		{name: "stalls after a batch", start: true, want: ErrStalled},
		{name: "engine slower than the idle bound", start: true, finish: true, slowEmit: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, time.Hour)
			f.h.cfg.ReplyStart, f.h.cfg.ReplyIdle = 300*time.Millisecond, 300*time.Millisecond
			a := f.newAgent(t, "ad")
			ac, _ := a.connect(t, nil, func(ac *agentConn, id uint64, req *wire.Request) {
				if !tt.start {
					return
				}
				pr, pw := io.Pipe()
				go func() {
					bw := wire.NewBatchWriter(wire.NewWriter(pw), id)
					bw.Entry(&cache.Entry{Connector: "ad", ID: "u1", DN: "cn=u1", Kind: cache.KindUser})
					bw.Flush()
					if tt.finish {
						bw.Finish(&wire.Result{Listing: &dirsync.Listing{Host: "dc1"}})
						pw.Close()
					} // else nothing more, and the stream stays open
				}()
				cl := ac.a.f.client(&ac.a.cert)
				if resp, err := cl.Post(fmt.Sprintf("%s/agent/v1/reply/%d", ac.a.f.url, id), "application/octet-stream", pr); err == nil {
					resp.Body.Close()
				}
			})
			// The welcome may reach the agent before the hub registered
			// the connection.
			waitFor(t, "the agent", func() bool { n, _ := f.h.Connected("ad"); return n == 1 })
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			call, err := f.h.Do(ctx, "ad", &wire.Request{Kind: wire.KindFull})
			if err != nil {
				t.Fatal(err)
			}
			got := 0
			_, err = call.Stream(ctx, func(*cache.Entry) error { got++; time.Sleep(tt.slowEmit); return nil }, nil)
			if tt.want == nil {
				if err != nil || got != 1 {
					t.Fatalf("Stream: %v, %d entries; want the read", err, got)
				}
				return
			}
			if !errors.Is(err, tt.want) || !errors.Is(err, upstream.ErrUnreachable) || ctx.Err() != nil {
				t.Fatalf("Stream: %v; want %v, unreachable, before the caller's deadline", err, tt.want)
			}
			if tt.start && got != 1 {
				t.Fatalf("%d entries before the stall, want 1", got)
			}
			waitFor(t, "the cancel frame", func() bool {
				ac.mu.Lock()
				defer ac.mu.Unlock()
				return len(ac.cancels) == 1 && ac.cancels[0] == call.ID
			})
		})
	}
}
