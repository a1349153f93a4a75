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
	// prefix is the generation's key prefix; index is Put's scratch list
	// of an entry's index keys, records the chunk of index records being
	// filled (indexrecords.go) and chunks the number of chunks written.
	prefix  []byte
	index   []indexEntry
	records []byte
	chunks  uint32
	members []string
	// base, when set, is the served generation this one was derived from
	// (rewriteDelta): Commit refuses to replace any other.
	base uint64
	// replay is set when the generation applies a change-log record
	// (ApplyRecord); delta is the delta a rewrite applies, which Commit
	// publishes instead of the whole generation.
	replay *replay
	delta  *Record
	// streamed is set once the commit published the whole generation.
	streamed bool
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
		prefix: genPrefix(conn, gen),
		wb:     s.db.NewWriteBatch(),
		ids:    map[string]string{},
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
	g.index = g.index[:0]
	e.eachIndexKey(func(t byte, attr, val string) {
		g.index = append(g.index, indexEntry{t, attr, val})
	})
	if g.hot != nil {
		g.hot.addKeys(g.s, e.ID, g.index)
	}
	if g.records == nil {
		g.records = make([]byte, 0, indexChunkSize+4<<10)
	}
	g.records = appendIndexRecord(g.records, e.ID, g.index)
	if len(g.records) >= indexChunkSize {
		if err := g.writeRecords(); err != nil {
			return err
		}
	}
	g.members = g.members[:0]
	if e.Kind == KindGroup {
		for _, m := range e.Members {
			g.members = append(g.members, dnKeyOf(m))
		}
	}
	// Every key of the entry (and the DN key's value) is cut from one
	// allocation, and every Badger entry from another: Badger keeps both
	// until the batch is written, so they cannot be reused, but they need
	// not cost an allocation each.
	size := 2*(len(g.prefix)+1) + 2*len(e.ID) + len(key)
	for _, mk := range g.members {
		size += memberKeysSize(len(g.prefix), e.ID, mk)
	}
	kb := keyBuf{buf: make([]byte, 0, size), prefix: g.prefix}
	w := batchWriter{wb: g.wb, ents: make([]badger.Entry, 0, 2+2*len(g.members))}
	if err := w.set(kb.key(tEntry, e.ID), e.encode()); err != nil {
		return fmt.Errorf("cache: write %s/%s: %w", g.conn, e.ID, err)
	}
	if err := w.set(kb.key(tDN, key), kb.bytes(e.ID)); err != nil {
		return fmt.Errorf("cache: write %s/%s: %w", g.conn, e.ID, err)
	}
	for _, mk := range g.members {
		fwd, rev := kb.memberKeys(e.ID, mk)
		if err := w.set(fwd, nil); err != nil {
			return fmt.Errorf("cache: write members of %s/%s: %w", g.conn, e.ID, err)
		}
		if err := w.set(rev, nil); err != nil {
			return fmt.Errorf("cache: write members of %s/%s: %w", g.conn, e.ID, err)
		}
	}
	g.count++
	return nil
}

// writeRecords writes the chunk of index records filled so far. Badger
// keeps the value until the batch is written, so the next chunk is a new
// buffer.
func (g *Generation) writeRecords() error {
	if len(g.records) == 0 {
		return nil
	}
	if err := g.wb.Set(indexChunkKey(g.prefix, g.chunks), sealChunk(g.records)); err != nil {
		return fmt.Errorf("cache: write index of %s/%d: %w", g.conn, g.gen, err)
	}
	g.chunks++
	g.records = nil
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
	if err := g.writeRecords(); err != nil {
		g.Abort()
		return err
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
	txn := g.s.db.NewTransaction(true)
	defer txn.Discard()
	err := func() error {
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
			if err := putRun(txn, run); err != nil {
				return err
			}
		}
		return g.s.stamp(ctx, txn, g.replay, func() (*Record, error) { return g.record(ctx, txn, cursor, run) })
	}()
	if err == nil {
		g.s.visMu.Lock()
		if err = txn.Commit(); err != nil {
			g.s.visMu.Unlock()
		}
	}
	g.done = true
	if err != nil {
		g.dropSelf()
		return fmt.Errorf("cache: commit generation %s/%d: %w", g.conn, g.gen, redactValue(err))
	}
	if g.hot != nil {
		g.hot.filled(nil)
		g.s.setHot(g.conn, g.gen, g.hot)
	}
	err = g.s.loadServed()
	g.s.committed()
	g.s.visMu.Unlock()
	if err != nil {
		return err
	}
	if old != 0 {
		g.s.dropWhenUnread(g.conn, old)
	}
	if g.streamed || (g.replay != nil && g.delta == nil) {
		releaseMemory()
	}
	return nil
}

// record is the change-log record of the commit: the delta a rewrite
// applied, or the whole generation streamed from txn.
func (g *Generation) record(ctx context.Context, txn *badger.Txn, cursor []byte, run *Run) (*Record, error) {
	if g.delta != nil {
		r := *g.delta
		r.Cursor, r.Run = cursor, run
		return &r, nil
	}
	stream, err := generationStream(ctx, txn, g.conn, g.gen)
	if err != nil {
		return nil, err
	}
	g.streamed = true
	return &Record{Connector: g.conn, Base: true, stream: stream, Cursor: cursor, Run: run}, nil
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

// indexEntry is an index key as eachIndexKey passes it.
type indexEntry struct {
	t         byte
	attr, val string
}

// keyBuf cuts data keys of one generation from one buffer allocated with
// room for all of them. Each key's capacity ends with it, so an append to
// a key cannot overwrite the next.
type keyBuf struct {
	buf, prefix []byte
}

// key returns the data key of type t with parts joined by NUL, as dataKey
// lays it out.
func (k *keyBuf) key(t byte, parts ...string) []byte {
	start := len(k.buf)
	k.buf = append(append(k.buf, k.prefix...), t)
	for i, p := range parts {
		if i > 0 {
			k.buf = append(k.buf, 0)
		}
		k.buf = append(k.buf, p...)
	}
	return k.buf[start:len(k.buf):len(k.buf)]
}

// bytes returns a copy of s.
func (k *keyBuf) bytes(s string) []byte {
	start := len(k.buf)
	k.buf = append(k.buf, s...)
	return k.buf[start:len(k.buf):len(k.buf)]
}

// batchWriter sets keys in a write batch from Badger entries it cuts from
// one slice, made with room for all of an entry's keys. Badger keeps a
// pointer to each until the batch is written; an append past the room
// moves only the later ones.
type batchWriter struct {
	wb   *badger.WriteBatch
	ents []badger.Entry
}

func (w *batchWriter) set(key, val []byte) error {
	w.ents = append(w.ents, badger.Entry{Key: key, Value: val})
	return w.wb.SetEntry(&w.ents[len(w.ents)-1])
}
