package state

import (
	"context"
	"errors"
	"time"
)

// EnrollToken is a one-time token that lets one sync agent enroll for one
// connector. It is stored under a hash of the token, never in clear.
type EnrollToken struct {
	Connector string
	Created   time.Time
	Expires   time.Time
	// Used is when it was redeemed (zero until then), by agent UsedBy.
	Used   time.Time
	UsedBy string
}

// Agent is an enrolled sync agent. The hub pins it by Fingerprint, the
// SHA-256 of the client certificate it was issued.
type Agent struct {
	ID          string
	Connector   string
	Name        string
	Fingerprint string
	Serial      string // of its certificate, in hex
	Enrolled    time.Time
	Revoked     time.Time // zero while it may connect
	// CertExpires is its certificate's not-after: the agent renews it
	// before then. Zero for agents stored before it was kept.
	CertExpires time.Time `json:",omitzero"`
	// PreviousFingerprint pins the certificate the last renewal replaced:
	// the agent's connections made before the renewal still present it,
	// until it expires.
	PreviousFingerprint string `json:",omitempty"`
}

// Pins reports whether fingerprint is one the hub accepts from a: its
// certificate's, or the one its last renewal replaced.
func (a Agent) Pins(fingerprint string) bool {
	return fingerprint != "" && (fingerprint == a.Fingerprint || fingerprint == a.PreviousFingerprint)
}

// ErrCertSuperseded: a renewal presented a certificate that is not the
// agent's current one (renewed since, or revoked).
var ErrCertSuperseded = errors.New("state: the presented agent certificate is not the agent's current one")

// Errors of enrollment: each is a distinct answer to the enrolling agent.
var (
	// ErrTokenUnknown: no token has this hash.
	ErrTokenUnknown = errors.New("state: unknown enrollment token")
	// ErrTokenUsed: the token was redeemed before.
	ErrTokenUsed = errors.New("state: enrollment token already used")
	// ErrTokenExpired: the token expired unused.
	ErrTokenExpired = errors.New("state: enrollment token expired")
	// ErrTokenConnector: the token is for another connector.
	ErrTokenConnector = errors.New("state: enrollment token is for another connector")
)

// Agents holds the sync agents' enrollment tokens and the enrolled agents.
// With several replicas it is shared, so that a token is redeemed once
// whichever replica an agent enrolls through, and a revocation reaches
// every replica.
type Agents interface {
	// PutEnrollToken stores a new token under its hash.
	PutEnrollToken(ctx context.Context, hash string, t EnrollToken) error
	// EnrollToken returns the token under hash if it can still be
	// redeemed at now: ErrTokenUnknown, ErrTokenUsed or ErrTokenExpired
	// otherwise.
	EnrollToken(ctx context.Context, hash string, now time.Time) (EnrollToken, error)
	// RedeemEnrollToken marks the token used by agent a and stores a, in
	// one atomic step: of any number of concurrent redemptions of one
	// token, on any replica, exactly one succeeds. It fails as
	// EnrollToken does, and with ErrTokenConnector when a.Connector is not
	// the token's; a failed redemption stores nothing.
	RedeemEnrollToken(ctx context.Context, hash string, a Agent, now time.Time) error
	// Agent returns the agent with id; ErrNotFound when none.
	Agent(ctx context.Context, id string) (Agent, error)
	// Agents returns every enrolled agent, revoked ones included, by ID.
	Agents(ctx context.Context) ([]Agent, error)
	// RevokeAgent marks the agent revoked at at (a second revocation keeps
	// the first time); ErrNotFound when there is no such agent.
	RevokeAgent(ctx context.Context, id string, at time.Time) error
	// RenewAgentCert pins the agent's renewed certificate (Fingerprint,
	// Serial and CertExpires of renewed), with presented, the certificate
	// the renewal was asked with, as PreviousFingerprint, in one atomic
	// step and only if the agent is not revoked and presented is its
	// current certificate: ErrCertSuperseded otherwise, ErrNotFound when
	// there is no such agent. A replaced certificate still authenticates
	// until it expires but never renews again: a copy of an old key (a
	// backup, a cloned machine) cannot take the agent's place.
	RenewAgentCert(ctx context.Context, id, presented string, renewed Agent) error
}

// Redeemable checks a token read at now: the error EnrollToken returns
// for it, or nil.
func (t EnrollToken) Redeemable(now time.Time) error {
	switch {
	case !t.Used.IsZero():
		return ErrTokenUsed
	case !now.Before(t.Expires):
		return ErrTokenExpired
	}
	return nil
}
