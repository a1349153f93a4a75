package fakecloud

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"sync"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Key is an RSA signing key with its key ID.
type Key struct {
	ID      string
	Private *rsa.PrivateKey
}

// NewKey generates a 2048-bit RSA key with a random key ID.
func NewKey() Key {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("fakecloud: generating an RSA key: " + err.Error())
	}
	return Key{ID: RandomToken(12), Private: k}
}

var (
	sharedOnce sync.Once
	shared     Key
)

// SharedKey returns a process-wide RSA key (generating one per fake would
// make every test pay for RSA key generation). Fakes sign their own access
// tokens with it; anything a test rotates or compares uses a KeyRing.
func SharedKey() Key {
	sharedOnce.Do(func() { shared = NewKey() })
	return shared
}

// SignJWT signs claims with k as an RS256 JWT whose header names k.ID.
func SignJWT(k Key, claims map[string]any) string {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k.Private, KeyID: k.ID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		panic(fmt.Sprintf("fakecloud: making a signer: %v", err))
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		panic(fmt.Sprintf("fakecloud: signing a token: %v", err))
	}
	return tok
}

// KeyRing is an identity provider's ID-token signing keys: the newest
// signs, the one before it stays published (as during a real rotation),
// and test hooks can sign with an unpublished kid or change claims before
// signing. It is safe for concurrent use.
type KeyRing struct {
	mu         sync.Mutex
	keys       []Key // published, oldest first; the last signs
	unknownKey bool
	tamper     func(claims map[string]any)
}

// Rotate signs the next tokens with a new key under a new kid; the JWKS
// publishes it and the key before it.
func (r *KeyRing) Rotate() {
	k := NewKey()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = append(r.keys, k)
	if len(r.keys) > 2 {
		r.keys = r.keys[len(r.keys)-2:]
	}
}

// SignWithUnpublishedKey makes the next tokens carry a kid the JWKS never
// publishes, as a forged token would.
func (r *KeyRing) SignWithUnpublishedKey(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unknownKey = on
}

// Tamper lets f change the claims of the next tokens before they are
// signed; nil stops it.
func (r *KeyRing) Tamper(f func(claims map[string]any)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tamper = f
}

// current returns the signing key, making the first on first use; r.mu is
// held.
func (r *KeyRing) current() Key {
	if len(r.keys) == 0 {
		r.keys = append(r.keys, NewKey())
	}
	return r.keys[len(r.keys)-1]
}

// JWKS returns the published public keys.
func (r *KeyRing) JWKS() jose.JSONWebKeySet {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.current()
	var set jose.JSONWebKeySet
	for _, k := range r.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.Private.PublicKey, KeyID: k.ID, Algorithm: "RS256", Use: "sig"})
	}
	return set
}

// Sign signs claims with the current key after the tamper hook ran.
func (r *KeyRing) Sign(claims map[string]any) (string, error) {
	r.mu.Lock()
	k := r.current()
	if r.unknownKey {
		k.ID = "unpublished-" + k.ID
	}
	if r.tamper != nil {
		r.tamper(claims)
	}
	r.mu.Unlock()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k.Private},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.ID))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := sig.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
