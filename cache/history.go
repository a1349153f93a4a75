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

// Run is the record of one sync run, kept as sync history.
type Run struct {
	Connector string    `json:"connector"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Trigger   string    `json:"trigger"` // cli, schedule, api, console
	Mode      string    `json:"mode"`    // full, incremental
	DryRun    bool      `json:"dry_run,omitempty"`
	Added     int       `json:"added"`
	Updated   int       `json:"updated"`
	Deleted   int       `json:"deleted"`
	Unchanged int       `json:"unchanged"`
	Read      int       `json:"read"` // entries read from the upstream
	// Method says how an incremental run read its changes (syncrepl,
	// dirsync, usn).
	Method string `json:"method,omitempty"`
	// DeletesPaused counts deletions held back because the connector was in
	// error on its previous run; they are applied by the next full run.
	DeletesPaused int           `json:"deletes_paused,omitempty"`
	Host          string        `json:"host,omitempty"`
	Duration      time.Duration `json:"duration"`
	Error         string        `json:"error,omitempty"`
	Blocked       string        `json:"blocked,omitempty"` // why safety stopped the run
}

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
func (s *Store) SaveCursor(conn string, cursor []byte, r *Run) error {
	err := s.db.Update(func(txn *badger.Txn) error {
		if cursor != nil {
			if err := txn.Set(cursorKey(conn), cursor); err != nil {
				return err
			}
		}
		if r != nil {
			return putRun(txn, r)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cache: save cursor of %s: %w", conn, err)
	}
	return nil
}

// Meta returns a small per-connector value stored by another package (the
// sync engine's state), nil when unset.
func (s *Store) Meta(kind, conn string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(metaKey("x", kind, conn))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cache: read %s of %s: %w", kind, conn, err)
	}
	return out, nil
}

// SetMeta stores a small per-connector value (see Meta).
func (s *Store) SetMeta(kind, conn string, v []byte) error {
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(metaKey("x", kind, conn), v) }); err != nil {
		return fmt.Errorf("cache: write %s of %s: %w", kind, conn, err)
	}
	return nil
}

// DeleteMetaKind removes every value stored under kind (see Meta) and
// returns how many there were.
func (s *Store) DeleteMetaKind(kind string) (int, error) {
	prefix := metaKey("x", kind, "")
	var keys [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	})
	if err == nil && len(keys) > 0 {
		wb := s.db.NewWriteBatch()
		for _, k := range keys {
			if err = wb.Delete(k); err != nil {
				break
			}
		}
		if err == nil {
			err = wb.Flush()
		} else {
			wb.Cancel()
		}
	}
	if err != nil {
		return 0, fmt.Errorf("cache: delete %s values: %w", kind, err)
	}
	return len(keys), nil
}

// Cursor returns the stored incremental-sync cursor of conn (nil if none).
func (s *Store) Cursor(conn string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(cursorKey(conn))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cache: read cursor of %s: %w", conn, err)
	}
	return out, nil
}
