package cache

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/dirgate/dirgate/state"
)

// Run is the record of one sync run, kept as sync history.
type Run = state.Run

func cursorKey(conn string) []byte { return metaKey("cursor", conn) }

func runKey(conn string, start time.Time) []byte {
	return binary.BigEndian.AppendUint64(metaKey("run", conn, ""), uint64(start.UnixNano()))
}

func putRun(txn *badger.Txn, r *Run) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return txn.Set(runKey(r.Connector, r.Start), b)
}

// RecordRun stores a run that did not commit a generation (failed, blocked
// or dry run).
func (s *Store) RecordRun(r *Run) error {
	if err := s.db.Update(func(txn *badger.Txn) error { return putRun(txn, r) }); err != nil {
		return fmt.Errorf("cache: record run of %s: %w", r.Connector, err)
	}
	return nil
}

// Runs returns up to limit most recent runs of conn, newest first.
func (s *Store) Runs(ctx context.Context, conn string, limit int) ([]Run, error) {
	var out []Run
	prefix := metaKey("run", conn, "")
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true, PrefetchValues: true})
		defer it.Close()
		// Reverse iteration must start past the last key with the prefix.
		for it.Seek(append(append([]byte{}, prefix...), 0xff)); it.Valid() && len(out) < limit; it.Next() {
			var r Run
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &r) }); err != nil {
				return err
			}
			out = append(out, r)
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("cache: read runs of %s: %w", conn, err)
	}
	return out, nil
}

// SaveCursor stores conn's cursor (when non-nil) and the run record in one
// transaction, for a run that changed no entry.
// With a publisher set, it is published as a record without entries,
// under ctx (the run's), so a publish ends with the run that made it.
func (s *Store) SaveCursor(ctx context.Context, conn string, cursor []byte, r *Run) error {
	return s.saveCursor(ctx, conn, cursor, r, nil)
}

func (s *Store) saveCursor(ctx context.Context, conn string, cursor []byte, r *Run, rep *replay) error {
	// Under writeMu like every commit, so positions commit in order.
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err := s.db.Update(func(txn *badger.Txn) error {
		if cursor != nil {
			if err := txn.Set(cursorKey(conn), cursor); err != nil {
				return err
			}
		}
		if r != nil {
			if err := putRun(txn, r); err != nil {
				return err
			}
		}
		return s.stamp(ctx, txn, rep, func() (*Record, error) {
			return &Record{Connector: conn, Cursor: cursor, Run: r}, nil
		})
	})
	if errors.Is(err, errApplied) {
		return err
	}
	if err != nil {
		return fmt.Errorf("cache: save cursor of %s: %w", conn, err)
	}
	return nil
}

// Cursor returns the stored incremental-sync cursor of conn (nil if none).
func (s *Store) Cursor(conn string) ([]byte, error) {
	out, err := s.value(cursorKey(conn))
	if err != nil {
		return nil, fmt.Errorf("cache: read cursor of %s: %w", conn, err)
	}
	return out, nil
}
