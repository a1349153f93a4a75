// Package schema migrates every dirgate table in PostgreSQL: one versioned
// set, applied in version order under one advisory lock and recorded in
// schema_migrations (see package migration for the engine).
//
// Each package owning tables declares its migrations, numbered in its own
// range so that packages add migrations without coordinating:
//
//	  1– 99  state/pgstate     sign-in and sync state
//	100–199  cluster/lease     the leader lease
//	200–299  cluster/changelog the change log
//	300–399  cluster/syncreq   the "Synchronize now" queue
//	400–499  cluster/registry  the replica registry
//
// Versions 1.. were recorded by releases that migrated only the state
// tables, so their databases upgrade by applying the rest.
package schema

import (
	"context"

	"github.com/dirgate/dirgate/cluster/changelog"
	"github.com/dirgate/dirgate/cluster/lease"
	"github.com/dirgate/dirgate/cluster/registry"
	"github.com/dirgate/dirgate/cluster/schema/migration"
	"github.com/dirgate/dirgate/cluster/syncreq"
	"github.com/dirgate/dirgate/state/pgstate"
)

// All returns every dirgate migration in version order.
func All() ([]migration.Migration, error) {
	return migration.Merge(pgstate.Migrations(), lease.Migrations(), changelog.Migrations(), syncRequests, registry.Migrations())
}

// syncRequests creates the "Synchronize now" queue; its statements create
// only what is missing, as syncreq.Migrate, which its tests use, runs them
// without recording a version.
var syncRequests = []migration.Migration{{Version: 300, Name: "0300_sync_request.sql", SQL: syncreq.Schema}}

// Migrate applies every pending migration. It is safe to run from several
// replicas at once, and leaves alone the versions a newer release recorded.
func Migrate(ctx context.Context, db migration.DB) error {
	_, err := Apply(ctx, db)
	return err
}

// Apply is Migrate returning the names of the migrations it applied, for
// `dirgate migrate` to print.
func Apply(ctx context.Context, db migration.DB) ([]string, error) {
	ms, err := All()
	if err != nil {
		return nil, err
	}
	done, err := migration.Apply(ctx, db, ms)
	return names(done), err
}

// Pending returns the names of the migrations not applied yet, changing
// nothing: a server configured with `migrate: manual` refuses to start
// while it is not empty.
func Pending(ctx context.Context, db migration.DB) ([]string, error) {
	ms, err := All()
	if err != nil {
		return nil, err
	}
	todo, err := migration.Pending(ctx, db, ms)
	return names(todo), err
}

func names(ms []migration.Migration) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}
