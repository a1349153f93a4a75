package pgstate

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dirgate/dirgate/cluster/schema/migration"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the state tables' migrations, from
// migrations/NNNN_name.sql. Their versions are 1 to 99 (package schema
// lists the ranges): databases of earlier releases recorded them so.
func Migrations() []migration.Migration {
	return migration.MustParseDir(migrationFiles, "migrations")
}

// Migrate brings the state tables of the pool's search path up to date. A
// server migrates every dirgate table at once with package schema; this
// one serves the store's own tests and tools.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := migration.Apply(ctx, pool, Migrations()); err != nil {
		return fmt.Errorf("pgstate: %w", err)
	}
	return nil
}
