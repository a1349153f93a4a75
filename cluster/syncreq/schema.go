package syncreq

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/dirgate/dirgate/cluster/lease"
)

// Schema creates the sync_request table: one row per "Synchronize now"
// asked of the cluster. epoch and holder name the leader term that claimed
// it (NULL while unclaimed); a row whose epoch is older than the current
// leader's, and not done, was claimed by a leader that is gone and is
// claimed again. done is set with result or error when the run ended.
const Schema = `CREATE TABLE IF NOT EXISTS sync_request (
	id        bigserial PRIMARY KEY,
	connector text NOT NULL,
	options   jsonb NOT NULL,
	requester text NOT NULL,
	created   timestamptz NOT NULL DEFAULT clock_timestamp(),
	epoch     bigint,
	holder    text,
	claimed   timestamptz,
	done      timestamptz,
	result    jsonb,
	error     jsonb
);
CREATE INDEX IF NOT EXISTS sync_request_open ON sync_request (id) WHERE done IS NULL;
`

// migrateLockKey serialises concurrent Migrate calls (see lease.Migrate).
const migrateLockKey int64 = 0x6469726761746503 // "dirgate" + 3

// Migrate creates the table if it does not exist; idempotent and safe to
// run from several replicas at once. cluster/schema applies Schema with
// the rest of dirgate's migrations; this is for this package's tests.
func Migrate(ctx context.Context, db lease.DB) error {
	return pgx.BeginTxFunc(ctx, db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLockKey); err != nil {
			return fmt.Errorf("syncreq: migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, Schema); err != nil {
			return fmt.Errorf("syncreq: create table: %w", err)
		}
		return nil
	})
}
