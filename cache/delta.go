package cache

import (
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Delta is an incremental change set for one connector: entries to add or
// replace whole, and stable IDs to delete. It describes the state the
// changes end in: the order of the entries does not matter, except that of
// an ID upserted twice the later state counts, and an ID both deleted and
// upserted ends upserted.
type Delta struct {
	Upserts []*Entry
	Deletes []string
	// Unchanged is how many entries the caller found unchanged and left
	// out (a full run applied as a delta): they are counted as unchanged.
	Unchanged int
}

// DeltaCounts says what applying a delta did.
type DeltaCounts struct {
	Added, Updated, Deleted, Unchanged int
}

// ErrNoGeneration means the connector has no served state to change
// incrementally: a full sync must come first.
var ErrNoGeneration = errors.New("cache: connector has no synced state")

// errTxnTooBig means the delta does not fit in one transaction; ApplyDelta
// then writes it as a new generation.
var errTxnTooBig = errors.New("cache: incremental change set too large for one transaction")

// ApplyDelta changes the served state of conn atomically (readers see all
// of the delta or none of it), together with the new cursor and the run
// record. It refuses a delta after which two entries would have one DN.
// With dryRun it only counts.
//
// A delta is applied in a single transaction to the served generation. One
// too large for a transaction (a Badger transaction is capped at a fraction
// of the memtable: about 20,000 keys) is written as a new generation
// instead, copied from the served one with the delta's changes (see
// rewriteDelta): slower than a transaction, but it reads nothing from the
// upstream, so a large change set no longer costs a full sync.
func (s *Store) ApplyDelta(ctx context.Context, conn string, d *Delta, cursor []byte, run *Run, dryRun bool) (DeltaCounts, error) {
	return s.applyDelta(ctx, conn, d, cursor, run, dryRun, nil)
}

// applyDelta is ApplyDelta, replaying a change-log record when rep is set:
// then the run record keeps the leader's counts.
func (s *Store) applyDelta(ctx context.Context, conn string, d *Delta, cursor []byte, run *Run, dryRun bool, rep *replay) (DeltaCounts, error) {
	counts, err := s.applyInTxn(ctx, conn, d, cursor, run, dryRun, rep)
	if errors.Is(err, errTxnTooBig) {
		s.log.Info("incremental change set too large for one transaction, writing it as a new generation",
			"connector", conn, "upserts", len(d.Upserts), "deletes", len(d.Deletes))
		return s.rewriteDelta(ctx, conn, d, cursor, run, dryRun, rep)
	}
	return counts, err
}

func (s *Store) applyInTxn(ctx context.Context, conn string, d *Delta, cursor []byte, run *Run, dryRun bool, rep *replay) (DeltaCounts, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	counts := DeltaCounts{Unchanged: d.Unchanged}
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	gen, err := currentGen(txn, conn)
	if err != nil {
		return counts, fmt.Errorf("cache: %s: %w", conn, err)
	}
	if gen == 0 {
		return counts, ErrNoGeneration
	}
	s.indexMu.RLock()
	defer s.indexMu.RUnlock()
	w := &deltaWriter{txn: txn, conn: conn, gen: gen, s: s, hot: s.hotFor(conn, gen)}
	// Two passes, so the result depends only on the state the delta
	// describes, not on the order the source listed it in: first every
	// deleted or changed entry gives up its old DN, then the
	// new states take theirs. Done in one pass, an entry added at the DN
	// that another one leaves in the same delta (a rename and a re-add, a
	// swap) would be refused whenever it came first, and so would every
	// later run from the same cursor.
	var deleted []string
	// The states deleted here, whose index keys stay stored: an entry the
	// delta also upserts writes only the keys it gains over them.
	gone := map[string]*Entry{}
	for _, id := range d.Deletes {
		if err := ctx.Err(); err != nil {
			return counts, err
		}
		old, err := w.get(id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return counts, w.wrap(err)
		}
		counts.Deleted++
		deleted = append(deleted, id)
		gone[id] = old
		if err := w.unindex(old, true); err != nil {
			return counts, w.wrap(err)
		}
	}
	changed, olds, err := w.release(ctx, lastStates(d.Upserts), gone, &counts)
	if err != nil {
		return counts, err
	}
	for i, e := range changed {
		if err := ctx.Err(); err != nil {
			return counts, err
		}
		// Every old DN is released: a DN still taken is held at the end by
		// another entry too, a real conflict.
		if err := w.index(e, olds[i]); err != nil {
			return counts, w.wrap(err)
		}
	}
	if dryRun {
		return counts, nil
	}
	if cursor != nil {
		if err := txn.Set(cursorKey(conn), cursor); err != nil {
			return counts, w.wrap(err)
		}
	}
	if run != nil {
		if rep == nil {
			run.Added, run.Updated, run.Deleted, run.Unchanged = counts.Added, counts.Updated, counts.Deleted, counts.Unchanged
		}
		if err := putRun(txn, run); err != nil {
			return counts, w.wrap(err)
		}
	}
	// Only what changed is published: the replicas hold the same state.
	err = s.stamp(ctx, txn, rep, func() (*Record, error) {
		return &Record{Connector: conn, Entries: changed, Deletes: deleted, Cursor: cursor, Run: run}, nil
	})
	if err != nil {
		if errors.Is(err, errApplied) {
			return counts, err
		}
		return counts, w.wrap(err)
	}
	s.visMu.Lock()
	defer s.visMu.Unlock()
	if err := txn.Commit(); err != nil {
		return counts, w.wrap(err)
	}
	s.committed()
	return counts, nil
}

// lastStates returns the upserts with only the last one of each ID, the
// state the entry reached, in the order they were listed.
func lastStates(upserts []*Entry) []*Entry {
	last := make(map[string]int, len(upserts))
	for i, e := range upserts {
		last[e.ID] = i
	}
	out := make([]*Entry, 0, len(last))
	for i, e := range upserts {
		if last[e.ID] == i {
			out = append(out, e)
		}
	}
	return out
}

type deltaWriter struct {
	txn  *badger.Txn
	conn string
	gen  uint64
	s    *Store
	hot  *hotIndex // the generation's in-memory index, if any: keys are added before the commit
}

func (w *deltaWriter) wrap(err error) error {
	if errors.Is(err, badger.ErrTxnTooBig) {
		return errTxnTooBig
	}
	return fmt.Errorf("cache: apply delta to %s: %w", w.conn, err)
}

func (w *deltaWriter) get(id string) (*Entry, error) {
	item, err := w.txn.Get(dataKey(w.conn, w.gen, tEntry, id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var e *Entry
	err = item.Value(func(v []byte) error {
		var derr error
		e, derr = decodeEntry(w.conn, id, v)
		return derr
	})
	return e, err
}

// unindex gives up e's DN and membership links. Its address and attribute
// index keys stay until the next full generation (indexrecords.go).
func (w *deltaWriter) unindex(e *Entry, deleting bool) error {
	if err := w.txn.Delete(dataKey(w.conn, w.gen, tDN, dnKeyOf(e.DN))); err != nil {
		return err
	}
	if e.Kind == KindGroup {
		if err := w.unlinkMembers(e.ID); err != nil {
			return err
		}
	}
	if deleting {
		// The groups that list its DN keep their keys: the member values
		// name whatever entry holds the DN next.
		return w.txn.Delete(dataKey(w.conn, w.gen, tEntry, e.ID))
	}
	return nil
}

// release compares each upsert with the stored entry, counting it, and
// releases the old DN of those that changed. It returns the entries
// to index, the added and the changed ones, and beside each its stored
// state: for an added one, the state gone holds for it (deleted earlier in
// the delta), if any.
func (w *deltaWriter) release(ctx context.Context, upserts []*Entry, gone map[string]*Entry, counts *DeltaCounts) (changed, olds []*Entry, err error) {
	for _, e := range upserts {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		e.Connector = w.conn
		e.Normalize()
		old, err := w.get(e.ID)
		switch {
		case errors.Is(err, ErrNotFound):
			counts.Added++
			old = gone[e.ID]
		case err != nil:
			return nil, nil, w.wrap(err)
		case old.Hash() == e.Hash():
			counts.Unchanged++
			continue
		default:
			counts.Updated++
			if err := w.unindex(old, false); err != nil {
				return nil, nil, w.wrap(err)
			}
		}
		changed, olds = append(changed, e), append(olds, old)
	}
	return changed, olds, nil
}

func (w *deltaWriter) unlinkMembers(gid string) error {
	members, err := w.suffixes(dataKey(w.conn, w.gen, tMember, gid, ""))
	if err != nil {
		return err
	}
	for _, mk := range members {
		fwd, rev := memberKeys(w.conn, w.gen, gid, mk)
		if err := w.txn.Delete(fwd); err != nil {
			return err
		}
		if err := w.txn.Delete(rev); err != nil {
			return err
		}
	}
	return nil
}

// index writes e, which replaces old (nil if e is new): its entry, DN and
// membership keys, and the index keys old did not hold (those it held are
// stored already and never removed; indexrecords.go).
func (w *deltaWriter) index(e *Entry, old *Entry) error {
	if e.partial {
		return fmt.Errorf("entry %q was read without some attributes and cannot be written", e.DN)
	}
	e.DNKey = dnKeyOf(e.DN)
	dk := dataKey(w.conn, w.gen, tDN, e.DNKey)
	if item, err := w.txn.Get(dk); err == nil {
		other, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		if string(other) != e.ID {
			return fmt.Errorf("two entries named %q (ids %s and %s)", e.DN, other, e.ID)
		}
	} else if !errors.Is(err, badger.ErrKeyNotFound) {
		return err
	}
	if err := w.txn.Set(dataKey(w.conn, w.gen, tEntry, e.ID), e.encode()); err != nil {
		return err
	}
	if err := w.txn.Set(dk, []byte(e.ID)); err != nil {
		return err
	}
	held := map[indexEntry]bool{}
	if old != nil {
		old.eachIndexKey(func(t byte, attr, val string) { held[indexEntry{t, attr, val}] = true })
	}
	var err error
	e.eachIndexKey(func(t byte, attr, val string) {
		if held[indexEntry{t, attr, val}] {
			return
		}
		if err == nil {
			err = w.txn.Set(dataKey(w.conn, w.gen, t, indexKeyParts(attr, val, e.ID)...), nil)
		}
		if w.hot != nil {
			w.hot.add(w.s.keyHash(t, attr, val), e.ID)
		}
	})
	if err != nil {
		return err
	}
	return putMembers(w.conn, w.gen, e, w.txn.Set)
}

func (w *deltaWriter) suffixes(prefix []byte) ([]string, error) {
	it := w.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	var out []string
	for it.Rewind(); it.Valid(); it.Next() {
		out = append(out, string(it.Item().Key()[len(prefix):]))
	}
	return out, nil
}
