package cloudapi

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/dirgate/dirgate/cache"
)

// TestPipe: entries reach emit in order, on another goroutine; emit's
// error comes back from Send and Close and cancels the reader's context;
// emit's panic is raised again in the reader's goroutine.
func TestPipe(t *testing.T) {
	t.Run("order", func(t *testing.T) {
		var got []string
		p, _ := NewPipe(context.Background(), func(e *cache.Entry) error { got = append(got, e.ID); return nil })
		for i := range 3000 {
			if err := p.Send(&cache.Entry{ID: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Close(); err != nil || len(got) != 3000 || got[0] != "0" || got[2999] != "2999" {
			t.Fatalf("Close: %v; %d entries emitted", err, len(got))
		}
		for i, id := range got {
			if id != fmt.Sprint(i) {
				t.Fatalf("entry %d emitted as %s", i, id)
			}
		}
	})
	t.Run("error", func(t *testing.T) {
		boom := errors.New("boom")
		p, ctx := NewPipe(context.Background(), func(*cache.Entry) error { return boom })
		var err error
		for i := 0; err == nil && i < 10*emitBatch*emitBatches; i++ {
			err = p.Send(&cache.Entry{ID: fmt.Sprint(i)})
		}
		if !errors.Is(err, boom) {
			t.Errorf("Send after emit failed: %v", err)
		}
		<-ctx.Done() // the reader's requests stop
		if err := p.Close(); !errors.Is(err, boom) {
			t.Errorf("Close: %v", err)
		}
	})
	t.Run("panic", func(t *testing.T) {
		p, _ := NewPipe(context.Background(), func(*cache.Entry) error { panic("emit died") })
		defer func() {
			if r := recover(); r != "emit died" {
				t.Errorf("recovered %v, want emit's panic", r)
			}
		}()
		_ = p.Send(&cache.Entry{ID: "1"})
		_ = p.Close()
		t.Error("Close returned after emit panicked")
	})
}
