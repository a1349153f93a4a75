package pgstate

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/dirgate/dirgate/state"
)

// keysAAD binds a sealed key set to its use, so a ciphertext copied from
// another column does not open as a key set.
var keysAAD = []byte("dirgate signing keys v1")

// sealer encrypts the signing key set at rest: nonce || AES-256-GCM seal.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (sealer, error) {
	if len(key) != 32 {
		return sealer{}, fmt.Errorf("pgstate: the signing key encryption key has %d bytes, want 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return sealer{}, fmt.Errorf("pgstate: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return sealer{}, fmt.Errorf("pgstate: %w", err)
	}
	return sealer{aead}, nil
}

func (s sealer) seal(plain []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	rand.Read(nonce) // never fails (crypto/rand)
	return s.aead.Seal(nonce, nonce, plain, keysAAD)
}

// open fails with state.ErrCorrupt when sealed was not sealed with this
// key: the key set cannot be read with the configured key.
func (s sealer) open(sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, fmt.Errorf("pgstate: signing keys: %w: too short", state.ErrCorrupt)
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], keysAAD)
	if err != nil {
		return nil, fmt.Errorf("pgstate: signing keys: %w: cannot decrypt (another encryption key?)", state.ErrCorrupt)
	}
	return plain, nil
}

// signingKeys reads and opens the key set (lock: "" or "FOR UPDATE"), nil
// when none.
func (s *Store) signingKeys(ctx context.Context, q querier, lock string) ([]byte, error) {
	var sealed []byte
	err := q.QueryRow(ctx, `SELECT sealed FROM signing_keys WHERE id = 1 `+lock).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap("read signing keys", err)
	}
	plain, err := s.seal.open(sealed)
	if err != nil || len(plain) == 0 {
		return nil, err
	}
	return plain, nil
}

// SigningKeys implements state.Keys.
func (s *Store) SigningKeys(ctx context.Context) ([]byte, error) {
	return s.signingKeys(ctx, s.pool, "")
}

// PublishSigningKeys implements state.Keys. The comparison is on the
// plaintext (each seal has a fresh nonce), under the row lock; when there
// is no row yet, the insert itself is the compare-and-set.
func (s *Store) PublishSigningKeys(ctx context.Context, prev, next []byte) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := s.signingKeys(ctx, tx, "FOR UPDATE")
		if err != nil {
			return err
		}
		if !bytes.Equal(cur, prev) {
			return state.ErrConflict
		}
		tag, err := tx.Exec(ctx, `INSERT INTO signing_keys (id, sealed) VALUES (1, $1)
			ON CONFLICT (id) DO UPDATE SET sealed = EXCLUDED.sealed WHERE $2`, s.seal.seal(next), cur != nil)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			// Another writer inserted the first set since we read none.
			return state.ErrConflict
		}
		return nil
	})
	return wrap("publish signing keys", err)
}
