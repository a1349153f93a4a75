package state

import (
	"context"
	"time"
)

// Code is an issued authorization code.
type Code struct {
	ClientID    string
	RedirectURI string
	Nonce       string
	Scope       []string
	Challenge   string // PKCE S256 code_challenge, "" when none
	Connector   string
	ID          string // stable ID of the account
	AuthTime    time.Time
	Expires     time.Time
	// Family names the refresh tokens the exchange issues, chosen when the
	// code is issued so that a replay racing the first exchange revokes
	// what that exchange is about to issue.
	Family string
	// AccessJTI and AccessExp name the access token the first exchange
	// issued, for a replay to revoke.
	AccessJTI string
	AccessExp time.Time
}

// Refresh is a stored refresh token (only its hash is the key). Every
// refresh rotates the token; the tokens rotated from one code exchange form
// a family, and a rotated token presented again revokes its family (OAuth
// 2.0 Security BCP, RFC 9700 4.14.2). The JSON encoding is the on-disk
// format of earlier releases.
type Refresh struct {
	ClientID  string    `json:"client_id"`
	Connector string    `json:"connector"`
	ID        string    `json:"id"`
	Scope     []string  `json:"scope"`
	AuthTime  time.Time `json:"auth_time"`
	Expires   time.Time `json:"expires"`
	// Family is empty in tokens stored before families existed; such a
	// token is a family of its own, named by its hash (the store fills
	// it in when reading).
	Family string `json:"family,omitempty"`
	// Rotated marks a token already exchanged for its successor.
	Rotated bool `json:"rotated,omitempty"`
}

// RefreshOutcome is what presenting a refresh token did.
type RefreshOutcome int

const (
	// RefreshInvalid: unknown, expired or revoked.
	RefreshInvalid RefreshOutcome = iota
	// RefreshOtherClient: issued to another client; left alone.
	RefreshOtherClient
	// RefreshLive: spent now; the caller issues its successor.
	RefreshLive
	// RefreshReused: spent before; its family is now revoked.
	RefreshReused
)

// Grants holds what the OIDC provider issues: authorization codes, refresh
// tokens and their families, and revoked access tokens.
type Grants interface {
	// PutCode stores an authorization code under the hash of the code;
	// ErrFull when too many are pending.
	PutCode(ctx context.Context, hash string, c Code, now time.Time) error
	// RedeemCode spends the code: the first redemption returns it; every
	// later one returns it with ErrReplayed, whatever the concurrency, so
	// the caller can revoke what the first issued (RFC 6749 4.1.2), also
	// after the code expired, until SweepExpired drops it a minute later.
	// ErrNotFound when unknown, or expired and never redeemed.
	RedeemCode(ctx context.Context, hash string, now time.Time) (Code, error)
	// SetCodeAccess records the access token the code's exchange issued.
	SetCodeAccess(ctx context.Context, hash, jti string, exp time.Time) error

	// PutRefresh stores a new refresh token.
	PutRefresh(ctx context.Context, hash string, r Refresh) error
	// Refresh returns the token stored under hash, rotated or not;
	// ErrNotFound when unknown, expired or its family revoked.
	Refresh(ctx context.Context, hash string, now time.Time) (Refresh, error)
	// RotateRefresh spends the token presented by client, atomically: a
	// live token is marked rotated (RefreshLive: the caller issues its
	// successor in the same family); a rotated one revokes its family
	// (RefreshReused). Concurrent presentations of one live token yield one
	// RefreshLive at most. The successor is stored with PutRefresh once the
	// caller has checked the account is still active: reuse detection
	// needs only the family, which the successor shares.
	RotateRefresh(ctx context.Context, hash, client string, now time.Time) (Refresh, RefreshOutcome, error)
	// RevokeFamily revokes every refresh token of family, including the
	// ones not issued yet.
	RevokeFamily(ctx context.Context, family string, now time.Time) error

	// RevokeAccess remembers a revoked access token until it expires.
	RevokeAccess(ctx context.Context, jti string, exp time.Time) error
	// AccessRevoked tells whether jti was revoked.
	AccessRevoked(ctx context.Context, jti string) (bool, error)

	// SweepExpired removes what can no longer matter: codes, refresh
	// tokens and revoked access tokens past their expiry, and family
	// revocations older than familyTTL (by then every token of the family
	// has expired). It returns how many records it removed.
	SweepExpired(ctx context.Context, now time.Time, familyTTL time.Duration) (int, error)
}
