package cache

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/debug"
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
	// Log is the identity of the change log the record is in (not
	// encoded). The cache hands the publisher the identity of the log its
	// position is in ("" for a cache that never took part); the publisher
	// refuses another log's and sets it to its own on success. A follower
	// sets it on the records it applies. The cache stores it with the
	// position, so that a position is never read against another log (a
	// database restored from a backup, or replaced).
	Log string
	// stream, when set, holds the entries in place of Entries (see
	// recordstream.go).
	stream *entryStream
}

// Publisher hands the cache's commits to the other replicas. The cache
// calls Publish inside its commit, under its write lock, after the change
// is validated and before the local transaction commits: an error aborts
// the commit with nothing changed locally, and the returned sequence
// number is stored as the cache's position in that same transaction.
// Publishes of one store are thus serialised and commit locally in the
// order of their sequence numbers.
//
// The entries of a Base record the cache publishes are not in Entries but
// streamed (Record.Streamed) from the generation being committed: the
// publisher writes the record with WriteRecord (or EncodeRecord) during
// Publish, after which they can no longer be read.
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
	seq  uint64
	at   time.Time
	log  string // the log's identity, "" to keep the stored one
	conn string
	base bool
}

// errApplied means a replayed record is not newer than the position: it
// was applied (or published) already.
var errApplied = errors.New("cache: change-log record already applied")

func positionKey() []byte { return metaKey("changelog", "position") }

// waitingKey marks a connector whose state a follower cannot trust until a
// Base record of it arrives (see ApplyRecord and ResetLog).
func waitingKey(conn string) []byte { return metaKey("changelog", "waiting", conn) }

var waitingMark = []byte{1}

// Position returns the sequence number of the last change-log record this
// cache applied or published, and the time the leader committed it; 0 for
// a cache that never took part in a cluster.
func (s *Store) Position() (seq uint64, at time.Time, err error) {
	_, seq, at, err = s.LogPosition()
	return seq, at, err
}

// LogPosition is Position with the identity of the log it is a position
// in: "" for a cache that never took part in a cluster, or whose position
// an older release stored.
func (s *Store) LogPosition() (log string, seq uint64, at time.Time, err error) {
	// Read once the commit that stored it is visible to views: a caller
	// that reads a position and then opens a view sees that state.
	s.visMu.RLock()
	defer s.visMu.RUnlock()
	err = s.db.View(func(txn *badger.Txn) error {
		p, err := readPosition(txn)
		log, seq, at = p.log, p.seq, p.at
		return err
	})
	if err != nil {
		return "", 0, time.Time{}, fmt.Errorf("cache: read change-log position: %w", err)
	}
	return log, seq, at, nil
}

// position is what positionKey holds: seq and at (16 bytes), then the
// log's identity.
type position struct {
	seq uint64
	at  time.Time
	log string
}

func readPosition(txn *badger.Txn) (position, error) {
	var p position
	item, err := txn.Get(positionKey())
	if errors.Is(err, badger.ErrKeyNotFound) {
		return p, nil
	}
	if err != nil {
		return p, err
	}
	err = item.Value(func(v []byte) error {
		if len(v) < 16 {
			return errCorrupt
		}
		p.seq = binary.BigEndian.Uint64(v)
		p.at = time.Unix(0, int64(binary.BigEndian.Uint64(v[8:]))).UTC()
		p.log = string(v[16:])
		return nil
	})
	return p, err
}

func setPosition(txn *badger.Txn, p position) error {
	v := binary.BigEndian.AppendUint64(nil, p.seq)
	v = binary.BigEndian.AppendUint64(v, uint64(p.at.UnixNano()))
	return txn.Set(positionKey(), append(v, p.log...))
}

// ResetLog makes the cache follow the log identified by log. With reset,
// the cache's position belongs to another history (another database, or
// one restored from a backup): the position becomes 0, so the follower
// loads the log's snapshot, and every served connector waits for a Base
// record of it (its state, from the other history, takes no delta); it is
// served meanwhile. Without reset the position is kept and only named (a
// cache that never took part, or whose position an older release stored).
func (s *Store) ResetLog(log string, reset bool) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err := s.db.Update(func(txn *badger.Txn) error {
		p, err := readPosition(txn)
		if err != nil {
			return err
		}
		if reset {
			p = position{}
			for _, c := range s.served.Load().conns {
				if err := txn.Set(waitingKey(c), waitingMark); err != nil {
					return err
				}
			}
		}
		p.log = log
		return setPosition(txn, p)
	})
	if err != nil {
		return fmt.Errorf("cache: reset the change-log position: %w", err)
	}
	return nil
}

// Waiting returns the connectors whose state waits for a Base record:
// their deltas were skipped (see ApplyRecord), so the cache is not caught
// up with the log whatever its position.
func (s *Store) Waiting() ([]string, error) {
	var out []string
	prefix := waitingKey("")
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			out = append(out, string(it.Item().Key()[len(prefix):]))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cache: read the connectors waiting for a change-log base: %w", err)
	}
	return out, nil
}

// stamp ends every commit inside its local transaction, after the change
// is written to txn and before txn commits. A replayed record must be newer
// than the position and becomes it (errApplied otherwise). Otherwise, with
// a publisher set, the record that build describes is published and its
// sequence number becomes the position; without one nothing happens, and
// build is not called. A Base record ends its connector's wait for one.
func (s *Store) stamp(ctx context.Context, txn *badger.Txn, rep *replay, build func() (*Record, error)) error {
	box := s.publisher.Load()
	if rep == nil && box == nil {
		return nil
	}
	pos, err := readPosition(txn)
	if err != nil {
		return err
	}
	if rep != nil {
		if rep.seq <= pos.seq {
			return errApplied
		}
		if rep.base {
			if err := txn.Delete(waitingKey(rep.conn)); err != nil {
				return err
			}
		}
		next := position{seq: rep.seq, at: rep.at, log: rep.log}
		if next.log == "" {
			next.log = pos.log
		}
		return setPosition(txn, next)
	}
	r, err := build()
	if err != nil {
		return err
	}
	r.After, r.Log = pos.seq, pos.log
	r.Time = time.Now().UTC()
	seq, err := box.p.Publish(ctx, r)
	if err != nil {
		return fmt.Errorf("publish change of %s: %w", r.Connector, err)
	}
	if r.Base {
		if err := txn.Delete(waitingKey(r.Connector)); err != nil {
			return err
		}
	}
	return setPosition(txn, position{seq: seq, at: r.Time, log: r.Log})
}

// ApplyRecord applies a record published by the leader as sequence number
// seq, through the same code as the leader's commit (indexes, membership
// links and the on-premises duplicate hiding are derived here), storing seq
// (and r.Log, when set) as the position in the same transaction: a replica
// that crashes resumes after the last record it committed. A record not
// newer than Position is skipped, so applying one twice is harmless.
// Nothing is published.
//
// A record other than a Base for a connector this cache has no state of,
// or whose state waits for a Base (see ResetLog), cannot apply: it is
// skipped (its seq becomes the position) and the connector waits for its
// next Base record (Waiting) with a warning logged.
func (s *Store) ApplyRecord(ctx context.Context, r *Record, seq uint64) error {
	pos, _, err := s.Position()
	if err != nil {
		return err
	}
	if seq <= pos {
		return nil
	}
	rep := &replay{seq: seq, at: r.Time, log: r.Log, conn: r.Connector, base: r.Base}
	var waiting []byte
	if !r.Base {
		if waiting, err = s.value(waitingKey(r.Connector)); err != nil {
			return fmt.Errorf("cache: apply change-log record %d: %w", seq, err)
		}
	}
	switch {
	case r.Base:
		err = s.applyBase(ctx, r, rep)
	case waiting != nil:
		err = s.skip(r, rep)
	case len(r.Entries) == 0 && len(r.Deletes) == 0:
		err = s.saveCursor(ctx, r.Connector, r.Cursor, r.Run, rep)
	default:
		d := &Delta{Upserts: r.Entries, Deletes: r.Deletes}
		_, err = s.applyDelta(ctx, r.Connector, d, r.Cursor, r.Run, false, rep)
		if errors.Is(err, ErrNoGeneration) {
			err = s.skip(r, rep)
		}
	}
	if errors.Is(err, errApplied) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cache: apply change-log record %d: %w", seq, err)
	}
	return nil
}

// skip takes rep's seq as the position without applying r, and marks r's
// connector as waiting for a Base record.
func (s *Store) skip(r *Record, rep *replay) error {
	s.log.Warn("change-log record for a connector without a trusted state skipped; it waits for its next whole state",
		"connector", r.Connector, "seq", rep.seq)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set(waitingKey(r.Connector), waitingMark); err != nil {
			return err
		}
		return s.stamp(context.Background(), txn, rep, nil)
	})
}

func (s *Store) applyBase(ctx context.Context, r *Record, rep *replay) error {
	g, err := s.NewGeneration(r.Connector)
	if err != nil {
		return err
	}
	defer g.Abort() // a no-op once committed
	g.replay = rep
	err = r.eachEntry(func(e *Entry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return g.Put(e)
	})
	if err != nil {
		return err
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
		if r, err = snapshotIn(ctx, txn, conn); err != nil {
			return err
		}
		return r.collect()
	})
	if err != nil {
		return nil, fmt.Errorf("cache: snapshot of %s: %w", conn, err)
	}
	r.Time = time.Now().UTC()
	return r, nil
}

// snapshotIn returns a Base record of conn's served state in txn, its
// entries streamed from txn.
func snapshotIn(ctx context.Context, txn *badger.Txn, conn string) (*Record, error) {
	gen, err := currentGen(txn, conn)
	if err != nil {
		return nil, err
	}
	if gen == 0 {
		return nil, ErrNoGeneration
	}
	r := &Record{Connector: conn, Base: true}
	if r.stream, err = generationStream(ctx, txn, conn, gen); err != nil {
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
	releaseMemory()
	return nil
}

// releaseMemory returns to the operating system, once a Base record was
// published or applied, the memory its writes took (Badger's memtables and
// write batches, the record's buffers): the runtime would otherwise keep it
// for minutes, and the process's peak would stay its footprint.
func releaseMemory() { debug.FreeOSMemory() }

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
	var b bytes.Buffer
	if err := WriteRecord(&b, r); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// DecodeRecord parses a record written by EncodeRecord, entries included.
// Entry hashes are recomputed where they are written, not taken from the
// record.
func DecodeRecord(b []byte) (*Record, error) {
	r, err := ReadRecord(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	if err := r.collect(); err != nil {
		return nil, err
	}
	return r, nil
}
