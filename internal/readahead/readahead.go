// Package readahead runs the reading of a listing ahead of its consumer:
// the next page of an upstream is requested while the last one is still
// being mapped and written, so the two proceed side by side instead of
// taking turns. The LDAP, Entra and Google sources read this way.
package readahead

import "context"

// Run calls read in a goroutine of its own and fn, on the caller's, with
// every item read passes to its yield, in order, at most depth items
// behind (0: one item in hand while the next is read). fn's error cancels
// read's context and is returned once read has ended; otherwise Run
// returns read's error after fn has taken every item yielded before it.
// yield fails with the context's error once Run's context ends.
func Run[T any](ctx context.Context, depth int, read func(ctx context.Context, yield func(T) error) error, fn func(T) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	items := make(chan T, depth)
	readErr := make(chan error, 1)
	go func() {
		defer close(items)
		readErr <- read(ctx, func(item T) error {
			select {
			case items <- item:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	for item := range items {
		if err := fn(item); err != nil {
			cancel()
			for range items { // read sees the cancellation and ends
			}
			<-readErr
			return err
		}
	}
	return <-readErr
}
