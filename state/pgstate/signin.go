package pgstate

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dirgate/dirgate/state"
)

// The kinds of oidc_signin rows.
const (
	requestKind  = "request"
	upstreamKind = "upstream"
)

// PutRequest implements state.SignIns. The table has no bound (ErrFull is
// never returned): rows live on disk and SweepSignIns removes them.
func (s *Store) PutRequest(ctx context.Context, key string, r state.SignInRequest, _ time.Time) error {
	return s.putSignIn(ctx, requestKind, key, r, r.Expires)
}

// Request implements state.SignIns.
func (s *Store) Request(ctx context.Context, key string, now time.Time) (state.SignInRequest, error) {
	var r state.SignInRequest
	var data []byte
	err := s.pool.QueryRow(ctx, `SELECT data FROM oidc_signin WHERE kind = $1 AND key = $2 AND expires >= $3`,
		requestKind, key, now).Scan(&data)
	if err != nil {
		return r, notFound("read sign-in request", err)
	}
	err = decodeSignIn(data, &r)
	return r, err
}

// TakeRequest implements state.SignIns: one DELETE, so of concurrent takes
// only one gets the row.
func (s *Store) TakeRequest(ctx context.Context, key string, now time.Time) (state.SignInRequest, error) {
	var r state.SignInRequest
	err := s.takeSignIn(ctx, requestKind, key, now, &r)
	return r, err
}

// PutUpstreamLogin implements state.SignIns, unbounded as PutRequest.
func (s *Store) PutUpstreamLogin(ctx context.Context, key string, u state.UpstreamLogin, _ time.Time) error {
	return s.putSignIn(ctx, upstreamKind, key, u, u.Expires)
}

// TakeUpstreamLogin implements state.SignIns.
func (s *Store) TakeUpstreamLogin(ctx context.Context, key string, now time.Time) (state.UpstreamLogin, error) {
	var u state.UpstreamLogin
	err := s.takeSignIn(ctx, upstreamKind, key, now, &u)
	return u, err
}

// SweepSignIns implements state.SignIns.
func (s *Store) SweepSignIns(ctx context.Context, now time.Time) (int, error) {
	n, err := s.exec(ctx, "sweep sign-ins", `DELETE FROM oidc_signin WHERE expires < $1`, now)
	return int(n), err
}

func (s *Store) putSignIn(ctx context.Context, kind, key string, v any, expires time.Time) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("pgstate: encode sign-in %s: %w", kind, err)
	}
	_, err = s.exec(ctx, "store sign-in "+kind, `INSERT INTO oidc_signin (kind, key, data, expires) VALUES ($1, $2, $3, $4)`,
		kind, key, data, expires)
	return err
}

// takeSignIn deletes the row and decodes it into v; a row past its expiry
// is deleted all the same, and not found.
func (s *Store) takeSignIn(ctx context.Context, kind, key string, now time.Time, v any) error {
	var data []byte
	var expires time.Time
	err := s.pool.QueryRow(ctx, `DELETE FROM oidc_signin WHERE kind = $1 AND key = $2 RETURNING data, expires`,
		kind, key).Scan(&data, &expires)
	switch {
	case err != nil:
		return notFound("take sign-in "+kind, err)
	case now.After(expires):
		return state.ErrNotFound
	}
	return decodeSignIn(data, v)
}

func decodeSignIn(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("pgstate: sign-in record: %w: %w", state.ErrCorrupt, err)
	}
	return nil
}
