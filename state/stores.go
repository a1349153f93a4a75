package state

import (
	"context"
	"time"
)

// Keys holds the OIDC provider's signing key set. The set is encoded by
// the provider (it holds private keys in a format only the provider
// interprets); the store keeps it whole so that a rotation is one write.
type Keys interface {
	// SigningKeys returns the stored key set, nil when none.
	SigningKeys(ctx context.Context) ([]byte, error)
	// PublishSigningKeys replaces the key set prev (nil when none) by next;
	// ErrConflict when another writer changed it since prev was read. A
	// new key is used only after this returns, so every replica's JWKS
	// can serve it before a token signed with it is seen.
	PublishSigningKeys(ctx context.Context, prev, next []byte) error
}

// Verifier is an offline verifier: an argon2id hash of the password the
// upstream last accepted for an account, when it was stored, and the
// account's password stamp at that moment.
type Verifier struct {
	Created time.Time // to the second
	Stamp   string
	Hash    string // argon2id PHC string
}

// Verifiers holds offline verifiers, one per account.
type Verifiers interface {
	// Verifier returns the account's verifier; ErrNotFound when none,
	// ErrCorrupt when it cannot be read.
	Verifier(ctx context.Context, connector, id string) (Verifier, error)
	// PutVerifier stores the account's verifier.
	PutVerifier(ctx context.Context, connector, id string, v Verifier) error
	// DeleteVerifier removes the account's verifier, if any.
	DeleteVerifier(ctx context.Context, connector, id string) error
	// DeleteAllVerifiers removes every verifier and returns how many there
	// were.
	DeleteAllVerifiers(ctx context.Context) (int, error)
}

// Engine is what the sync engine remembers about a connector between runs.
// The JSON encoding is the on-disk format of earlier releases.
type Engine struct {
	LastFull time.Time `json:"last_full"`
	// NeedFull forces the next run to be full: after an error, or when
	// deletions were paused.
	NeedFull bool `json:"need_full"`
	// LastError is set when the last run failed; deletions are paused in
	// the run after it.
	LastError string `json:"last_error,omitempty"`
	// Scope fingerprints the settings that decide what is synced; when it
	// changes, only a full run can tell what entered or left the scope.
	Scope string `json:"scope,omitempty"`
}

// Run is the record of one sync run, kept as sync history.
type Run struct {
	Connector string    `json:"connector"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Trigger   string    `json:"trigger"` // cli, schedule, api, console
	Mode      string    `json:"mode"`    // full, incremental
	DryRun    bool      `json:"dry_run,omitempty"`
	Added     int       `json:"added"`
	Updated   int       `json:"updated"`
	Deleted   int       `json:"deleted"`
	Unchanged int       `json:"unchanged"`
	Read      int       `json:"read"` // entries read from the upstream
	// Method says how an incremental run read its changes (syncrepl,
	// dirsync, usn).
	Method string `json:"method,omitempty"`
	// DeletesPaused counts deletions held back because the connector was in
	// error on its previous run; they are applied by the next full run.
	DeletesPaused int           `json:"deletes_paused,omitempty"`
	Host          string        `json:"host,omitempty"`
	Duration      time.Duration `json:"duration"`
	Error         string        `json:"error,omitempty"`
	Blocked       string        `json:"blocked,omitempty"` // why safety stopped the run
}

// Sync holds the sync engine's per-connector state and history. The
// incremental cursor is also written by the cache in the same transaction
// as the entries it describes (a crash cannot separate them); this store
// reads it.
type Sync interface {
	// EngineState returns conn's state, the zero value when none.
	EngineState(ctx context.Context, conn string) (Engine, error)
	// SaveEngineState stores conn's state.
	SaveEngineState(ctx context.Context, conn string, st Engine) error
	// Cursor returns conn's incremental-sync cursor, nil when none.
	Cursor(ctx context.Context, conn string) ([]byte, error)
	// RecordRun stores a run that committed no generation.
	RecordRun(ctx context.Context, r *Run) error
	// Runs returns up to limit most recent runs of conn, newest first.
	Runs(ctx context.Context, conn string, limit int) ([]Run, error)
	// HeldPlan returns the plan of conn's last blocked run, held for the
	// admin's review (encoded by the sync engine), nil when none.
	HeldPlan(ctx context.Context, conn string) ([]byte, error)
	// HoldPlan stores conn's held plan, replacing any; nil drops it.
	HoldPlan(ctx context.Context, conn string, plan []byte) error
}
