package dirsync

import (
	"context"
	"fmt"

	"github.com/dirgate/dirgate/cache"
)

// maxFullDelta caps the changed entries a full run applies as a delta onto
// the served generation. Beyond it a new generation is cheaper: a delta of
// a few thousand entries no longer fits one transaction, and the cache
// would copy the served generation to apply it anyway.
const maxFullDelta = 1000

// deltaLimit is how many changed entries a full run over a cache of cached
// entries keeps as a delta: at most a tenth of them, and maxFullDelta.
func deltaLimit(cached int) int {
	return min(cached/10, maxFullDelta)
}

// fullWriter takes the entries of a full run. Writing every entry into a
// new generation costs as much as the first sync even when a handful
// changed, so while the changed entries are few it keeps only those, to
// apply as a delta onto the served generation; once they outnumber its
// limit it moves to a new generation, copying from the served one the
// unchanged entries it skipped (their hash equals the listed entry's).
type fullWriter struct {
	store *cache.Store
	conn  string
	limit int
	// off: a dry run writes nothing.
	off bool
	// cached is the served entries' hashes the run compared with: an
	// entry copied from the served generation must still have its hash.
	cached    map[string]uint64
	changed   []*cache.Entry
	unchanged []string // IDs skipped while buffering
	gen       *cache.Generation
}

// copyBatch is how many stand-ins of unchanged entries (cache.Unchanged)
// a fullWriter writing a generation gathers before it copies their
// entries from the served generation in one read.
const copyBatch = 1000

// put takes a listed entry; same says its hash equals the cached one.
func (w *fullWriter) put(ctx context.Context, en *cache.Entry, same bool) error {
	switch {
	case w.off:
		return nil
	case w.gen != nil && en.IsUnchanged():
		w.unchanged = append(w.unchanged, en.ID)
		if len(w.unchanged) < copyBatch {
			return nil
		}
		return w.finish(ctx)
	case w.gen != nil:
		return w.gen.Put(en)
	case same:
		w.unchanged = append(w.unchanged, en.ID)
		return nil
	}
	w.changed = append(w.changed, en)
	if len(w.changed) <= w.limit {
		return nil
	}
	return w.spill(ctx)
}

// spill moves to a new generation: the skipped unchanged entries are
// copied from the served one, the buffered changed ones written.
func (w *fullWriter) spill(ctx context.Context) error {
	gen, err := w.store.NewGeneration(w.conn)
	if err != nil {
		return fmt.Errorf("sync %s: %w", w.conn, err)
	}
	w.gen = gen
	if err := w.finish(ctx); err != nil {
		return err
	}
	for _, en := range w.changed {
		if err := gen.Put(en); err != nil {
			return err
		}
	}
	w.changed = nil
	return nil
}

// finish copies into the generation the unchanged entries gathered so
// far: those skipped before it existed, and stand-ins passed since.
func (w *fullWriter) finish(ctx context.Context) error {
	if w.gen == nil {
		return nil
	}
	err := w.copyServed(ctx, w.unchanged)
	w.unchanged = w.unchanged[:0]
	return err
}

// abort drops a generation that was not committed.
func (w *fullWriter) abort() {
	if w.gen != nil {
		w.gen.Abort() // a no-op once committed
	}
}

// copyServed copies the served entries with the given IDs into the
// generation; each must still have the hash the run compared with, or the
// served generation changed under the run.
func (w *fullWriter) copyServed(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	return w.store.View(ctx, func(v *cache.View) error {
		for _, id := range ids {
			en, err := v.Get(w.conn, id)
			if err != nil {
				return fmt.Errorf("sync %s: keep %s: %w", w.conn, id, err)
			}
			if h, ok := w.cached[id]; !ok || h != en.Hash() {
				return fmt.Errorf("sync %s: keep %s: the served entry changed during the run", w.conn, id)
			}
			if err := w.gen.Put(en); err != nil {
				return err
			}
		}
		return nil
	})
}

// planIDs returns the stable IDs of items.
func planIDs(items []PlanItem) []string {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	return ids
}
