package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// The signing algorithms. RS256 is what a client gets unless it asks for
// another one: OpenID Connect Core 15.1 requires every provider to offer it
// and many relying parties expect nothing else.
const (
	RS256 = string(jose.RS256)
	ES256 = string(jose.ES256)
)

// signingAlgs are the algorithms the provider signs with, in the order
// discovery lists them.
var signingAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

// rsaBits is the size of the RSA keys: the smallest RFC 7518 3.3 allows.
const rsaBits = 2048

// keyRing holds the signing keys, one current key per algorithm: the
// newest of an algorithm signs, older ones stay published in the JWKS
// until every token they signed has expired, so a rotation never
// invalidates a token in flight.
type keyRing struct {
	rotate  time.Duration
	keep    time.Duration // how long a retired key stays published
	now     func() time.Time
	persist func([]byte) error

	mu   sync.RWMutex
	keys []signingKey // newest last
}

type signingKey struct {
	ID string `json:"id"`
	// Alg is empty in keys stored before dirgate signed with RS256: those
	// are all ES256.
	Alg     jose.SignatureAlgorithm `json:"alg,omitempty"`
	Created time.Time               `json:"created"`
	Retired time.Time               `json:"retired,omitzero"`
	DER     []byte                  `json:"der"` // PKCS#8 private key
	priv    crypto.Signer
}

// newKeyRing loads keys from saved (may be nil) and makes sure a current
// key exists for every algorithm.
func newKeyRing(saved []byte, rotate, keep time.Duration, now func() time.Time, persist func([]byte) error) (*keyRing, error) {
	k := &keyRing{rotate: rotate, keep: keep, now: now, persist: persist}
	if len(saved) > 0 {
		if err := json.Unmarshal(saved, &k.keys); err != nil {
			return nil, fmt.Errorf("oidc: stored signing keys: %w", err)
		}
		for i := range k.keys {
			key := &k.keys[i]
			if key.Alg == "" {
				key.Alg = jose.ES256
			}
			p, err := x509.ParsePKCS8PrivateKey(key.DER)
			if err != nil {
				return nil, fmt.Errorf("oidc: stored signing key %s: %w", key.ID, err)
			}
			if key.priv, err = signerFor(key.Alg, p); err != nil {
				return nil, fmt.Errorf("oidc: stored signing key %s: %w", key.ID, err)
			}
		}
	}
	if err := k.maybeRotate(); err != nil {
		return nil, err
	}
	return k, nil
}

// signerFor checks that the private key p fits alg.
func signerFor(alg jose.SignatureAlgorithm, p any) (crypto.Signer, error) {
	switch key := p.(type) {
	case *rsa.PrivateKey:
		if alg == jose.RS256 && key.N.BitLen() >= rsaBits {
			return key, nil
		}
	case *ecdsa.PrivateKey:
		if alg == jose.ES256 && key.Curve == elliptic.P256() {
			return key, nil
		}
	}
	return nil, fmt.Errorf("a %T is not an %s key", p, alg)
}

func generateKey(alg jose.SignatureAlgorithm) (crypto.Signer, error) {
	if alg == jose.RS256 {
		return rsa.GenerateKey(rand.Reader, rsaBits)
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// current is the index of the newest key of alg, or -1; k.mu is held.
func (k *keyRing) current(alg jose.SignatureAlgorithm) int {
	for i := len(k.keys) - 1; i >= 0; i-- {
		if k.keys[i].Alg == alg {
			return i
		}
	}
	return -1
}

// maybeRotate adds a new key for every algorithm whose current key is
// older than the rotation period, and drops retired keys past their keep
// time.
func (k *keyRing) maybeRotate() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	changed := false
	for _, alg := range signingAlgs {
		cur := k.current(alg)
		if cur >= 0 && now.Sub(k.keys[cur].Created) < k.rotate {
			continue
		}
		priv, err := generateKey(alg)
		if err != nil {
			return fmt.Errorf("oidc: generate %s signing key: %w", alg, err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return err
		}
		id := make([]byte, 8)
		if _, err := rand.Read(id); err != nil {
			return err
		}
		if cur >= 0 {
			k.keys[cur].Retired = now
		}
		k.keys = append(k.keys, signingKey{ID: hex.EncodeToString(id), Alg: alg, Created: now, DER: der, priv: priv})
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

// sign signs claims with the current key of alg.
func (k *keyRing) sign(alg jose.SignatureAlgorithm, claims any) (string, error) {
	k.mu.RLock()
	i := k.current(alg)
	var cur signingKey
	if i >= 0 {
		cur = k.keys[i]
	}
	k.mu.RUnlock()
	if i < 0 {
		return "", fmt.Errorf("oidc: no %s signing key", alg)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: cur.priv, KeyID: cur.ID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// jwks is the public key set, newest keys first.
func (k *keyRing) jwks() jose.JSONWebKeySet {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var set jose.JSONWebKeySet
	for _, key := range slices.Backward(k.keys) {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: key.priv.Public(), KeyID: key.ID, Algorithm: string(key.Alg), Use: "sig"})
	}
	return set
}

var errBadToken = errors.New("invalid token")

// verify checks a token signed by one of the published keys and decodes
// its claims; the algorithm must be the one its key was made for.
func (k *keyRing) verify(raw string, claims ...any) error {
	tok, err := jwt.ParseSigned(raw, signingAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return errBadToken
	}
	h := tok.Headers[0]
	k.mu.RLock()
	var pub crypto.PublicKey
	for _, key := range k.keys {
		if key.ID == h.KeyID && string(key.Alg) == h.Algorithm {
			pub = key.priv.Public()
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
