package pgstate

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dirgate/dirgate/state"
)

// codeGrace keeps a code past its expiry so that a late replay is still
// recognised (the in-memory store's rule).
const codeGrace = time.Minute

// PutCode implements state.Grants. Unlike the in-memory table it sets no
// bound (ErrFull is never returned): codes live on disk and SweepExpired
// removes them.
func (s *Store) PutCode(ctx context.Context, hash string, c state.Code, _ time.Time) error {
	_, err := s.exec(ctx, "store code", `INSERT INTO oidc_code (hash, client_id, redirect_uri, nonce, scope, challenge,
		connector, account_id, auth_time, expires, family, access_jti, access_exp)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (hash) DO NOTHING`,
		hash, c.ClientID, c.RedirectURI, c.Nonce, nonNil(c.Scope), c.Challenge, c.Connector, c.ID, c.AuthTime,
		c.Expires, c.Family, c.AccessJTI, c.AccessExp)
	return err
}

// RedeemCode implements state.Grants: the row lock of the CTE makes
// concurrent redemptions queue, and each one after the first reads the row
// the first updated, so exactly one finds it unredeemed. A spent code is a
// replay even past its expiry, until SweepExpired drops it; an unspent one
// that expired is not found.
func (s *Store) RedeemCode(ctx context.Context, hash string, now time.Time) (state.Code, error) {
	var c state.Code
	var used bool
	err := s.pool.QueryRow(ctx, `WITH old AS (
			SELECT hash, redeemed FROM oidc_code WHERE hash = $1 AND (redeemed OR expires >= $2) FOR UPDATE)
		UPDATE oidc_code c SET redeemed = true FROM old WHERE c.hash = old.hash
		RETURNING c.client_id, c.redirect_uri, c.nonce, c.scope, c.challenge, c.connector, c.account_id, c.auth_time,
			c.expires, c.family, c.access_jti, c.access_exp, old.redeemed`, hash, now).
		Scan(&c.ClientID, &c.RedirectURI, &c.Nonce, &c.Scope, &c.Challenge, &c.Connector, &c.ID, &c.AuthTime,
			&c.Expires, &c.Family, &c.AccessJTI, &c.AccessExp, &used)
	if err != nil {
		return state.Code{}, notFound("redeem code", err)
	}
	if c.AccessJTI == "" {
		c.AccessExp = time.Time{}
	}
	if used {
		return c, state.ErrReplayed
	}
	return c, nil
}

// SetCodeAccess implements state.Grants.
func (s *Store) SetCodeAccess(ctx context.Context, hash, jti string, exp time.Time) error {
	_, err := s.exec(ctx, "record code access token",
		`UPDATE oidc_code SET access_jti = $2, access_exp = $3 WHERE hash = $1`, hash, jti, exp)
	return err
}

// PutRefresh implements state.Grants.
func (s *Store) PutRefresh(ctx context.Context, hash string, r state.Refresh) error {
	_, err := s.exec(ctx, "store refresh token", `INSERT INTO oidc_refresh (hash, family, client_id, connector, account_id,
		scope, auth_time, expires, rotated) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (hash) DO UPDATE SET family = EXCLUDED.family, client_id = EXCLUDED.client_id,
			connector = EXCLUDED.connector, account_id = EXCLUDED.account_id, scope = EXCLUDED.scope,
			auth_time = EXCLUDED.auth_time, expires = EXCLUDED.expires, rotated = EXCLUDED.rotated`,
		hash, familyOf(hash, r), r.ClientID, r.Connector, r.ID, nonNil(r.Scope), r.AuthTime, r.Expires, r.Rotated)
	return err
}

// familyOf names r's family: a token issued without one is a family of its
// own, named by its hash.
func familyOf(hash string, r state.Refresh) string {
	if r.Family == "" {
		return hash
	}
	return r.Family
}

// querier is what a pool and a transaction share.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Refresh implements state.Grants, in one statement.
func (s *Store) Refresh(ctx context.Context, hash string, now time.Time) (state.Refresh, error) {
	var r state.Refresh
	var revoked bool
	err := s.pool.QueryRow(ctx, `SELECT family, client_id, connector, account_id, scope, auth_time, expires, rotated,
			EXISTS (SELECT 1 FROM oidc_family_revoked f WHERE f.family = t.family)
		FROM oidc_refresh t WHERE hash = $1 AND expires >= $2`, hash, now).
		Scan(&r.Family, &r.ClientID, &r.Connector, &r.ID, &r.Scope, &r.AuthTime, &r.Expires, &r.Rotated, &revoked)
	switch {
	case err != nil:
		return state.Refresh{}, notFound("read refresh token", err)
	case revoked:
		return state.Refresh{}, state.ErrNotFound
	}
	return r, nil
}

// rotateSQL spends a refresh token in one statement (one round trip):
//   - old reads the token under its row lock: presentations of one token
//     queue on it, and each reads the version the one before it committed
//     (a locking read in READ COMMITTED follows the row's updates);
//   - rot marks it rotated when it is live, of the client, and its family
//     not revoked;
//   - rev revokes the family of a rotated token presented again. Its
//     ON CONFLICT DO NOTHING decides among presentations racing on one
//     spent token: the revocation check reads the statement's snapshot,
//     taken before the row lock was granted, so it can miss a revocation
//     committed meanwhile; the unique index does not, and only the
//     presentation whose insert took place reports the reuse.
const rotateSQL = `WITH old AS (
		SELECT hash, family, client_id, connector, account_id, scope, auth_time, expires, rotated
		FROM oidc_refresh WHERE hash = $1 AND expires >= $2 FOR UPDATE),
	cur AS (
		SELECT old.*, EXISTS (SELECT 1 FROM oidc_family_revoked f WHERE f.family = old.family) AS revoked FROM old),
	rot AS (
		UPDATE oidc_refresh t SET rotated = true FROM cur
		WHERE t.hash = cur.hash AND cur.client_id = $3 AND NOT cur.rotated AND NOT cur.revoked
		RETURNING t.hash),
	rev AS (
		INSERT INTO oidc_family_revoked (family, revoked)
		SELECT family, $2 FROM cur WHERE client_id = $3 AND rotated AND NOT revoked
		ON CONFLICT (family) DO NOTHING
		RETURNING family)
	SELECT family, client_id, connector, account_id, scope, auth_time, expires, rotated, revoked,
		EXISTS (SELECT 1 FROM rot), EXISTS (SELECT 1 FROM rev)
	FROM cur`

// RotateRefresh implements state.Grants in one statement (rotateSQL):
// concurrent presentations of a live token yield one RefreshLive, those of
// a spent one one RefreshReused, and the rest RefreshInvalid.
func (s *Store) RotateRefresh(ctx context.Context, hash, client string, now time.Time) (state.Refresh, state.RefreshOutcome, error) {
	var r state.Refresh
	var revoked, rotated, reused bool
	err := s.pool.QueryRow(ctx, rotateSQL, hash, now, client).
		Scan(&r.Family, &r.ClientID, &r.Connector, &r.ID, &r.Scope, &r.AuthTime, &r.Expires, &r.Rotated, &revoked, &rotated, &reused)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return state.Refresh{}, state.RefreshInvalid, nil
	case err != nil:
		return state.Refresh{}, state.RefreshInvalid, wrap("rotate refresh token", err)
	case revoked:
		return state.Refresh{}, state.RefreshInvalid, nil
	case r.ClientID != client:
		return state.Refresh{}, state.RefreshOtherClient, nil
	case rotated:
		r.Rotated = true
		return r, state.RefreshLive, nil
	case reused:
		return r, state.RefreshReused, nil
	}
	// Spent, and its family revoked by a racing presentation.
	return state.Refresh{}, state.RefreshInvalid, nil
}

// execer is what a pool and a transaction share.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// revokeFamily records family's revocation; a later revocation moves its
// time forward (the sweep keeps it longer).
func revokeFamily(ctx context.Context, e execer, family string, now time.Time) error {
	if family == "" {
		return nil
	}
	_, err := e.Exec(ctx, `INSERT INTO oidc_family_revoked (family, revoked) VALUES ($1, $2)
		ON CONFLICT (family) DO UPDATE SET revoked = GREATEST(oidc_family_revoked.revoked, EXCLUDED.revoked)`, family, now)
	return wrap("revoke family", err)
}

// RevokeFamily implements state.Grants.
func (s *Store) RevokeFamily(ctx context.Context, family string, now time.Time) error {
	return revokeFamily(ctx, s.pool, family, now)
}

// RevokeAccess implements state.Grants.
func (s *Store) RevokeAccess(ctx context.Context, jti string, exp time.Time) error {
	_, err := s.exec(ctx, "revoke access token", `INSERT INTO oidc_access_revoked (jti, expires) VALUES ($1, $2)
		ON CONFLICT (jti) DO UPDATE SET expires = GREATEST(oidc_access_revoked.expires, EXCLUDED.expires)`, jti, exp)
	return err
}

// AccessRevoked implements state.Grants. Like the in-memory table, a
// revocation counts until SweepExpired removes it.
func (s *Store) AccessRevoked(ctx context.Context, jti string) (bool, error) {
	var revoked bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM oidc_access_revoked WHERE jti = $1)`, jti).Scan(&revoked)
	return revoked, wrap("read access revocation", err)
}

// SweepExpired implements state.Grants, in one transaction.
func (s *Store) SweepExpired(ctx context.Context, now time.Time, familyTTL time.Duration) (int, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Each table with its expiry column and the time before which a
		// row can no longer matter.
		for _, q := range []struct {
			table, column string
			before        time.Time
		}{
			{"oidc_code", "expires", now.Add(-codeGrace)},
			{"oidc_refresh", "expires", now},
			{"oidc_family_revoked", "revoked", now.Add(-familyTTL)},
			{"oidc_access_revoked", "expires", now},
		} {
			tag, err := tx.Exec(ctx, "DELETE FROM "+q.table+" WHERE "+q.column+" < $1", q.before)
			if err != nil {
				return err
			}
			n += tag.RowsAffected()
		}
		return nil
	})
	if err != nil {
		return 0, wrap("sweep", err)
	}
	return int(n), nil
}

// nonNil stores a nil slice as an empty array (the column is NOT NULL).
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
