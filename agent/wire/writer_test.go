package wire

import (
	"bytes"
	"errors"
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
