// Package state declares the stores that hold dirgate's state outside the
// directory cache: OIDC grants, signing keys, offline verifiers, throttle
// counters and sync state. It is a leaf package of interfaces, value types
// and typed errors, with the in-memory tables for what one process may
// keep to itself (Ephemeral, MemoryThrottle).
//
// Why a boundary here: cluster mode shares this state between replicas in
// PostgreSQL, while each replica keeps its own Badger copy of the
// directory. The callers (oidc, authn, sync) therefore speak only to these
// interfaces, and every operation that must be atomic across replicas is one
// store method (RedeemCode, RotateRefresh, PublishSigningKeys, ...) rather
// than a read-modify-write sequence in the caller, which a second replica
// could interleave. Every method takes a context and returns an error
// because a network store can fail where Badger does not. Times are passed
// in by the caller, so that expiry follows the caller's clock in tests.
//
// The Badger implementation lives in package cache (its records keep the
// key layout and encoding of earlier releases, so an existing cache is
// read unchanged); package statetest is the conformance suite every
// implementation passes.
package state

import "errors"

// Stores bundles the stores one process uses.
type Stores struct {
	Grants    Grants
	Keys      Keys
	Verifiers Verifiers
	Throttle  Throttle
	Sync      Sync
	SignIns   SignIns
}

var (
	// ErrNotFound: no live record under the key (unknown, expired or
	// revoked).
	ErrNotFound = errors.New("state: not found")
	// ErrReplayed: an authorization code was redeemed before.
	ErrReplayed = errors.New("state: code already redeemed")
	// ErrFull: an in-memory table reached its bound.
	ErrFull = errors.New("state: too many pending records")
	// ErrConflict: a compare-and-set lost to another writer.
	ErrConflict = errors.New("state: changed by another writer")
	// ErrCorrupt: a stored record cannot be decoded.
	ErrCorrupt = errors.New("state: unreadable record")
)
