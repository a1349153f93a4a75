package pgstate

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dirgate/dirgate/state"
)

var _ state.Agents = (*Store)(nil)

// PutEnrollToken implements state.Agents.
func (s *Store) PutEnrollToken(ctx context.Context, hash string, t state.EnrollToken) error {
	_, err := s.exec(ctx, "store enrollment token",
		`INSERT INTO agent_token (hash, connector, created, expires) VALUES ($1, $2, $3, $4)`,
		hash, t.Connector, t.Created, t.Expires)
	return err
}

// EnrollToken implements state.Agents.
func (s *Store) EnrollToken(ctx context.Context, hash string, now time.Time) (state.EnrollToken, error) {
	t, err := readToken(ctx, s.pool, hash)
	if err != nil {
		return t, err
	}
	return t, t.Redeemable(now)
}

func readToken(ctx context.Context, q querier, hash string) (state.EnrollToken, error) {
	var t state.EnrollToken
	var used *time.Time
	err := q.QueryRow(ctx, `SELECT connector, created, expires, used, used_by FROM agent_token WHERE hash = $1`, hash).
		Scan(&t.Connector, &t.Created, &t.Expires, &used, &t.UsedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, state.ErrTokenUnknown
	}
	if err != nil {
		return t, wrap("read enrollment token", err)
	}
	if used != nil {
		t.Used = *used
	}
	return t, nil
}

// RedeemEnrollToken implements state.Agents: the UPDATE that spends the
// token holds its row lock until the agent is inserted and the
// transaction commits; a concurrent redemption waits for it, then finds
// the token used.
func (s *Store) RedeemEnrollToken(ctx context.Context, hash string, a state.Agent, now time.Time) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return wrap("redeem enrollment token", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit, a no-op
	tag, err := tx.Exec(ctx, `UPDATE agent_token SET used = $2, used_by = $3
		WHERE hash = $1 AND used IS NULL AND expires > $2 AND connector = $4`, hash, now, a.ID, a.Connector)
	if err != nil {
		return wrap("redeem enrollment token", err)
	}
	if tag.RowsAffected() == 0 {
		// Why not: the row as this transaction now sees it.
		t, err := readToken(ctx, tx, hash)
		if err != nil {
			return err
		}
		if err := t.Redeemable(now); err != nil {
			return err
		}
		return state.ErrTokenConnector
	}
	if _, err := tx.Exec(ctx, `INSERT INTO agent (id, connector, name, fingerprint, serial, enrolled, cert_expires) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		a.ID, a.Connector, a.Name, a.Fingerprint, a.Serial, a.Enrolled, nullTime(a.CertExpires)); err != nil {
		return wrap("store agent", err)
	}
	return wrap("redeem enrollment token", tx.Commit(ctx))
}

const agentColumns = `id, connector, name, fingerprint, serial, enrolled, revoked, cert_expires, coalesce(previous_fingerprint, '')`

func scanAgent(row pgx.Row) (state.Agent, error) {
	var a state.Agent
	var revoked, expires *time.Time
	if err := row.Scan(&a.ID, &a.Connector, &a.Name, &a.Fingerprint, &a.Serial, &a.Enrolled, &revoked, &expires,
		&a.PreviousFingerprint); err != nil {
		return a, err
	}
	if revoked != nil {
		a.Revoked = *revoked
	}
	if expires != nil {
		a.CertExpires = *expires
	}
	return a, nil
}

// Agent implements state.Agents.
func (s *Store) Agent(ctx context.Context, id string) (state.Agent, error) {
	a, err := scanAgent(s.pool.QueryRow(ctx, `SELECT `+agentColumns+` FROM agent WHERE id = $1`, id))
	if err != nil {
		return state.Agent{}, notFound("read agent", err)
	}
	return a, nil
}

// Agents implements state.Agents.
func (s *Store) Agents(ctx context.Context) ([]state.Agent, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+agentColumns+` FROM agent ORDER BY id`)
	if err != nil {
		return nil, wrap("list agents", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (state.Agent, error) { return scanAgent(r) })
	return out, wrap("list agents", err)
}

// RevokeAgent implements state.Agents.
func (s *Store) RevokeAgent(ctx context.Context, id string, at time.Time) error {
	n, err := s.exec(ctx, "revoke agent", `UPDATE agent SET revoked = coalesce(revoked, $2) WHERE id = $1`, id, at)
	if err == nil && n == 0 {
		return state.ErrNotFound
	}
	return err
}

// RenewAgentCert implements state.Agents: one UPDATE whose WHERE clause
// is the check, so that of two renewals racing with one certificate the
// second finds it replaced.
func (s *Store) RenewAgentCert(ctx context.Context, id, presented string, renewed state.Agent) error {
	n, err := s.exec(ctx, "renew agent certificate", `UPDATE agent
		SET previous_fingerprint = $2, fingerprint = $3, serial = $4, cert_expires = $5
		WHERE id = $1 AND revoked IS NULL AND $2 <> '' AND fingerprint = $2`,
		id, presented, renewed.Fingerprint, renewed.Serial, nullTime(renewed.CertExpires))
	if err != nil || n > 0 {
		return err
	}
	if _, err := s.Agent(ctx, id); err != nil {
		return err
	}
	return state.ErrCertSuperseded
}

// nullTime stores a zero time as NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
