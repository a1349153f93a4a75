package lease

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/dirgate/dirgate/cluster/schema/migration"
)

//go:embed schema.sql
var schema string

// Migrations returns the lease table's migrations (versions 100 to 199,
// see package schema). The first creates the table only if missing:
// releases before package schema created it without recording a version.
func Migrations() []migration.Migration {
	return []migration.Migration{{Version: 100, Name: "0100_leader_lease.sql", SQL: schema}}
}

// Migrate creates the lease table if it does not exist. It is idempotent and
// safe to run from several replicas at once. A server migrates every dirgate
// table at once with package schema; this one serves the lease's own tests.
func Migrate(ctx context.Context, db DB) error {
	if _, err := migration.Apply(ctx, db, Migrations()); err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	return nil
}
