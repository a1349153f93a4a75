package cache

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Record is one committed change of one connector, as a cluster leader
// publishes it and the other replicas apply it: a whole generation (Base)
// or a delta.
type Record struct {
	Connector string
	Base      bool     // Entries replace the connector's whole state
	Entries   []*Entry // Base: every entry; delta: upserts (final states)
	Deletes   []string // delta only: stable IDs
	Cursor    []byte   // the incremental cursor committed with it (nil: unchanged)
	Run       *Run     // the run record committed with it (nil: none)
	Time      time.Time
	// After is the publishing cache's position when it publishes (not
	// encoded): the log refuses a record that does not follow it
	// directly, so a cache that misses a record (a local commit that
	// failed after its publish) cannot publish over the gap.
	After uint64
}

// Publisher hands the cache's commits to the other replicas. The cache
// calls Publish inside its commit, under its write lock, after the change
// is validated and before the local transaction commits: an error aborts
// the commit with nothing changed locally, and the returned sequence
// number is stored as the cache's position in that same transaction.
// Publishes of one store are thus serialised and commit locally in the
// order of their sequence numbers.
//
// A Base record holds every entry of the connector in memory while it is
// published (about 1 KiB an entry).
type Publisher interface {
	Publish(ctx context.Context, r *Record) (seq uint64, err error)
}

// publisherBox lets an interface value live in an atomic.Pointer.
type publisherBox struct{ p Publisher }

// SetPublisher makes every later commit publish through p; nil (the
// default) is single-process mode, where commits publish nothing.
func (s *Store) SetPublisher(p Publisher) {
	if p == nil {
		s.publisher.Store(nil)
		return
	}
	s.publisher.Store(&publisherBox{p})
}

// replay is a record a replica applies: its sequence number and the time
// the leader committed it, stored as the position with the change.
type replay struct {
	seq uint64
	at  time.Time
}

// errApplied means a replayed record is not newer than the position: it
// was applied (or published) already.
var errApplied = errors.New("cache: change-log record already applied")

func positionKey() []byte { return metaKey("changelog", "position") }

// Position returns the sequence number of the last change-log record this
// cache applied or published, and the time the leader committed it; 0 for
// a cache that never took part in a cluster.
func (s *Store) Position() (seq uint64, at time.Time, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		seq, at, err = readPosition(txn)
		return err
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("cache: read change-log position: %w", err)
	}
	return seq, at, nil
}

func readPosition(txn *badger.Txn) (uint64, time.Time, error) {
	item, err := txn.Get(positionKey())
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, err
	}
	var seq uint64
	var at time.Time
	err = item.Value(func(v []byte) error {
		if len(v) != 16 {
			return errCorrupt
		}
		seq = binary.BigEndian.Uint64(v)
		at = time.Unix(0, int64(binary.BigEndian.Uint64(v[8:]))).UTC()
		return nil
	})
	return seq, at, err
}

func setPosition(txn *badger.Txn, seq uint64, at time.Time) error {
	v := binary.BigEndian.AppendUint64(nil, seq)
	return txn.Set(positionKey(), binary.BigEndian.AppendUint64(v, uint64(at.UnixNano())))
}

// stamp ends every commit inside its local transaction, after the change
// is written to txn and before txn commits. A replayed record must be newer
// than the position and becomes it (errApplied otherwise). Otherwise, with
// a publisher set, the record that build describes is published and its
// sequence number becomes the position; without one nothing happens, and
// build is not called.
func (s *Store) stamp(ctx context.Context, txn *badger.Txn, rep *replay, build func() (*Record, error)) error {
	if rep != nil {
		pos, _, err := readPosition(txn)
		if err != nil {
			return err
		}
		if rep.seq <= pos {
			return errApplied
		}
		return setPosition(txn, rep.seq, rep.at)
	}
	box := s.publisher.Load()
	if box == nil {
		return nil
	}
	r, err := build()
	if err != nil {
		return err
	}
	if r.After, _, err = readPosition(txn); err != nil {
		return err
	}
	r.Time = time.Now().UTC()
	seq, err := box.p.Publish(ctx, r)
	if err != nil {
		return fmt.Errorf("publish change of %s: %w", r.Connector, err)
	}
	return setPosition(txn, seq, r.Time)
}

// ApplyRecord applies a record published by the leader as sequence number
// seq, through the same code as the leader's commit (indexes, membership
// links and the on-premises duplicate hiding are derived here), storing seq
// as the position in the same transaction: a replica that crashes resumes
// after the last record it committed. A record not newer than Position is
// skipped, so applying one twice is harmless. Nothing is published.
func (s *Store) ApplyRecord(ctx context.Context, r *Record, seq uint64) error {
	pos, _, err := s.Position()
	if err != nil {
		return err
	}
	if seq <= pos {
		return nil
	}
	rep := &replay{seq: seq, at: r.Time}
	switch {
	case r.Base:
		err = s.applyBase(ctx, r, rep)
	case len(r.Entries) == 0 && len(r.Deletes) == 0:
		err = s.saveCursor(ctx, r.Connector, r.Cursor, r.Run, rep)
	default:
		d := &Delta{Upserts: r.Entries, Deletes: r.Deletes}
		_, err = s.applyDelta(ctx, r.Connector, d, r.Cursor, r.Run, false, rep)
	}
	if errors.Is(err, errApplied) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cache: apply change-log record %d: %w", seq, err)
	}
	return nil
}

func (s *Store) applyBase(ctx context.Context, r *Record, rep *replay) error {
	g, err := s.NewGeneration(r.Connector)
	if err != nil {
		return err
	}
	defer g.Abort() // a no-op once committed
	g.replay = rep
	for _, e := range r.Entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := g.Put(e); err != nil {
			return err
		}
	}
	return g.Commit(ctx, r.Cursor, r.Run)
}

// Connectors returns the connectors with served state, for snapshots.
func (s *Store) Connectors() ([]string, error) {
	if s.db.IsClosed() {
		return nil, badger.ErrDBClosed
	}
	return append([]string(nil), s.served.Load().conns...), nil
}

// SnapshotRecord returns a Base record of conn's served state with its
// cursor: what a replica needs to serve conn without the records before.
func (s *Store) SnapshotRecord(ctx context.Context, conn string) (*Record, error) {
	var r *Record
	err := s.db.View(func(txn *badger.Txn) (err error) {
		r, err = snapshotIn(ctx, txn, conn)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cache: snapshot of %s: %w", conn, err)
	}
	r.Time = time.Now().UTC()
	return r, nil
}

func snapshotIn(ctx context.Context, txn *badger.Txn, conn string) (*Record, error) {
	gen, err := currentGen(txn, conn)
	if err != nil {
		return nil, err
	}
	if gen == 0 {
		return nil, ErrNoGeneration
	}
	r := &Record{Connector: conn, Base: true}
	if r.Entries, err = generationEntries(ctx, txn, conn, gen); err != nil {
		return nil, err
	}
	r.Cursor, err = valueIn(txn, cursorKey(conn))
	return r, err
}

// ErrNoPublisher means PublishSnapshot was called without a publisher.
var ErrNoPublisher = errors.New("cache: no change-log publisher set")

// PublishSnapshot publishes conn's served state as a Base record, for the
// compaction of the change log, and stores its seq as the position. It
// holds the write lock throughout, so no commit of conn can come between
// the state read and its sequence number.
func (s *Store) PublishSnapshot(ctx context.Context, conn string) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.publisher.Load() == nil {
		return ErrNoPublisher
	}
	err := s.db.Update(func(txn *badger.Txn) error {
		return s.stamp(ctx, txn, nil, func() (*Record, error) { return snapshotIn(ctx, txn, conn) })
	})
	if err != nil {
		return fmt.Errorf("cache: publish snapshot of %s: %w", conn, err)
	}
	return nil
}

// generationEntries reads every entry of a generation.
func generationEntries(ctx context.Context, txn *badger.Txn, conn string, gen uint64) ([]*Entry, error) {
	prefix := dataKey(conn, gen, tEntry)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	var out []*Entry
	for it.Rewind(); it.Valid(); it.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		item := it.Item()
		id := string(item.Key()[len(prefix):])
		err := item.Value(func(v []byte) error {
			e, err := decodeEntry(conn, id, v)
			out = append(out, e)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// valueIn returns a copy of key's value in txn, nil when absent.
func valueIn(txn *badger.Txn, key []byte) ([]byte, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

// Record encoding: recVersion, flags, connector, time (Unix ns), then the
// cursor and the run (JSON, as in the history) when flagged, the entries
// (ID and the cache's own entry encoding) and the deleted IDs.
const (
	recVersion = 1

	recBase   = 1 << 0
	recCursor = 1 << 1
	recRun    = 1 << 2
)

// errBadRecord reports a change-log record that cannot be decoded.
var errBadRecord = errors.New("cache: corrupt change-log record")

// EncodeRecord serialises r compactly; DecodeRecord reads it back.
func EncodeRecord(r *Record) ([]byte, error) {
	var flags byte
	if r.Base {
		flags |= recBase
	}
	if r.Cursor != nil {
		flags |= recCursor
	}
	var run []byte
	if r.Run != nil {
		flags |= recRun
		var err error
		if run, err = json.Marshal(r.Run); err != nil {
			return nil, fmt.Errorf("cache: encode run of %s: %w", r.Connector, err)
		}
	}
	b := make([]byte, 0, 64+len(r.Cursor)+len(run)+300*len(r.Entries))
	b = append(b, recVersion, flags)
	b = appendString(b, r.Connector)
	b = binary.AppendVarint(b, r.Time.UnixNano())
	if r.Cursor != nil {
		b = appendString(b, string(r.Cursor))
	}
	if r.Run != nil {
		b = appendString(b, string(run))
	}
	b = binary.AppendUvarint(b, uint64(len(r.Entries)))
	for _, e := range r.Entries {
		if e.partial {
			return nil, fmt.Errorf("cache: entry %q was read without some attributes and cannot be published", e.DN)
		}
		e.Normalize()
		b = appendString(b, e.ID)
		b = appendString(b, string(e.encode()))
	}
	b = appendStrings(b, r.Deletes)
	return b, nil
}

// DecodeRecord parses a record written by EncodeRecord. Entry hashes are
// recomputed where they are written, not taken from the record.
func DecodeRecord(b []byte) (*Record, error) {
	if len(b) < 2 || b[0] != recVersion {
		return nil, errBadRecord
	}
	flags := b[1]
	d := decoder{b: b[2:]}
	r := &Record{Base: flags&recBase != 0}
	r.Connector = d.string()
	ns, k := binary.Varint(d.b)
	if k <= 0 {
		return nil, errBadRecord
	}
	d.b = d.b[k:]
	r.Time = time.Unix(0, ns).UTC()
	if flags&recCursor != 0 {
		r.Cursor = append([]byte{}, d.bytes()...)
	}
	if flags&recRun != 0 {
		run := d.bytes()
		if d.err == nil {
			r.Run = new(Run)
			if err := json.Unmarshal(run, r.Run); err != nil {
				return nil, fmt.Errorf("%w: run: %v", errBadRecord, err)
			}
		}
	}
	// Every entry takes at least two bytes, which bounds the allocation.
	if n := d.uvarint(); d.err == nil && n <= uint64(len(d.b))/2 {
		r.Entries = make([]*Entry, 0, n)
		for range n {
			id := d.string()
			v := d.bytes()
			if d.err != nil {
				break
			}
			e, err := decodeEntry(r.Connector, id, v)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", errBadRecord, err)
			}
			e.hashed = false
			r.Entries = append(r.Entries, e)
		}
	} else if d.err == nil {
		d.err = errCorrupt
	}
	if n := d.uvarint(); d.err == nil && n <= uint64(len(d.b)) {
		for range n {
			r.Deletes = append(r.Deletes, d.string())
		}
	} else if d.err == nil {
		d.err = errCorrupt
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, errBadRecord
	}
	return r, nil
}
