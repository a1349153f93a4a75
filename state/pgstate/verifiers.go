package pgstate

import (
	"context"
	"time"

	"github.com/dirgate/dirgate/state"
)

// Verifier implements state.Verifiers.
func (s *Store) Verifier(ctx context.Context, connector, id string) (state.Verifier, error) {
	var v state.Verifier
	err := s.pool.QueryRow(ctx, `SELECT created, stamp, hash FROM offline_verifier WHERE connector = $1 AND account_id = $2`,
		[]byte(connector), []byte(id)).Scan(&v.Created, &v.Stamp, &v.Hash)
	if err != nil {
		return state.Verifier{}, notFound("read offline verifier", err)
	}
	return v, nil
}

// PutVerifier implements state.Verifiers. Created is kept to the second,
// as the Badger store does.
func (s *Store) PutVerifier(ctx context.Context, connector, id string, v state.Verifier) error {
	_, err := s.exec(ctx, "store offline verifier", `INSERT INTO offline_verifier (connector, account_id, created, stamp, hash)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (connector, account_id)
		DO UPDATE SET created = EXCLUDED.created, stamp = EXCLUDED.stamp, hash = EXCLUDED.hash`,
		[]byte(connector), []byte(id), v.Created.Truncate(time.Second), v.Stamp, v.Hash)
	return err
}

// DeleteVerifier implements state.Verifiers.
func (s *Store) DeleteVerifier(ctx context.Context, connector, id string) error {
	_, err := s.exec(ctx, "delete offline verifier", `DELETE FROM offline_verifier WHERE connector = $1 AND account_id = $2`,
		[]byte(connector), []byte(id))
	return err
}

// DeleteAllVerifiers implements state.Verifiers.
func (s *Store) DeleteAllVerifiers(ctx context.Context) (int, error) {
	n, err := s.exec(ctx, "delete offline verifiers", `DELETE FROM offline_verifier`)
	return int(n), err
}
