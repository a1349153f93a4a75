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

	"github.com/dirgate/dirgate/state"
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
// newest of an algorithm that is past its publication delay signs, older
// ones stay published in the JWKS until every token they signed has
// expired, so a rotation never invalidates a token in flight.
//
// A key signs only once the store has published it, and only after the
// publication delay: every replica reloads the key set from the store
// every reload interval, shorter than the delay, so by the time any
// replica signs with a new key every replica's JWKS serves it. A retired
// key signs until its successor takes over and stays published keep
// longer than that.
type keyRing struct {
	rotate   time.Duration
	keep     time.Duration // how long a retired key stays published
	delay    time.Duration // from a new key's publication to its first signature
	reload   time.Duration // how often the ring reloads the published set
	now      func() time.Time
	store    state.Keys
	generate func(jose.SignatureAlgorithm) (crypto.Signer, error)

	// rotating admits one rotation at a time. It is held while keys are
	// generated and published, which takes long (a 2048-bit RSA key,
	// network I/O); mu, which signing waits for, is held only to read the
	// ring and to swap it.
	rotating sync.Mutex

	mu    sync.RWMutex
	keys  []signingKey // newest last
	saved []byte       // the published encoding of keys, which the next publication replaces
}

type signingKey struct {
	ID string `json:"id"`
	// Alg is empty in keys stored before dirgate signed with RS256: those
	// are all ES256.
	Alg     jose.SignatureAlgorithm `json:"alg,omitempty"`
	Created time.Time               `json:"created"`
	// NotBefore is when the key starts signing: its creation plus the
	// publication delay, or its creation when it was the first of its
	// algorithm (zero in keys stored before the delay existed).
	NotBefore time.Time `json:"not_before,omitzero"`
	// Retired is when the key stopped or stops signing: its successor's
	// NotBefore.
	Retired time.Time `json:"retired,omitzero"`
	DER     []byte    `json:"der"` // PKCS#8 private key
	priv    crypto.Signer
}

// The publication delay and the reload interval: long enough for every
// replica to reload several times before a new key signs, short enough to
// be small next to a rotation period. Both shrink with a shorter rotation
// period, keeping their ratios.
const (
	publishDelay  = 5 * time.Minute
	reloadsBefore = 5 // reloads within a publication delay
)

// newKeyRing loads the published keys and makes sure a current key exists
// for every algorithm.
func newKeyRing(ctx context.Context, store state.Keys, rotate, keep time.Duration, now func() time.Time) (*keyRing, error) {
	delay := min(publishDelay, rotate/2)
	k := &keyRing{rotate: rotate, keep: keep, delay: delay, reload: delay / reloadsBefore, now: now, store: store, generate: generateKey}
	if err := k.load(ctx); err != nil {
		return nil, err
	}
	if err := k.maybeRotate(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// load replaces the ring by the key set the store publishes.
func (k *keyRing) load(ctx context.Context) error {
	saved, err := k.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("oidc: read signing keys: %w", err)
	}
	keys, err := decodeKeys(saved)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.keys, k.saved = keys, saved
	k.mu.Unlock()
	return nil
}

// decodeKeys reads a stored key set (nil when none).
func decodeKeys(saved []byte) ([]signingKey, error) {
	if len(saved) == 0 {
		return nil, nil
	}
	var keys []signingKey
	if err := json.Unmarshal(saved, &keys); err != nil {
		return nil, fmt.Errorf("oidc: stored signing keys: %w", err)
	}
	for i := range keys {
		key := &keys[i]
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
	return keys, nil
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

// newest is the index of the newest key of alg in keys, or -1.
func newest(keys []signingKey, alg jose.SignatureAlgorithm) int {
	return signer(keys, alg, time.Time{})
}

// signer is the index of the key of alg that signs at now: the newest
// whose publication delay is over, or -1. The zero now stands for any
// time: the newest key.
func signer(keys []signingKey, alg jose.SignatureAlgorithm, now time.Time) int {
	for i := len(keys) - 1; i >= 0; i-- {
		if keys[i].Alg == alg && (now.IsZero() || !keys[i].NotBefore.After(now)) {
			return i
		}
	}
	return -1
}

// publishAttempts bounds how many times one rotation starts over after
// losing to another writer.
const publishAttempts = 3

// maybeRotate adds a new key for every algorithm whose current key is
// older than the rotation period, and drops retired keys past their keep
// time. The new set is published with compare-and-set over the one the
// ring holds, and the ring uses it only once published; when another
// writer published first, the ring takes that set and rotates it if it is
// still due.
func (k *keyRing) maybeRotate(ctx context.Context) error {
	k.rotating.Lock()
	defer k.rotating.Unlock()
	for range publishAttempts {
		k.mu.RLock()
		keys, saved := k.keys, k.saved
		k.mu.RUnlock()
		next, changed, err := k.next(keys)
		if err != nil || !changed {
			return err
		}
		b, err := json.Marshal(next)
		if err != nil {
			return err
		}
		err = k.store.PublishSigningKeys(ctx, saved, b)
		switch {
		case err == nil:
			k.mu.Lock()
			k.keys, k.saved = next, b
			k.mu.Unlock()
			return nil
		case !errors.Is(err, state.ErrConflict):
			return fmt.Errorf("oidc: publish signing keys: %w", err)
		}
		if err := k.load(ctx); err != nil {
			return err
		}
	}
	return fmt.Errorf("oidc: publish signing keys: lost to other writers %d times: %w", publishAttempts, state.ErrConflict)
}

// next is the key set that follows keys now, without changing keys;
// changed is false when it is the same set. A new key signs after the
// publication delay, unless it is the first of its algorithm (no replica
// can sign that algorithm before it is published anyway); the key it
// replaces signs until then.
func (k *keyRing) next(keys []signingKey) (next []signingKey, changed bool, err error) {
	now := k.now()
	next = slices.Clone(keys)
	for _, alg := range signingAlgs {
		cur := newest(next, alg)
		if cur >= 0 && now.Sub(next[cur].Created) < k.rotate {
			continue
		}
		key, err := k.newKey(alg, now)
		if err != nil {
			return nil, false, err
		}
		if cur >= 0 {
			key.NotBefore = now.Add(k.delay)
			next[cur].Retired = key.NotBefore
		}
		next = append(next, key)
		changed = true
	}
	kept := next[:0]
	for _, key := range next {
		if !key.Retired.IsZero() && now.Sub(key.Retired) > k.keep {
			changed = true
			continue
		}
		kept = append(kept, key)
	}
	return kept, changed, nil
}

// newKey makes a key of alg created at now.
func (k *keyRing) newKey(alg jose.SignatureAlgorithm, now time.Time) (signingKey, error) {
	priv, err := k.generate(alg)
	if err != nil {
		return signingKey{}, fmt.Errorf("oidc: generate %s signing key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return signingKey{}, err
	}
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return signingKey{}, err
	}
	return signingKey{ID: hex.EncodeToString(id), Alg: alg, Created: now, NotBefore: now, DER: der, priv: priv}, nil
}

// tick reloads the published key set, so that keys other replicas
// published are served here within a reload interval, then rotates if due.
// When the store cannot be read the ring keeps what it holds: it signs
// only with keys published long ago.
func (k *keyRing) tick(ctx context.Context) error {
	k.rotating.Lock()
	err := k.load(ctx)
	k.rotating.Unlock()
	return errors.Join(err, k.maybeRotate(ctx))
}

// run reloads and rotates every reload interval until ctx ends.
func (k *keyRing) run(ctx context.Context, onErr func(error)) {
	t := time.NewTicker(k.reload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.tick(ctx); err != nil {
				onErr(err)
			}
		}
	}
}

// sign signs claims with the current key of alg.
func (k *keyRing) sign(alg jose.SignatureAlgorithm, claims any) (string, error) {
	now := k.now()
	k.mu.RLock()
	i := signer(k.keys, alg, now)
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
