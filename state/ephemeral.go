package state

import (
	"context"
	"sync"
	"time"
)

// MaxPending bounds the in-memory tables of Ephemeral against floods of
// unfinished sign-ins.
const MaxPending = 100000

// Ephemeral holds, in memory, the grants that live for minutes: codes and
// revoked access tokens. A single-process store embeds it (a restart
// invalidates only codes in flight, and revoked access tokens expire within
// the access token lifetime); a store shared by replicas implements these
// methods itself. The zero value is not usable: use NewEphemeral.
type Ephemeral struct {
	mu      sync.Mutex
	codes   map[string]*ephemeralCode
	revoked map[string]time.Time // access token jti -> expiry
}

type ephemeralCode struct {
	Code
	used bool
}

// NewEphemeral returns empty tables.
func NewEphemeral() *Ephemeral {
	return &Ephemeral{codes: map[string]*ephemeralCode{}, revoked: map[string]time.Time{}}
}

// PutCode implements Grants.
func (m *Ephemeral) PutCode(_ context.Context, hash string, c Code, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.codes) >= MaxPending {
		m.sweepLocked(now)
		if len(m.codes) >= MaxPending {
			return ErrFull
		}
	}
	m.codes[hash] = &ephemeralCode{Code: c}
	return nil
}

// RedeemCode implements Grants.
func (m *Ephemeral) RedeemCode(_ context.Context, hash string, now time.Time) (Code, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.codes[hash]
	switch {
	case !ok:
		return Code{}, ErrNotFound
	case c.used:
		// Before expiry: a spent code kept past it (sweepLocked) is
		// there to be recognised as a replay.
		return c.Code, ErrReplayed
	case now.After(c.Expires):
		return Code{}, ErrNotFound
	}
	c.used = true
	return c.Code, nil
}

// SetCodeAccess implements Grants.
func (m *Ephemeral) SetCodeAccess(_ context.Context, hash, jti string, exp time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.codes[hash]; ok {
		c.AccessJTI, c.AccessExp = jti, exp
	}
	return nil
}

// RevokeAccess implements Grants.
func (m *Ephemeral) RevokeAccess(_ context.Context, jti string, exp time.Time) error {
	m.mu.Lock()
	m.revoked[jti] = exp
	m.mu.Unlock()
	return nil
}

// AccessRevoked implements Grants.
func (m *Ephemeral) AccessRevoked(_ context.Context, jti string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.revoked[jti]
	return ok, nil
}

// Sweep removes expired codes and revoked access tokens and returns how
// many it removed.
func (m *Ephemeral) Sweep(now time.Time) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sweepLocked(now)
}

func (m *Ephemeral) sweepLocked(now time.Time) int {
	n := 0
	for k, c := range m.codes {
		// Used codes are kept a little past their expiry to detect replays.
		if now.After(c.Expires.Add(time.Minute)) {
			delete(m.codes, k)
			n++
		}
	}
	for k, exp := range m.revoked {
		if now.After(exp) {
			delete(m.revoked, k)
			n++
		}
	}
	return n
}
