package dirsync

import (
	"context"
	"errors"

	"github.com/dirgate/dirgate/cache"
)

// Cached reads what the cache holds for the connector being synced, as
// the last committed run left it. An incremental source whose upstream
// reports changes relative to state it does not repeat (Graph's
// members@delta lists only the members added and removed) reads that
// state here instead of keeping a copy in its cursor: the cursor is one
// stored value, which must stay small however large the directory is.
type Cached interface {
	// Get returns the cached entry with stable ID id; nil when there is
	// none.
	Get(ctx context.Context, id string) (*cache.Entry, error)
	// GroupsListing returns the stable IDs of the cached groups that list
	// dn as a member.
	GroupsListing(ctx context.Context, dn string) ([]string, error)
}

type cachedKey struct{}

// WithCached returns ctx carrying c for IncrementalSource.Changes and
// PriorSource.FullAfter. It
// travels in the context rather than as an argument so that wrappers of
// a source (tests' hooks, decorators) pass it on without knowing of it.
func WithCached(ctx context.Context, c Cached) context.Context {
	return context.WithValue(ctx, cachedKey{}, c)
}

// CachedFrom returns the Cached the engine passed with ctx, nil if none.
func CachedFrom(ctx context.Context) Cached {
	c, _ := ctx.Value(cachedKey{}).(Cached)
	return c
}

// storeCached is Cached over the engine's store, one read transaction per
// call: a source reads a few entries while it waits on its upstream, and
// must not hold a transaction open that long.
type storeCached struct {
	store *cache.Store
	conn  string
}

func (s storeCached) Get(ctx context.Context, id string) (*cache.Entry, error) {
	var e *cache.Entry
	err := s.store.View(ctx, func(v *cache.View) error {
		var err error
		e, err = v.Get(s.conn, id)
		if errors.Is(err, cache.ErrNotFound) {
			e, err = nil, nil
		}
		return err
	})
	return e, err
}

func (s storeCached) GroupsListing(ctx context.Context, dn string) ([]string, error) {
	var ids []string
	err := s.store.View(ctx, func(v *cache.View) error {
		gs, err := v.Groups(&cache.Entry{Connector: s.conn, DN: dn})
		for _, g := range gs {
			ids = append(ids, g.ID)
		}
		return err
	})
	return ids, err
}
