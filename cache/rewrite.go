package cache

import (
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// rewriteDelta applies a delta too large for one transaction as a new
// generation: every served entry the delta leaves alone is copied, the
// delta's new states replace or join them, its deletions are left out.
// Commit then flips the pointer with the cursor and the run record, as
// after a full sync, so readers see the old state or the new and a crash
// before the flip leaves the old one served (Open drops the remains). It
// counts as the transaction would: an ID both deleted and upserted counts
// as deleted and added.
func (s *Store) rewriteDelta(ctx context.Context, conn string, d *Delta, cursor []byte, run *Run, dryRun bool, rep *replay) (DeltaCounts, error) {
	counts := DeltaCounts{Unchanged: d.Unchanged}
	upserts := lastStates(d.Upserts)
	next := make(map[string]*Entry, len(upserts))
	for _, e := range upserts {
		e.Connector = conn
		e.Normalize()
		next[e.ID] = e
	}
	deleted := make(map[string]bool, len(d.Deletes))
	for _, id := range d.Deletes {
		deleted[id] = true
	}
	var g *Generation
	err := s.db.View(func(txn *badger.Txn) error {
		base, err := currentGen(txn, conn)
		if err != nil {
			return err
		}
		if base == 0 {
			return ErrNoGeneration
		}
		if !dryRun {
			if g, err = s.NewGeneration(conn); err != nil {
				return err
			}
			g.base, g.replay = base, rep
			g.delta = &Record{Connector: conn, Entries: upserts, Deletes: d.Deletes}
		}
		put := func(e *Entry) error {
			if g == nil {
				return nil
			}
			return g.Put(e)
		}
		prefix := dataKey(conn, base, tEntry)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			item := it.Item()
			id := string(item.Key()[len(prefix):])
			e, upserted := next[id]
			delete(next, id)
			switch {
			case deleted[id]:
				counts.Deleted++
				if !upserted {
					continue
				}
				counts.Added++
			case upserted:
				var h uint64
				if err := item.Value(func(v []byte) (err error) { h, err = storedHash(v); return err }); err != nil {
					return err
				}
				if h == e.Hash() {
					counts.Unchanged++
				} else {
					counts.Updated++
				}
			default:
				if err := item.Value(func(v []byte) (err error) { e, err = decodeEntry(conn, id, v); return err }); err != nil {
					return err
				}
			}
			if err := put(e); err != nil {
				return err
			}
		}
		for _, e := range upserts {
			if _, added := next[e.ID]; !added {
				continue
			}
			counts.Added++
			if err := put(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && g != nil {
		if run != nil && rep == nil {
			run.Added, run.Updated, run.Deleted, run.Unchanged = counts.Added, counts.Updated, counts.Deleted, counts.Unchanged
		}
		err = g.Commit(ctx, cursor, run)
	}
	if g != nil {
		g.Abort() // a no-op once committed
	}
	switch {
	case errors.Is(err, ErrNoGeneration), errors.Is(err, errApplied):
		return counts, err
	case err != nil:
		return counts, fmt.Errorf("cache: apply delta to %s as a new generation: %w", conn, err)
	}
	return counts, nil
}
