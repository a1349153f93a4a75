package dirsync

import (
	"context"
	"errors"

	"github.com/dirgate/dirgate/cache"
)

// Source is an upstream directory that can list its users and groups.
type Source interface {
	// Full passes every in-scope object to emit. It must fail rather than
	// return a partial listing: the engine takes what is missing for
	// deletions. Listing.Cursor, when the source can sync incrementally,
	// marks the state the listing reflects (taken before reading, so no
	// change made during the read is lost).
	Full(ctx context.Context, emit func(*cache.Entry) error) (Listing, error)
}

// Listing describes a finished full read.
type Listing struct {
	Host   string
	Cursor []byte
}

// PriorSource is a source with no incremental reads that still uses what
// the last full listing left (Google's group etags, kept on the cached
// groups, which spare requests for unchanged groups): the engine passes
// it the cursor committed with the cached generation, nil when there is
// none, and the cached entries through the context (CachedFrom), instead
// of calling Full.
type PriorSource interface {
	Source
	FullAfter(ctx context.Context, prior []byte, emit func(*cache.Entry) error) (Listing, error)
}

// KnownFullSource is a source whose full read can be given the cached IDs
// and hashes: for an entry it reads with the hash known gives, it may pass
// cache.Unchanged instead of the entry (a read through a sync agent, which
// then sends a few bytes instead of the entry). The engine checks the
// stand-in's hash against the cache and keeps the cached entry.
type KnownFullSource interface {
	Source
	FullKnown(ctx context.Context, known Known, emit func(*cache.Entry) error) (Listing, error)
}

// ScopedSource is a source whose scope is not all in the hub's connector
// settings: a directory read through a sync agent, whose filters and
// attributes are in the agent's own configuration. Scope returns the
// fingerprint of those settings (ScopeOf of the agent's connector; empty
// when unknown); a change of it makes the next run a full one, as a change
// of the connector's settings does. An error (no agreed scope) fails the
// run.
type ScopedSource interface {
	Source
	Scope() (string, error)
}

// Change is one incremental change: an entry to add or replace whole, or
// the stable ID of an entry that left the upstream (or its scope).
type Change struct {
	Upsert   *cache.Entry
	DeleteID string
}

// IncrementalSource can read only what changed since a cursor.
type IncrementalSource interface {
	Source
	// Changes passes what changed since cursor to emit and returns the
	// cursor of the state reached, and the number of entries it read from
	// the upstream. ErrCursorInvalid means a full sync is needed.
	Changes(ctx context.Context, cursor []byte, known Known, emit func(Change) error) (ChangeSet, error)
}

// Known is the set of stable IDs the cache holds for the connector (with
// their content hashes). A source whose protocol reports the present
// entries rather than the deleted ones (syncrepl's present phase) derives
// deletions from it.
type Known map[string]uint64

// Has reports whether id is cached.
func (k Known) Has(id string) bool { _, ok := k[id]; return ok }

// ChangeSet describes a finished incremental read.
type ChangeSet struct {
	Host   string
	Cursor []byte
	Read   int // entries the upstream sent
	Method string
}

// ErrCursorInvalid means the stored cursor can no longer be used (expired,
// another server, unknown to the upstream): only a full sync can continue.
var ErrCursorInvalid = errors.New("incremental cursor is no longer valid")
