package oidc

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/dirgate/dirgate/state"
)

// memKeys is a state.Keys in memory whose publications can be made to
// fail.
type memKeys struct {
	mu   sync.Mutex
	b    []byte
	fail error // returned by PublishSigningKeys when set
}

func (m *memKeys) SigningKeys(context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.b, nil
}

func (m *memKeys) PublishSigningKeys(_ context.Context, prev, next []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.fail != nil:
		return m.fail
	case !bytes.Equal(m.b, prev):
		return state.ErrConflict
	}
	m.b = next
	return nil
}

func (m *memKeys) setFail(err error) {
	m.mu.Lock()
	m.fail = err
	m.mu.Unlock()
}

// clock is a settable time for key rings under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestRing(t *testing.T, store state.Keys, c *clock) *keyRing {
	t.Helper()
	k, err := newKeyRing(t.Context(), store, time.Hour, time.Hour, c.now)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signingKID is the kid of the key that signs alg's tokens now.
func signingKID(t *testing.T, k *keyRing, alg jose.SignatureAlgorithm) string {
	t.Helper()
	raw, err := k.sign(alg, map[string]any{"sub": "x"})
	if err != nil {
		t.Fatal(err)
	}
	return jwsHeader(t, raw).KeyID
}

// published are the kids of the key set the store holds.
func published(t *testing.T, store state.Keys) []string {
	t.Helper()
	b, err := store.SigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := decodeKeys(b)
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, key := range keys {
		kids = append(kids, key.ID)
	}
	return kids
}

// TestRotationPublishedBeforeUse: a new key signs only once the store has
// published it. When the store fails, the ring keeps signing with the keys
// it published before; when another writer published first, the ring takes
// the winner's set instead of its own.
func TestRotationPublishedBeforeUse(t *testing.T) {
	t.Run("StoreFails", func(t *testing.T) {
		store, c := &memKeys{}, &clock{t: time.Unix(1_700_000_000, 0)}
		k := newTestRing(t, store, c)
		before := published(t, store)
		c.add(61 * time.Minute)
		store.setFail(errors.New("store down"))
		if err := k.maybeRotate(t.Context()); err == nil {
			t.Fatal("a rotation the store refused reported success")
		}
		for _, alg := range signingAlgs {
			if kid := signingKID(t, k, alg); !slices.Contains(before, kid) {
				t.Errorf("%s tokens are signed with %s, which the store never published (%v)", alg, kid, before)
			}
		}
		store.setFail(nil)
		if err := k.maybeRotate(t.Context()); err != nil {
			t.Fatal(err)
		}
		after := published(t, store)
		for _, alg := range signingAlgs {
			if kid := signingKID(t, k, alg); !slices.Contains(before, kid) {
				t.Errorf("within the publication delay %s tokens are signed with %s, not an old key %v", alg, kid, before)
			}
		}
		c.add(k.delay)
		for _, alg := range signingAlgs {
			if kid := signingKID(t, k, alg); !slices.Contains(after, kid) || slices.Contains(before, kid) {
				t.Errorf("after a published rotation and its delay %s tokens are signed with %s; published %v, before %v", alg, kid, after, before)
			}
		}
	})
	t.Run("AnotherWriterFirst", func(t *testing.T) {
		store, c := &memKeys{}, &clock{t: time.Unix(1_700_000_000, 0)}
		winner, loser := newTestRing(t, store, c), newTestRing(t, store, c)
		c.add(61 * time.Minute)
		if err := winner.maybeRotate(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := loser.maybeRotate(t.Context()); err != nil {
			t.Fatalf("the ring that lost the publication: %v", err)
		}
		want := published(t, store)
		for _, alg := range signingAlgs {
			if kid, wkid := signingKID(t, loser, alg), signingKID(t, winner, alg); kid != wkid || !slices.Contains(want, kid) {
				t.Errorf("%s: the loser signs with %s, the winner with %s; published %v", alg, kid, wkid, want)
			}
		}
		var kids []string
		for _, key := range slices.Backward(loser.jwks().Keys) {
			kids = append(kids, key.KeyID)
		}
		if !slices.Equal(kids, want) {
			t.Errorf("the loser's JWKS %v, want the published %v", kids, want)
		}
	})
}

// TestRotationDoesNotBlockSigning: while a new key is being generated,
// tokens are signed and verified with the current keys.
func TestRotationDoesNotBlockSigning(t *testing.T) {
	store, c := &memKeys{}, &clock{t: time.Unix(1_700_000_000, 0)}
	k := newTestRing(t, store, c)
	started, release := make(chan struct{}, len(signingAlgs)), make(chan struct{})
	k.generate = func(alg jose.SignatureAlgorithm) (crypto.Signer, error) {
		started <- struct{}{}
		<-release
		return generateKey(alg)
	}
	c.add(61 * time.Minute)
	rotated := make(chan error, 1)
	go func() { rotated <- k.maybeRotate(context.Background()) }()
	<-started
	signed := make(chan error, 1)
	go func() {
		raw, err := k.sign(jose.RS256, map[string]any{"sub": "x"})
		if err == nil {
			var claims map[string]any
			err = k.verify(raw, &claims)
		}
		signed <- err
	}()
	select {
	case err := <-signed:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(30 * time.Second):
		t.Error("signing waited for the generation of a new key")
	}
	close(release)
	if err := <-rotated; err != nil {
		t.Fatal(err)
	}
}
