package authn

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/dirtype"
	"github.com/dirgate/dirgate/passwd"
	"github.com/dirgate/dirgate/state"
)

// offline is the optional offline verifier. It is consulted only when every
// upstream host of the account's connector is unreachable.
type offline struct {
	enabled bool
	retired atomic.Bool // the authenticator was replaced: store nothing more
	maxAge  time.Duration
	store   state.Verifiers
	types   map[string]string // connector name -> type
	now     func() time.Time
	log     *slog.Logger

	// memo remembers, as a keyed MAC, the password and stamp last stored
	// per account, so that a user binding again and again does not cost an
	// argon2 hash and a cache write each time.
	mac  *passwd.MAC
	mu   sync.Mutex
	memo map[string]memoEntry
}

type memoEntry struct {
	mac [sha256.Size]byte
	at  time.Time
}

const maxMemo = 100_000

func newOffline(cfg config.OfflineVerifier, store state.Verifiers, types map[string]string, now func() time.Time, log *slog.Logger) *offline {
	o := &offline{enabled: cfg.Enabled, maxAge: cfg.MaxAge.Std(), store: store, types: types, now: now, log: log, memo: map[string]memoEntry{}, mac: passwd.NewMAC()}
	if o.maxAge <= 0 {
		o.maxAge = 168 * time.Hour
	}
	return o
}

// purgeIfOff removes, when the verifier is off, the verifiers stored while
// it was on: they must not outlive the option. Done once when the
// authenticator takes over (Authenticator.Activate), so that a sign-in with
// the option off costs no cache lookup.
func (o *offline) purgeIfOff() {
	if o.enabled {
		return
	}
	if n, err := o.store.DeleteAllVerifiers(context.Background()); err != nil {
		o.log.Warn("offline verifiers of an earlier configuration not removed", "err", err)
	} else if n > 0 {
		o.log.Info("offline verifier is off: removed the stored verifiers", "count", n)
	}
}

func offlineKey(e *cache.Entry) string { return e.Connector + "\x00" + e.ID }

// passwordStamp is what changes when the account's password changes, as the
// cache knows it: the first of the type's password-stamp attributes the
// entry holds (dirtype). Without any of them it is the entry's content
// hash, so that any change a sync sees to the account retires the verifier.
func passwordStamp(e *cache.Entry, connType string) string {
	for _, a := range dirtype.PasswordStamp(connType) {
		if v := e.First(a); v != "" {
			return a + ":" + v
		}
	}
	return "entry:" + strconv.FormatUint(e.Hash(), 16)
}

// remember stores a verifier for e after the upstream accepted password.
func (o *offline) remember(e *cache.Entry, password string) {
	if !o.enabled || o.retired.Load() {
		return
	}
	key := offlineKey(e)
	stamp := passwordStamp(e, o.types[e.Connector])
	sum := o.mac.Sum(key, stamp, password)
	now := o.now()
	// Rewrite at least this often so that max_age counts from a recent
	// online sign-in.
	refresh := min(o.maxAge/4, time.Hour)
	o.mu.Lock()
	m, ok := o.memo[key]
	o.mu.Unlock()
	if ok && hmac.Equal(m.mac[:], sum[:]) && now.Sub(m.at) < refresh {
		return
	}
	hash, err := passwd.Hash(password)
	if err != nil {
		o.log.Warn("offline verifier not stored", "connector", e.Connector, "dn", e.DN, "err", err)
		return
	}
	if err := o.store.PutVerifier(context.Background(), e.Connector, e.ID, state.Verifier{Created: now, Stamp: stamp, Hash: hash}); err != nil {
		o.log.Warn("offline verifier not stored", "connector", e.Connector, "dn", e.DN, "err", err)
		return
	}
	o.mu.Lock()
	if len(o.memo) >= maxMemo {
		clear(o.memo)
	}
	o.memo[key] = memoEntry{mac: sum, at: now}
	o.mu.Unlock()
}

// forget removes e's verifier, if there is one.
func (o *offline) forget(e *cache.Entry) {
	if !o.enabled {
		return // none is stored: Activate removed them
	}
	key := offlineKey(e)
	o.mu.Lock()
	delete(o.memo, key)
	o.mu.Unlock()
	// Looked up first so that the usual case, no verifier, writes nothing.
	if _, err := o.store.Verifier(context.Background(), e.Connector, e.ID); errors.Is(err, state.ErrNotFound) {
		return
	}
	if err := o.store.DeleteVerifier(context.Background(), e.Connector, e.ID); err != nil {
		o.log.Warn("offline verifier not removed", "connector", e.Connector, "dn", e.DN, "err", err)
	}
}

type offlineResult int

const (
	offlineUnusable offlineResult = iota
	offlineMatch
	offlineMismatch
)

// verify checks password against e's stored verifier. It is unusable (with
// the reason) when there is none, when it is older than max_age, or when
// the account's password stamp in the cache is no longer the one it was
// stored with.
func (o *offline) verify(e *cache.Entry, password string) (offlineResult, string) {
	rec, err := o.store.Verifier(context.Background(), e.Connector, e.ID)
	switch {
	case errors.Is(err, state.ErrNotFound):
		return offlineUnusable, "no offline verifier for this account"
	case errors.Is(err, state.ErrCorrupt):
		return offlineUnusable, "unreadable offline verifier"
	case err != nil:
		return offlineUnusable, err.Error()
	}
	now := o.now()
	created := rec.Created
	switch {
	case now.Sub(created) > o.maxAge:
		return offlineUnusable, fmt.Sprintf("offline verifier from %s is older than max_age %s", created.UTC().Format(time.RFC3339), o.maxAge)
	case created.After(now.Add(5 * time.Minute)):
		return offlineUnusable, "offline verifier is dated in the future"
	case rec.Stamp != passwordStamp(e, o.types[e.Connector]):
		return offlineUnusable, "the password changed since the offline verifier was stored"
	}
	if !passwd.Verify(rec.Hash, password) {
		return offlineMismatch, ""
	}
	return offlineMatch, ""
}
