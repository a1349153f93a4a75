package lease

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/jackc/pgx/v5"
)

//go:embed schema.sql
var schema string

// migrateLockKey is the transaction-scoped advisory lock that serialises
// concurrent migrations: two replicas starting together would otherwise race
// inside CREATE TABLE IF NOT EXISTS and one would fail on the catalog's
// unique index.
const migrateLockKey int64 = 0x6469726761746501 // "dirgate" + 1

// Migrate creates the lease table if it does not exist. It is idempotent and
// safe to run from several replicas at once.
func Migrate(ctx context.Context, db DB) error {
	return pgx.BeginTxFunc(ctx, db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLockKey); err != nil {
			return fmt.Errorf("lease: migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, schema); err != nil {
			return fmt.Errorf("lease: create table: %w", err)
		}
		return nil
	})
}
