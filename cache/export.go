package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/dirgate/dirgate/state"
)

// The Export functions enumerate, read-only, the state records this cache
// keeps (state.go, history.go), for `dirgate migrate --from-cache` to copy
// into another store through the state interfaces. Each calls fn once per
// record, in key order, and stops at fn's first error.

// ExportRefresh enumerates the stored refresh tokens by hash, expired ones
// included; a token stored without a family gets its own hash as family,
// as Refresh reads it.
func (s *Store) ExportRefresh(ctx context.Context, fn func(hash string, r state.Refresh) error) error {
	return exportJSON(ctx, s, refreshKind, func(hash string, r state.Refresh) error {
		if r.Family == "" {
			r.Family = hash
		}
		return fn(hash, r)
	})
}

// ExportRevokedFamilies enumerates the revoked refresh-token families and
// when each was revoked.
func (s *Store) ExportRevokedFamilies(ctx context.Context, fn func(family string, revoked time.Time) error) error {
	return exportJSON(ctx, s, familyKind, func(family string, f familyRecord) error { return fn(family, f.Revoked) })
}

// ExportVerifiers enumerates the offline verifiers by connector and
// account.
func (s *Store) ExportVerifiers(ctx context.Context, fn func(connector, id string, v state.Verifier) error) error {
	return exportJSON(ctx, s, verifierKind, func(name string, rec verifierRecord) error {
		connector, id, ok := bytes.Cut([]byte(name), []byte{0})
		if !ok || rec.V != 1 || rec.Hash == "" {
			return fmt.Errorf("cache: offline verifier %q: %w", name, state.ErrCorrupt)
		}
		return fn(string(connector), string(id), state.Verifier{Created: time.Unix(rec.Created, 0), Stamp: rec.Stamp, Hash: rec.Hash})
	})
}

// ExportEngineStates enumerates the sync engine's state by connector.
func (s *Store) ExportEngineStates(ctx context.Context, fn func(conn string, e state.Engine) error) error {
	return exportJSON(ctx, s, engineKind, fn)
}

// ExportRuns enumerates the sync history of every connector, each
// connector's runs oldest first.
func (s *Store) ExportRuns(ctx context.Context, fn func(r *state.Run) error) error {
	return s.eachValue(ctx, metaKey("run", ""), func(_ []byte, v []byte) error {
		var r state.Run
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("cache: sync history: %w: %v", state.ErrCorrupt, err)
		}
		return fn(&r)
	})
}

// exportJSON enumerates the JSON records of kind, decoded into T, by name.
// Empty values (a deleted record of an earlier release) are skipped.
func exportJSON[T any](ctx context.Context, s *Store, kind string, fn func(name string, v T) error) error {
	prefix := metaKey("x", kind, "")
	return s.eachValue(ctx, prefix, func(key, v []byte) error {
		if len(v) == 0 {
			return nil
		}
		name := string(key[len(prefix):])
		var rec T
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("cache: %s %q: %w: %v", kind, name, state.ErrCorrupt, err)
		}
		return fn(name, rec)
	})
}

// eachValue calls fn with the key and value of every key under prefix.
// The values are read in one read-only transaction, then handed to fn
// outside it, so fn may take its time (it writes to a network store).
func (s *Store) eachValue(ctx context.Context, prefix []byte, fn func(key, v []byte) error) error {
	var keys, vals [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			keys, vals = append(keys, it.Item().KeyCopy(nil)), append(vals, v)
		}
		return ctx.Err()
	})
	if err != nil {
		return fmt.Errorf("cache: read %q: %w", prefix, err)
	}
	for i := range keys {
		if err := fn(keys[i], vals[i]); err != nil {
			return err
		}
	}
	return nil
}
