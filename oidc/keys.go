package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// keyRing holds the signing keys: the newest signs, older ones stay
// published in the JWKS until every token they signed has expired, so a
// rotation never invalidates a token in flight.
type keyRing struct {
	rotate  time.Duration
	keep    time.Duration // how long a retired key stays published
	now     func() time.Time
	persist func([]byte) error

	mu   sync.RWMutex
	keys []signingKey // newest last
}

type signingKey struct {
	ID      string            `json:"id"`
	Created time.Time         `json:"created"`
	Retired time.Time         `json:"retired,omitzero"`
	DER     []byte            `json:"der"` // PKCS#8 private key
	priv    *ecdsa.PrivateKey `json:"-"`
}

// newKeyRing loads keys from saved (may be nil) and makes sure a current
// key exists.
func newKeyRing(saved []byte, rotate, keep time.Duration, now func() time.Time, persist func([]byte) error) (*keyRing, error) {
	k := &keyRing{rotate: rotate, keep: keep, now: now, persist: persist}
	if len(saved) > 0 {
		if err := json.Unmarshal(saved, &k.keys); err != nil {
			return nil, fmt.Errorf("oidc: stored signing keys: %w", err)
		}
		for i := range k.keys {
			p, err := x509.ParsePKCS8PrivateKey(k.keys[i].DER)
			if err != nil {
				return nil, fmt.Errorf("oidc: stored signing key %s: %w", k.keys[i].ID, err)
			}
			ec, ok := p.(*ecdsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("oidc: stored signing key %s is not ECDSA", k.keys[i].ID)
			}
			k.keys[i].priv = ec
		}
	}
	if err := k.maybeRotate(); err != nil {
		return nil, err
	}
	return k, nil
}

// maybeRotate adds a new key when the current one is older than the
// rotation period, and drops retired keys past their keep time.
func (k *keyRing) maybeRotate() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	changed := false
	if len(k.keys) == 0 || now.Sub(k.keys[len(k.keys)-1].Created) >= k.rotate {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return fmt.Errorf("oidc: generate signing key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return err
		}
		id := make([]byte, 8)
		if _, err := rand.Read(id); err != nil {
			return err
		}
		if n := len(k.keys); n > 0 {
			k.keys[n-1].Retired = now
		}
		k.keys = append(k.keys, signingKey{ID: hex.EncodeToString(id), Created: now, DER: der, priv: priv})
		changed = true
	}
	kept := k.keys[:0]
	for _, key := range k.keys {
		if !key.Retired.IsZero() && now.Sub(key.Retired) > k.keep {
			changed = true
			continue
		}
		kept = append(kept, key)
	}
	k.keys = kept
	if !changed || k.persist == nil {
		return nil
	}
	b, err := json.Marshal(k.keys)
	if err != nil {
		return err
	}
	return k.persist(b)
}

// run rotates on schedule until ctx ends.
func (k *keyRing) run(ctx context.Context, every time.Duration, onErr func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.maybeRotate(); err != nil {
				onErr(err)
			}
		}
	}
}

// sign signs claims with the current key.
func (k *keyRing) sign(claims any) (string, error) {
	k.mu.RLock()
	cur := k.keys[len(k.keys)-1]
	k.mu.RUnlock()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: cur.priv, KeyID: cur.ID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// jwks is the public key set.
func (k *keyRing) jwks() jose.JSONWebKeySet {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var set jose.JSONWebKeySet
	for i := len(k.keys) - 1; i >= 0; i-- {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.keys[i].priv.PublicKey, KeyID: k.keys[i].ID, Algorithm: string(jose.ES256), Use: "sig"})
	}
	return set
}

var errBadToken = errors.New("invalid token")

// verify checks a token signed by one of the published keys and decodes
// its claims; the algorithm is pinned to ES256.
func (k *keyRing) verify(raw string, claims ...any) error {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(tok.Headers) != 1 {
		return errBadToken
	}
	k.mu.RLock()
	var pub *ecdsa.PublicKey
	for _, key := range k.keys {
		if key.ID == tok.Headers[0].KeyID {
			pub = &key.priv.PublicKey
		}
	}
	k.mu.RUnlock()
	if pub == nil {
		return errBadToken
	}
	if err := tok.Claims(pub, claims...); err != nil {
		return errBadToken
	}
	return nil
}
