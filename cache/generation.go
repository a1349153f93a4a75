package cache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Generation is a connector's next state being written beside the served
// one. Nothing in it is visible to readers until Commit flips the pointer.
type Generation struct {
	s     *Store
	conn  string
	gen   uint64
	wb    *badger.WriteBatch
	ids   map[string]string // dn key -> id, to refuse two entries with one DN
	count int
	done  bool
	hot   *hotIndex // nil unless the store keeps hot indexes
	// base, when set, is the served generation this one was derived from
	// (rewriteDelta): Commit refuses to replace any other.
	base uint64
}

// errBaseChanged means the served generation changed while a generation
// derived from it was written; committing would lose that change.
var errBaseChanged = errors.New("the served generation changed while the new one was written")

// NewGeneration registers and returns an empty generation for conn.
func (s *Store) NewGeneration(conn string) (*Generation, error) {
	gen := uint64(time.Now().UnixNano())
	err := s.db.Update(func(txn *badger.Txn) error {
		cur, err := currentGen(txn, conn)
		if err != nil {
			return err
		}
		if gen <= cur {
			gen = cur + 1
		}
		// Registered before any data is written, so a crash at any later
		// point leaves a marker that Open uses to drop the remains.
		return txn.Set(genMarkKey(conn, gen), nil)
	})
	if err != nil {
		return nil, fmt.Errorf("cache: new generation for %s: %w", conn, err)
	}
	g := &Generation{
		s: s, conn: conn, gen: gen,
		wb:  s.db.NewWriteBatch(),
		ids: map[string]string{},
	}
	if s.hotEnabled {
		g.hot = newHotIndex(1024)
	}
	return g, nil
}

// Put writes e (its Connector is set to the generation's) with its indexes.
func (g *Generation) Put(e *Entry) error {
	if g.done {
		return errors.New("cache: put on a finished generation")
	}
	if e.ID == "" {
		return fmt.Errorf("cache: entry %q has no stable ID", e.DN)
	}
	if e.partial {
		return fmt.Errorf("cache: entry %q was read without some attributes and cannot be written", e.DN)
	}
	e.Connector = g.conn
	e.Normalize()
	key := dnKeyOf(e.DN)
	e.DNKey = key
	if other, dup := g.ids[key]; dup && other != e.ID {
		return fmt.Errorf("cache: %s: two entries named %q (ids %s and %s)", g.conn, e.DN, other, e.ID)
	}
	g.ids[key] = e.ID
	sets := [][2][]byte{
		{dataKey(g.conn, g.gen, tEntry, e.ID), e.encode()},
		{dataKey(g.conn, g.gen, tDN, key), []byte(e.ID)},
	}
	e.eachIndexKey(func(t byte, parts ...string) {
		sets = append(sets, [2][]byte{dataKey(g.conn, g.gen, t, append(parts, e.ID)...), nil})
		if g.hot != nil {
			g.hot.add(g.s.indexHash(t, parts...), e.ID)
		}
	})
	for _, kv := range sets {
		if err := g.wb.Set(kv[0], kv[1]); err != nil {
			return fmt.Errorf("cache: write %s/%s: %w", g.conn, e.ID, err)
		}
	}
	if err := putMembers(g.conn, g.gen, e, g.wb.Set); err != nil {
		return fmt.Errorf("cache: write members of %s/%s: %w", g.conn, e.ID, err)
	}
	g.count++
	return nil
}

// Len returns the number of entries put so far.
func (g *Generation) Len() int { return g.count }

// Commit makes the generation the served one in a single transaction that
// also stores cursor (when non-nil) and the run record, and finally drops
// the previous generation.
func (g *Generation) Commit(ctx context.Context, cursor []byte, run *Run) error {
	if g.done {
		return errors.New("cache: commit of a finished generation")
	}
	if err := g.wb.Set(dataKey(g.conn, g.gen, tLayout), []byte{layoutVersion}); err != nil {
		g.Abort()
		return fmt.Errorf("cache: write generation %s/%d: %w", g.conn, g.gen, err)
	}
	if err := g.wb.Flush(); err != nil {
		g.Abort()
		return fmt.Errorf("cache: flush generation %s/%d: %w", g.conn, g.gen, err)
	}
	if err := ctx.Err(); err != nil {
		g.Abort()
		return err
	}
	g.s.writeMu.Lock()
	defer g.s.writeMu.Unlock()
	var old uint64
	err := g.s.db.Update(func(txn *badger.Txn) error {
		var err error
		if old, err = currentGen(txn, g.conn); err != nil {
			return err
		}
		if g.base != 0 && old != g.base {
			return errBaseChanged
		}
		if err := txn.Set(curKey(g.conn), binary.BigEndian.AppendUint64(nil, g.gen)); err != nil {
			return err
		}
		if cursor != nil {
			if err := txn.Set(cursorKey(g.conn), cursor); err != nil {
				return err
			}
		}
		if run != nil {
			return putRun(txn, run)
		}
		return nil
	})
	g.done = true
	if err != nil {
		g.dropSelf()
		return fmt.Errorf("cache: commit generation %s/%d: %w", g.conn, g.gen, err)
	}
	if g.hot != nil {
		g.hot.ready.Store(true)
		g.s.setHot(g.conn, g.gen, g.hot)
	}
	err = g.s.loadServed()
	g.s.committed()
	if err != nil {
		return err
	}
	if old != 0 {
		g.s.dropWhenUnread(g.conn, old)
	}
	return nil
}

// Abort discards the generation; the served state is untouched.
func (g *Generation) Abort() {
	if g.done {
		return
	}
	g.done = true
	g.wb.Cancel()
	g.dropSelf()
}

func (g *Generation) dropSelf() {
	if err := g.s.dropGeneration(g.conn, g.gen); err != nil {
		g.s.log.Warn("could not drop aborted generation", "connector", g.conn, "err", err)
	}
}
