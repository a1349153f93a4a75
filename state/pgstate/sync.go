package pgstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/dirgate/dirgate/cluster/lease"
	"github.com/dirgate/dirgate/state"
)

// syncExec runs a write of the sync state. When ctx carries a leader
// term's fence (lease.WithFence) the write runs in the fence's
// transaction: a paused ex-leader's run, resumed after a successor took
// over, must not overwrite the successor's engine state, history or held
// plans; it gets lease.ErrFenced.
func (s *Store) syncExec(ctx context.Context, op, sql string, args ...any) error {
	f, ok := lease.FenceFrom(ctx)
	if !ok {
		_, err := s.exec(ctx, op, sql, args...)
		return err
	}
	return wrap(op, f.Do(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, sql, args...)
		return err
	}))
}

// EngineState implements state.Sync.
func (s *Store) EngineState(ctx context.Context, conn string) (state.Engine, error) {
	var e state.Engine
	err := s.pool.QueryRow(ctx, `SELECT last_full, need_full, last_error, scope FROM sync_engine WHERE connector = $1`, conn).
		Scan(&e.LastFull, &e.NeedFull, &e.LastError, &e.Scope)
	if errors.Is(err, pgx.ErrNoRows) {
		return state.Engine{}, nil
	}
	return e, wrap("read engine state of "+conn, err)
}

// SaveEngineState implements state.Sync.
func (s *Store) SaveEngineState(ctx context.Context, conn string, e state.Engine) error {
	return s.syncExec(ctx, "store engine state of "+conn, `INSERT INTO sync_engine (connector, last_full, need_full, last_error, scope)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (connector) DO UPDATE SET last_full = EXCLUDED.last_full,
		need_full = EXCLUDED.need_full, last_error = EXCLUDED.last_error, scope = EXCLUDED.scope`,
		conn, e.LastFull, e.NeedFull, e.LastError, e.Scope)
}

// Cursor implements state.Sync.
func (s *Store) Cursor(ctx context.Context, conn string) ([]byte, error) {
	return s.connectorBytes(ctx, "read cursor of "+conn, `SELECT cursor FROM sync_cursor WHERE connector = $1`, conn)
}

// connectorBytes reads the one bytea column query selects for conn, nil
// when conn has no row.
func (s *Store) connectorBytes(ctx context.Context, op, query, conn string) ([]byte, error) {
	var b []byte
	err := s.pool.QueryRow(ctx, query, conn).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return b, wrap(op, err)
}

// RecordRun implements state.Sync; a run with the same connector and start
// replaces the earlier record, as in the Badger store.
func (s *Store) RecordRun(ctx context.Context, r *state.Run) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("pgstate: encode run: %w", err)
	}
	return s.syncExec(ctx, "record run of "+r.Connector, `INSERT INTO sync_run (connector, start, run) VALUES ($1, $2, $3)
		ON CONFLICT (connector, start) DO UPDATE SET run = EXCLUDED.run`, r.Connector, r.Start, b)
}

// Runs implements state.Sync.
func (s *Store) Runs(ctx context.Context, conn string, limit int) ([]state.Run, error) {
	rows, err := s.pool.Query(ctx, `SELECT run FROM sync_run WHERE connector = $1 ORDER BY start DESC LIMIT $2`, conn, limit)
	if err != nil {
		return nil, wrap("read runs of "+conn, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (state.Run, error) {
		var b []byte
		var r state.Run
		if err := row.Scan(&b); err != nil {
			return r, err
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return r, fmt.Errorf("%w: %v", state.ErrCorrupt, err)
		}
		return r, nil
	})
	return out, wrap("read runs of "+conn, err)
}

// HeldPlan implements state.Sync.
func (s *Store) HeldPlan(ctx context.Context, conn string) ([]byte, error) {
	return s.connectorBytes(ctx, "read held plan of "+conn, `SELECT plan FROM sync_plan WHERE connector = $1`, conn)
}

// HoldPlan implements state.Sync.
func (s *Store) HoldPlan(ctx context.Context, conn string, plan []byte) error {
	if plan == nil {
		return s.syncExec(ctx, "drop held plan of "+conn, `DELETE FROM sync_plan WHERE connector = $1`, conn)
	}
	return s.syncExec(ctx, "hold plan of "+conn, `INSERT INTO sync_plan (connector, plan) VALUES ($1, $2)
		ON CONFLICT (connector) DO UPDATE SET plan = EXCLUDED.plan`, conn, plan)
}
