package pgstate

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dirgate/dirgate/state"
)

// counter scans failures, last and locked_until (NULL when not locked).
func counter(row pgx.Row) (state.Counter, error) {
	var c state.Counter
	var until *time.Time
	if err := row.Scan(&c.Failures, &c.Last, &until); err != nil {
		return state.Counter{}, err
	}
	if until != nil {
		c.Until = *until
	}
	return c, nil
}

// Counter implements state.Throttle.
func (s *Store) Counter(ctx context.Context, table, key string, now time.Time, l state.Limit) (state.Counter, error) {
	c, err := counter(s.pool.QueryRow(ctx, `SELECT cur.f, t.last, cur.u FROM throttle t,
		throttle_current(t.failures, t.last, t.locked_until, $3, $4::bigint * interval '1 microsecond') cur
		WHERE t.tbl = $1 AND t.key = $2`, table, []byte(key), now, micros(l.Window)))
	if errors.Is(err, pgx.ErrNoRows) || err == nil && c.Failures == 0 && !c.Locked() {
		return state.Counter{}, nil
	}
	return c, wrap("read throttle counter", err)
}

// Fail implements state.Throttle: one upsert, so failures counted at once
// by several replicas queue on the row and are all counted.
func (s *Store) Fail(ctx context.Context, table, key string, now time.Time, l state.Limit) (state.Counter, error) {
	c, err := counter(s.pool.QueryRow(ctx, `INSERT INTO throttle AS t (tbl, key, failures, last, locked_until)
		VALUES ($1, $2, 1, $3, CASE WHEN $4::int > 0 AND 1 >= $4::int THEN $3::timestamptz + $6::bigint * interval '1 microsecond' END)
		ON CONFLICT (tbl, key) DO UPDATE SET (failures, last, locked_until) = (
			SELECT cur.f + 1, $3::timestamptz,
				CASE WHEN cur.u IS NULL AND $4::int > 0 AND cur.f + 1 >= $4::int
					THEN $3::timestamptz + $6::bigint * interval '1 microsecond' ELSE cur.u END
			FROM throttle_current(t.failures, t.last, t.locked_until, $3, $5::bigint * interval '1 microsecond') cur)
		RETURNING failures, last, locked_until`,
		table, []byte(key), now, l.Failures, micros(l.Window), micros(l.Lockout)))
	return c, wrap("count throttle failure", err)
}

// Reset implements state.Throttle.
func (s *Store) Reset(ctx context.Context, table, key string) error {
	_, err := s.exec(ctx, "reset throttle counter", `DELETE FROM throttle WHERE tbl = $1 AND key = $2`, table, []byte(key))
	return err
}

// Reserve implements state.Throttle in one call of throttle_reserve, which
// reads the counter and the reservations of the key and adds one under the
// key's advisory lock: replicas reserving at once queue on that lock.
func (s *Store) Reserve(ctx context.Context, table, key, id string, now, until time.Time, l state.Limit) (state.Counter, bool, error) {
	var c state.Counter
	var last, locked *time.Time
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT o_failures, o_last, o_until, o_ok
		FROM throttle_reserve($1, $2, $3, $4, $5, $6::bigint * interval '1 microsecond', $7)`,
		table, []byte(key), id, now, until, micros(l.Window), l.Failures).Scan(&c.Failures, &last, &locked, &ok)
	if err != nil {
		return state.Counter{}, false, wrap("reserve throttle attempt", err)
	}
	if last != nil {
		c.Last = *last
	}
	if locked != nil {
		c.Until = *locked
	}
	return c, ok, nil
}

// Release implements state.Throttle.
func (s *Store) Release(ctx context.Context, table, key, id string) error {
	_, err := s.exec(ctx, "release throttle attempt", `DELETE FROM throttle_inflight WHERE tbl = $1 AND key = $2 AND id = $3`, table, []byte(key), id)
	return err
}

// SweepThrottle implements state.ThrottleSweeper: only Reset deletes a
// counter otherwise, so failures on many keys (a spray over logins or
// client addresses) would stay in the table for good. It removes the
// counters that count for nothing as of now (throttle_current's rule: a
// lock whose time is up; failures, unlocked, older than window) and the
// reservations whose bound passed (their replica died or lost the
// database before releasing them).
func (s *Store) SweepThrottle(ctx context.Context, now time.Time, window time.Duration) (int, error) {
	counters, err := s.exec(ctx, "sweep throttle counters", `DELETE FROM throttle
		WHERE CASE WHEN locked_until IS NOT NULL THEN locked_until <= $1
		           ELSE $1 - last > $2::bigint * interval '1 microsecond' END`, now, micros(window))
	if err != nil {
		return 0, err
	}
	held, err := s.exec(ctx, "sweep throttle reservations", `DELETE FROM throttle_inflight WHERE until <= $1`, now)
	return int(counters + held), err
}
