// Package pgstate keeps the state stores of package state in PostgreSQL,
// shared by the replicas of a cluster (pgx connection pool). Every
// operation that must be atomic across replicas is one statement or one
// transaction holding the row it decides on: a code is spent by a locked
// read and update, a refresh token is rotated under its row lock, the
// signing key set is published by compare-and-set under its row lock, and a
// throttle failure is one upsert. Expiry is decided with the time the
// caller passes, as the interfaces of package state specify. The signing
// key set is stored encrypted (AES-256-GCM) with a key the caller gives.
// Migrate creates and upgrades the schema.
package pgstate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dirgate/dirgate/state"
)

// Store implements every store of package state on one pool.
type Store struct {
	pool *pgxpool.Pool
	seal sealer
}

// New returns the stores kept in the pool's database (schema from the
// pool's search path, brought up to date by Migrate). key encrypts the
// signing key set at rest and must be 32 bytes (AES-256); every replica
// must be given the same key.
func New(pool *pgxpool.Pool, key []byte) (*Store, error) {
	s, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	return &Store{pool: pool, seal: s}, nil
}

// Stores returns s as each of the stores.
func (s *Store) Stores() state.Stores {
	return state.Stores{Grants: s, Keys: s, Verifiers: s, Throttle: s, Sync: s, SignIns: s}
}

// wrap adds the operation to a database error.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("pgstate: %s: %w", op, err)
}

// exec runs one statement and returns how many rows it touched.
func (s *Store) exec(ctx context.Context, op, sql string, args ...any) (int64, error) {
	tag, err := s.pool.Exec(ctx, sql, args...)
	if err != nil {
		return 0, wrap(op, err)
	}
	return tag.RowsAffected(), nil
}

// notFound turns "no row" into state.ErrNotFound.
func notFound(op string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return state.ErrNotFound
	}
	return wrap(op, err)
}

// micros is d as a bigint of microseconds, to multiply an interval by.
func micros(d time.Duration) int64 { return d.Microseconds() }
