package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/dirgate/dirgate/state"
)

// The state stores keep the records of earlier releases where those
// releases put them: under metaKey("x", kind, name), JSON encoded, so an
// existing cache is read unchanged.
const (
	refreshKind  = "oidc-refresh"        // name: hash of the token
	familyKind   = "oidc-refresh-family" // name: family; a record means revoked
	keysKind     = "oidc-keys"           // name: keysName
	keysName     = "signing"
	verifierKind = "offline-verifier" // name: connector \x00 id; empty means none
	engineKind   = "engine"           // name: connector
	planKind     = "held-plan"        // name: connector
)

// stateMu serialises the read-check-write operations of the state stores
// (rotating a refresh token, publishing keys) in this process: Badger runs
// without conflict detection (see Open), so a transaction alone would not
// make them atomic. They are rare and short, so one lock for every store
// costs nothing.
var stateMu sync.Mutex

// MaxThrottleKeys bounds each table of the throttle counters.
const MaxThrottleKeys = 100_000

// States returns the state stores kept in this cache. Codes, revoked
// access tokens and throttle counters live in memory (state.Ephemeral,
// state.MemoryThrottle), as in earlier releases: they last minutes, and
// writing each sign-in's code or failure to disk would buy nothing a
// restart needs. Each call returns fresh in-memory tables.
func (s *Store) States() state.Stores {
	st := &stateStore{s: s, Ephemeral: state.NewEphemeral()}
	return state.Stores{Grants: st, Keys: st, Verifiers: st, Sync: st, Throttle: state.NewMemoryThrottle(MaxThrottleKeys), SignIns: state.NewMemorySignIns()}
}

type stateStore struct {
	s *Store
	*state.Ephemeral
}

// getMeta returns the value stored under kind and name, nil when none or
// empty.
func (s *Store) getMeta(kind, name string) ([]byte, error) {
	out, err := s.value(metaKey("x", kind, name))
	if err != nil {
		return nil, fmt.Errorf("cache: read %s: %w", kind, err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// value returns a copy of the value stored under key, nil when none.
func (s *Store) value(key []byte) ([]byte, error) {
	var out []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	return out, err
}

func (s *Store) setMeta(kind, name string, v []byte) error {
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(metaKey("x", kind, name), v) }); err != nil {
		return fmt.Errorf("cache: write %s: %w", kind, err)
	}
	return nil
}

func (s *Store) deleteMeta(kind, name string) error {
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Delete(metaKey("x", kind, name)) }); err != nil {
		return fmt.Errorf("cache: delete %s: %w", kind, err)
	}
	return nil
}

func (s *Store) putMetaJSON(kind, name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cache: encode %s: %w", kind, err)
	}
	return s.setMeta(kind, name, b)
}

// sweepMeta deletes the values of kind for which drop returns true and
// returns how many it deleted.
func (s *Store) sweepMeta(ctx context.Context, kind string, drop func(v []byte) bool) (int, error) {
	prefix := metaKey("x", kind, "")
	var keys [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := it.Item().Value(func(v []byte) error {
				if drop(v) {
					keys = append(keys, it.Item().KeyCopy(nil))
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return ctx.Err()
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

// PutRefresh implements state.Grants.
func (st *stateStore) PutRefresh(_ context.Context, hash string, r state.Refresh) error {
	return st.s.putMetaJSON(refreshKind, hash, r)
}

// Refresh implements state.Grants.
func (st *stateStore) Refresh(_ context.Context, hash string, now time.Time) (state.Refresh, error) {
	var r state.Refresh
	b, err := st.s.getMeta(refreshKind, hash)
	if err != nil {
		return r, err
	}
	if b == nil {
		return r, state.ErrNotFound
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("cache: refresh token: %w: %v", state.ErrCorrupt, err)
	}
	if r.Family == "" {
		r.Family = hash
	}
	if now.After(r.Expires) {
		return state.Refresh{}, state.ErrNotFound
	}
	revoked, err := st.s.getMeta(familyKind, r.Family)
	if err != nil {
		return state.Refresh{}, err
	}
	if revoked != nil {
		return state.Refresh{}, state.ErrNotFound
	}
	return r, nil
}

// RotateRefresh implements state.Grants.
func (st *stateStore) RotateRefresh(ctx context.Context, hash, client string, now time.Time) (state.Refresh, state.RefreshOutcome, error) {
	stateMu.Lock()
	defer stateMu.Unlock()
	r, err := st.Refresh(ctx, hash, now)
	switch {
	case errors.Is(err, state.ErrNotFound):
		return state.Refresh{}, state.RefreshInvalid, nil
	case err != nil:
		return state.Refresh{}, state.RefreshInvalid, err
	case r.ClientID != client:
		return state.Refresh{}, state.RefreshOtherClient, nil
	case r.Rotated:
		return r, state.RefreshReused, st.RevokeFamily(ctx, r.Family, now)
	}
	r.Rotated = true
	if err := st.s.putMetaJSON(refreshKind, hash, r); err != nil {
		return state.Refresh{}, state.RefreshInvalid, err
	}
	return r, state.RefreshLive, nil
}

// familyRecord is the value of a revoked family.
type familyRecord struct {
	Revoked time.Time `json:"revoked"`
}

// RevokeFamily implements state.Grants.
func (st *stateStore) RevokeFamily(_ context.Context, family string, now time.Time) error {
	if family == "" {
		return nil
	}
	return st.s.putMetaJSON(familyKind, family, familyRecord{now})
}

// SweepExpired implements state.Grants.
func (st *stateStore) SweepExpired(ctx context.Context, now time.Time, familyTTL time.Duration) (int, error) {
	n := st.Sweep(now)
	refresh, err := st.s.sweepMeta(ctx, refreshKind, func(v []byte) bool {
		var r state.Refresh
		// An unreadable record can never be used: drop it too.
		return json.Unmarshal(v, &r) != nil || now.After(r.Expires)
	})
	if err != nil {
		return n, err
	}
	families, err := st.s.sweepMeta(ctx, familyKind, func(v []byte) bool {
		var f familyRecord
		return json.Unmarshal(v, &f) != nil || now.Sub(f.Revoked) > familyTTL
	})
	return n + refresh + families, err
}

// SigningKeys implements state.Keys.
func (st *stateStore) SigningKeys(context.Context) ([]byte, error) {
	return st.s.getMeta(keysKind, keysName)
}

// PublishSigningKeys implements state.Keys.
func (st *stateStore) PublishSigningKeys(ctx context.Context, prev, next []byte) error {
	stateMu.Lock()
	defer stateMu.Unlock()
	cur, err := st.SigningKeys(ctx)
	if err != nil {
		return err
	}
	if !bytes.Equal(cur, prev) {
		return fmt.Errorf("cache: signing keys: %w", state.ErrConflict)
	}
	return st.s.setMeta(keysKind, keysName, next)
}

// verifierRecord is a verifier as earlier releases stored it.
type verifierRecord struct {
	V       int    `json:"v"`
	Created int64  `json:"created"` // Unix seconds
	Stamp   string `json:"stamp"`
	Hash    string `json:"hash"`
}

func verifierName(connector, id string) string { return connector + "\x00" + id }

// Verifier implements state.Verifiers.
func (st *stateStore) Verifier(_ context.Context, connector, id string) (state.Verifier, error) {
	b, err := st.s.getMeta(verifierKind, verifierName(connector, id))
	if err != nil {
		return state.Verifier{}, err
	}
	if b == nil {
		return state.Verifier{}, state.ErrNotFound
	}
	var rec verifierRecord
	if err := json.Unmarshal(b, &rec); err != nil || rec.V != 1 || rec.Hash == "" {
		return state.Verifier{}, fmt.Errorf("cache: offline verifier: %w", state.ErrCorrupt)
	}
	return state.Verifier{Created: time.Unix(rec.Created, 0), Stamp: rec.Stamp, Hash: rec.Hash}, nil
}

// PutVerifier implements state.Verifiers.
func (st *stateStore) PutVerifier(_ context.Context, connector, id string, v state.Verifier) error {
	return st.s.putMetaJSON(verifierKind, verifierName(connector, id),
		verifierRecord{V: 1, Created: v.Created.Unix(), Stamp: v.Stamp, Hash: v.Hash})
}

// DeleteVerifier implements state.Verifiers.
func (st *stateStore) DeleteVerifier(_ context.Context, connector, id string) error {
	return st.s.deleteMeta(verifierKind, verifierName(connector, id))
}

// DeleteAllVerifiers implements state.Verifiers.
func (st *stateStore) DeleteAllVerifiers(ctx context.Context) (int, error) {
	return st.s.sweepMeta(ctx, verifierKind, func([]byte) bool { return true })
}

// EngineState implements state.Sync.
func (st *stateStore) EngineState(_ context.Context, conn string) (state.Engine, error) {
	var e state.Engine
	b, err := st.s.getMeta(engineKind, conn)
	if err != nil || b == nil {
		return e, err
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("cache: engine state of %s: %w: %v", conn, state.ErrCorrupt, err)
	}
	return e, nil
}

// SaveEngineState implements state.Sync.
func (st *stateStore) SaveEngineState(_ context.Context, conn string, e state.Engine) error {
	return st.s.putMetaJSON(engineKind, conn, e)
}

// Cursor implements state.Sync.
func (st *stateStore) Cursor(_ context.Context, conn string) ([]byte, error) {
	return st.s.Cursor(conn)
}

// RecordRun implements state.Sync.
func (st *stateStore) RecordRun(_ context.Context, r *state.Run) error { return st.s.RecordRun(r) }

// Runs implements state.Sync.
func (st *stateStore) Runs(ctx context.Context, conn string, limit int) ([]state.Run, error) {
	return st.s.Runs(ctx, conn, limit)
}

// HeldPlan implements state.Sync.
func (st *stateStore) HeldPlan(_ context.Context, conn string) ([]byte, error) {
	return st.s.getMeta(planKind, conn)
}

// HoldPlan implements state.Sync.
func (st *stateStore) HoldPlan(_ context.Context, conn string, plan []byte) error {
	if plan == nil {
		return st.s.deleteMeta(planKind, conn)
	}
	return st.s.setMeta(planKind, conn, plan)
}
