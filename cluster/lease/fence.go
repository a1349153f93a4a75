package lease

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ErrFenced means a write was refused because its fence no longer holds the
// lease: a successor acquired it, or it expired by the database clock. The
// writer is no longer the leader and must stop.
var ErrFenced = errors.New("lease: not the leader any more (fenced)")

// Fence identifies one term of leadership: the lease, its holder and the
// epoch the holder got when it acquired it. A Fence outlives the term, so a
// paused ex-leader still has one; checking it in the database is what stops
// that ex-leader from writing.
type Fence struct {
	Name   string
	Holder string
	Epoch  int64
}

// checkSQL locks the lease row in share mode, so a successor's acquisition
// (an UPDATE of that row) waits until the fenced transaction ends: every
// write of an epoch commits before the next epoch exists. clock_timestamp()
// rather than now(): now() is frozen at the start of the transaction, so it
// would let a check late in a long transaction pass on an expired lease.
const checkSQL = `SELECT epoch FROM leader_lease
WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp()
FOR SHARE`

// Check verifies, inside the caller's transaction, that f still holds the
// lease, and returns ErrFenced otherwise. Call it before the transaction's
// first write; the row lock it takes lasts until the transaction ends.
func (f Fence) Check(ctx context.Context, tx pgx.Tx) error {
	var epoch int64
	err := tx.QueryRow(ctx, checkSQL, f.Name, f.Holder, f.Epoch).Scan(&epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: lease %q holder %q epoch %d", ErrFenced, f.Name, f.Holder, f.Epoch)
	}
	if err != nil {
		return fmt.Errorf("lease: fence check: %w", err)
	}
	return nil
}

// Do runs fn in a transaction that first checks the fence; the transaction
// commits only if fn returns nil. Keep fn short compared to the lease TTL: the
// holder's own renewal waits for the row lock too.
func (f Fence) Do(ctx context.Context, db DB, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if err := f.Check(ctx, tx); err != nil {
			return err
		}
		return fn(tx)
	})
}

type fenceKey struct{}

// WithFence returns ctx carrying f: the shared stores run the writes made
// under it in f.Do, so work that outlives its term (a paused ex-leader's
// run) cannot write once a successor leads.
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceFrom returns the fence ctx carries, if any (see WithFence).
func FenceFrom(ctx context.Context) (Fence, bool) {
	f, ok := ctx.Value(fenceKey{}).(Fence)
	return f, ok
}
