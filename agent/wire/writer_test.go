package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// gatedWriter holds its first Write until gate is closed and counts the
// Writes and Flushes it gets.
type gatedWriter struct {
	gate            chan struct{}
	mu              sync.Mutex
	buf             bytes.Buffer
	writes, flushes int
	fail            error
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	first := g.writes == 0
	g.writes++
	g.mu.Unlock()
	if first {
		<-g.gate
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fail != nil {
		return 0, g.fail
	}
	return g.buf.Write(p)
}

func (g *gatedWriter) Flush() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.flushes++
	return nil
}

// queuedBehind waits until n frames wait behind a write under way.
func queuedBehind(t *testing.T, w *Writer, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		w.mu.Lock()
		q := w.queued - w.written
		w.mu.Unlock()
		if q == n+1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d frames queued, want %d", q, n+1)
		}
	}
}

// TestWriterCoalesces: frames written while a write is under way go out
// together in one write and one flush, each whole, and every Write
// returns only once its frame was written.
func TestWriterCoalesces(t *testing.T) {
	g := &gatedWriter{gate: make(chan struct{})}
	w := NewWriter(g)
	const n = 8
	errs := make(chan error, n)
	go func() { errs <- w.Write(&Message{Type: TypePing, ID: 0}) }()
	queuedBehind(t, w, 0)
	for i := 1; i < n; i++ {
		go func() { errs <- w.Write(&Message{Type: TypePing, ID: uint64(i)}) }()
	}
	queuedBehind(t, w, n-1)
	select {
	case err := <-errs:
		t.Fatalf("a Write returned before its frame was written: %v", err)
	default:
	}
	close(g.gate)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if g.writes != 2 || g.flushes != 2 {
		t.Fatalf("%d writes and %d flushes for %d frames, want 2 and 2", g.writes, g.flushes, n)
	}
	r := NewReader(&g.buf)
	seen := map[uint64]bool{}
	for range n {
		m, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		seen[m.ID] = true
	}
	if len(seen) != n {
		t.Fatalf("read frames %v", seen)
	}
}

// TestWriterFailureReachesWaiters: a failed write fails the Writes whose
// frames it carried and every later one.
func TestWriterFailureReachesWaiters(t *testing.T) {
	cut := errors.New("connection cut")
	g := &gatedWriter{gate: make(chan struct{}), fail: cut}
	w := NewWriter(g)
	errs := make(chan error, 3)
	go func() { errs <- w.Write(&Message{Type: TypePing}) }()
	queuedBehind(t, w, 0)
	go func() { errs <- w.Write(&Message{Type: TypePing}) }()
	queuedBehind(t, w, 1)
	close(g.gate)
	for range 2 {
		if err := <-errs; !errors.Is(err, cut) {
			t.Fatalf("got %v, want the write's failure", err)
		}
	}
	if err := w.Write(&Message{Type: TypePing}); !errors.Is(err, cut) {
		t.Fatalf("a write after the failure: %v", err)
	}
}

// panicWriter panics on every write.
type panicWriter struct{}

func (panicWriter) Write([]byte) (int, error) { panic("write after the handler returned") }

// TestWriterPanicBreaksTheStream: a writer that panics fails the Write
// and every later one with an error; the process goes on.
func TestWriterPanicBreaksTheStream(t *testing.T) {
	w := NewWriter(panicWriter{})
	for range 2 {
		if err := w.Write(&Message{Type: TypePing}); err == nil || !strings.Contains(err.Error(), "panicked") {
			t.Fatalf("got %v, want the panic as an error", err)
		}
	}
}

// TestWriterStress: many goroutines writing frames of mixed sizes, some
// too large, through one Writer: every frame that was accepted arrives
// whole, each goroutine's in its order.
func TestWriterStress(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				var b Batch
				switch i % 50 {
				case 7:
					b.Part = &Part{Data: make([]byte, maxKeep+1)} // larger than the kept buffer
				case 13:
					b.Part = &Part{Data: make([]byte, MaxFrame+1)} // refused
				default:
					b.Known = []KnownID{{ID: fmt.Sprint(g), Hash: uint64(i)}}
				}
				err := w.Write(&Message{Type: TypeBatch, ID: uint64(g), Batch: &b})
				if (i%50 == 13) != errors.Is(err, ErrFrameTooLarge) {
					t.Errorf("writer %d frame %d: %v", g, i, err)
				}
			}
		})
	}
	wg.Wait()
	r := NewReader(&buf)
	next := make([]int, writers)
	for {
		m, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		g := int(m.ID)
		if i := next[g]; i%50 == 13 {
			next[g]++ // the refused frame
		}
		i := next[g]
		switch {
		case i%50 == 7 && (m.Batch.Part == nil || len(m.Batch.Part.Data) != maxKeep+1):
			t.Fatalf("writer %d frame %d: not the large part", g, i)
		case i%50 != 7 && (len(m.Batch.Known) != 1 || m.Batch.Known[0].Hash != uint64(i)):
			t.Fatalf("writer %d frame %d: %+v", g, i, m.Batch)
		}
		next[g]++
	}
	for g, n := range next {
		if n != each {
			t.Fatalf("writer %d: %d frames arrived, want %d", g, n, each)
		}
	}
}
