package client

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/ldapsource"
	"github.com/dirgate/dirgate/testconn"
)

// executor runs the hub's requests against the directory with the same code
// as a direct connector on the hub: sync reads through ldapsource,
// password checks through authn's pooled checker, Test Connection through
// testconn. Checks run in parallel up to the pool size; sync reads one at
// a time (a second waits), since two reads of one directory only compete.
type executor struct {
	conn    *config.Connector
	source  *ldapsource.Source
	checker *authn.LDAPChecker
	checks  chan struct{} // a slot per running check
	reads   chan struct{} // one slot: the running sync read
}

func newExecutor(c *config.Connector, poolSize int, log *slog.Logger) (*executor, error) {
	src, err := ldapsource.New(c, log)
	if err != nil {
		return nil, err
	}
	chk, err := authn.NewLDAPChecker(c, poolSize)
	if err != nil {
		return nil, err
	}
	return &executor{conn: c, source: src, checker: chk,
		checks: make(chan struct{}, max(1, poolSize)), reads: make(chan struct{}, 1)}, nil
}

func (x *executor) close() { x.checker.Close() }

// acquire takes a slot of sem, or fails when ctx ends first.
func acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for a free slot: %w", context.Cause(ctx))
	}
}

// full reads every in-scope entry. Entries are stamped with the connector,
// as the hub's engine stamps a direct source's: the hub refuses a reply
// holding entries of another connector.
func (x *executor) full(ctx context.Context, emit func(*cache.Entry) error) (dirsync.Listing, error) {
	if err := acquire(ctx, x.reads); err != nil {
		return dirsync.Listing{}, err
	}
	defer func() { <-x.reads }()
	return x.source.Full(ctx, func(e *cache.Entry) error { e.Connector = x.conn.Name; return emit(e) })
}

// changes reads what changed since cursor; known is what the hub caches.
func (x *executor) changes(ctx context.Context, cursor []byte, known dirsync.Known, emit func(dirsync.Change) error) (dirsync.ChangeSet, error) {
	if err := acquire(ctx, x.reads); err != nil {
		return dirsync.ChangeSet{}, err
	}
	defer func() { <-x.reads }()
	return x.source.Changes(ctx, cursor, known, func(c dirsync.Change) error {
		if c.Upsert != nil {
			c.Upsert.Connector = x.conn.Name
		}
		return emit(c)
	})
}

// check verifies a password with a bind as dn: nil or a typed
// *authn.Error.
func (x *executor) check(ctx context.Context, dn, password string) (string, error) {
	if err := acquire(ctx, x.checks); err != nil {
		return "", &authn.Error{Reason: authn.ReasonUnavailable, Connector: x.conn.Name, Err: err}
	}
	defer func() { <-x.checks }()
	return x.checker.Check(ctx, dn, password)
}

// test runs Test Connection from the agent's side of the network.
func (x *executor) test(ctx context.Context) *testconn.Report { return testconn.Run(ctx, x.conn) }
