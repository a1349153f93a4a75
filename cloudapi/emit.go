package cloudapi

import (
	"context"
	"sync"

	"github.com/dirgate/dirgate/cache"
)

// A Pipe passes entries in batches of emitBatch, at most emitBatches of
// them pending: enough to ride out a slow cache write, small next to a
// listing. One hand-over per entry cost a goroutine wake-up per entry,
// more than the engine's own work for an unchanged entry.
const (
	emitBatch   = 256
	emitBatches = 4
)

// Pipe hands a cloud source's entries to the engine's emit on a goroutine
// of its own. A full read is bounded by the cache writes the engine makes
// for each entry and by the requests for the pages still to come; with
// the two on separate goroutines they overlap, where calling emit between
// requests added them up.
//
// emit is called from one goroutine, in the order Send was called, as the
// dirsync.Source contract expects. Once emit fails, Send returns its
// error and the context NewPipe returned is cancelled, so that requests
// in flight stop. A panic in emit is raised again in the reader's
// goroutine, by Send or Close, as if emit had been called there.
type Pipe struct {
	ch     chan []*cache.Entry
	batch  []*cache.Entry // filled by Send, handed over when full
	done   chan struct{}
	cancel context.CancelFunc
	once   sync.Once
	err    error // emit's error; set before done is closed
	panic  any   // what emit panicked with; set before done is closed
}

// NewPipe starts the goroutine calling emit and returns the pipe with the
// context the reader should use. Close must be called.
func NewPipe(ctx context.Context, emit func(*cache.Entry) error) (*Pipe, context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	p := &Pipe{ch: make(chan []*cache.Entry, emitBatches), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(p.done)
		defer func() {
			if v := recover(); v != nil {
				p.panic = v
				cancel()
			}
		}()
		for batch := range p.ch {
			for _, e := range batch {
				if err := emit(e); err != nil {
					p.err = err
					cancel()
					return
				}
			}
		}
	}()
	return p, ctx
}

// Send passes e to emit; it fails once emit has failed.
func (p *Pipe) Send(e *cache.Entry) error {
	p.batch = append(p.batch, e)
	if len(p.batch) < emitBatch {
		return nil
	}
	return p.Flush()
}

// Flush hands the entries sent so far over at once rather than when a
// batch is full: a source calls it when its next entries are a request
// away.
func (p *Pipe) Flush() error {
	if len(p.batch) == 0 {
		return nil
	}
	select {
	case p.ch <- p.batch:
		p.batch = make([]*cache.Entry, 0, emitBatch)
		return nil
	case <-p.done:
		return p.result()
	}
}

// Close waits until every entry sent was emitted and returns emit's
// error, if any. It may be called more than once.
func (p *Pipe) Close() error {
	p.once.Do(func() {
		_ = p.Flush() // emit's error, if any, is returned below
		close(p.ch)
	})
	<-p.done
	p.cancel()
	return p.result()
}

// result is emit's outcome once done is closed.
func (p *Pipe) result() error {
	if p.panic != nil {
		panic(p.panic)
	}
	return p.err
}

// Piped runs read with a Pipe to emit and returns read's error, or emit's
// when emit failed (read then only saw the cancellation it caused).
func Piped(ctx context.Context, emit func(*cache.Entry) error, read func(context.Context, *Pipe) error) error {
	out, ctx := NewPipe(ctx, emit)
	err := read(ctx, out)
	if perr := out.Close(); perr != nil {
		return perr
	}
	return err
}
