package schema

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dirgate/dirgate/cluster/schema/pgtest"
	"github.com/dirgate/dirgate/state/pgstate"
)

func allNames(t *testing.T) []string {
	t.Helper()
	ms, err := All()
	if err != nil {
		t.Fatal(err)
	}
	return names(ms)
}

// recorded returns the versions schema_migrations holds, in order.
func recorded(t *testing.T, pool *pgxpool.Pool) []int {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func tableExists(t *testing.T, pool *pgxpool.Pool, name string) bool {
	t.Helper()
	var ok bool
	if err := pool.QueryRow(t.Context(), `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// A fresh database: everything is pending, Apply applies it all in order,
// then nothing is pending and a second Apply does nothing.
func TestApplyFresh(t *testing.T) {
	pool := pgtest.New(t).Pool
	ctx := t.Context()
	want := allNames(t)
	pending, err := Pending(ctx, pool)
	if err != nil || !slices.Equal(pending, want) {
		t.Fatalf("Pending on an empty schema = %v, %v; want %v", pending, err, want)
	}
	if tableExists(t, pool, "schema_migrations") {
		t.Error("Pending created schema_migrations")
	}
	applied, err := Apply(ctx, pool)
	if err != nil || !slices.Equal(applied, want) {
		t.Fatalf("Apply = %v, %v; want %v", applied, err, want)
	}
	for _, table := range []string{"oidc_refresh", "leader_lease", "changelog", "sync_request", "cluster_replica"} {
		if !tableExists(t, pool, table) {
			t.Errorf("no table %s after Apply", table)
		}
	}
	if pending, err := Pending(ctx, pool); err != nil || len(pending) != 0 {
		t.Errorf("Pending after Apply = %v, %v", pending, err)
	}
	if again, err := Apply(ctx, pool); err != nil || len(again) != 0 {
		t.Errorf("second Apply = %v, %v; want nothing", again, err)
	}
}

// Replicas starting at once: every one succeeds and each migration is
// applied and recorded once.
func TestApplyConcurrently(t *testing.T) {
	db := pgtest.New(t)
	const n = 6
	applied := make([][]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		pool := db.NewPool(t)
		wg.Go(func() { applied[i], errs[i] = Apply(t.Context(), pool) })
	}
	wg.Wait()
	var all []string
	for i := range n {
		if errs[i] != nil {
			t.Errorf("replica %d: %v", i, errs[i])
		}
		all = append(all, applied[i]...)
	}
	slices.Sort(all)
	if want := allNames(t); !slices.Equal(all, want) {
		t.Errorf("applied across replicas %v, want each of %v once", all, want)
	}
	if got := recorded(t, db.Pool); len(got) != len(allNames(t)) {
		t.Errorf("schema_migrations holds %v", got)
	}
}

// A database of an earlier release: pgstate.Migrate recorded the state
// tables' versions and lease.Migrate created the lease table without a
// record. It upgrades by applying the rest only.
func TestUpgradeFromStateOnlyRelease(t *testing.T) {
	pool := pgtest.New(t).Pool
	ctx := t.Context()
	// What the earlier release executed, verbatim.
	for _, sql := range []string{
		`CREATE TABLE IF NOT EXISTS schema_migrations (
			version int PRIMARY KEY,
			name text NOT NULL,
			applied timestamptz NOT NULL DEFAULT now())`,
		pgstate.Migrations()[0].SQL,
		`INSERT INTO schema_migrations (version, name) VALUES (1, '0001_state.sql')`,
		`CREATE TABLE IF NOT EXISTS leader_lease (name text PRIMARY KEY, holder text NOT NULL, epoch bigint NOT NULL, expires_at timestamptz NOT NULL)`,
		`INSERT INTO leader_lease VALUES ('sync', 'old', 7, now())`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatalf("set up the earlier release's schema: %v", err)
		}
	}
	applied, err := Apply(ctx, pool)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if slices.Contains(applied, "0001_state.sql") || !slices.Contains(applied, "0100_leader_lease.sql") {
		t.Errorf("upgrade applied %v; want everything after 0001_state.sql", applied)
	}
	var epoch int64
	if err := pool.QueryRow(ctx, `SELECT epoch FROM leader_lease WHERE name = 'sync'`).Scan(&epoch); err != nil || epoch != 7 {
		t.Errorf("the lease row after the upgrade: epoch %d, %v; want 7 kept", epoch, err)
	}
	if pending, err := Pending(ctx, pool); err != nil || len(pending) != 0 {
		t.Errorf("Pending after the upgrade = %v, %v", pending, err)
	}
}

// A version recorded by a newer release is left alone: an older replica
// still migrates and starts during a rolling upgrade.
func TestNewerVersionTolerated(t *testing.T) {
	pool := pgtest.New(t).Pool
	ctx := t.Context()
	if err := Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')`); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, pool); err != nil {
		t.Errorf("Migrate with a newer version recorded: %v", err)
	}
	if pending, err := Pending(ctx, pool); err != nil || len(pending) != 0 {
		t.Errorf("Pending = %v, %v", pending, err)
	}
}

// The packages' own Migrate functions record what package schema does,
// so a database they set up upgrades like any other.
func TestPackageMigrateRecords(t *testing.T) {
	pool := pgtest.New(t).Pool
	ctx := t.Context()
	if err := pgstate.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	applied, err := Apply(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(allNames(t)) - len(pgstate.Migrations()); len(applied) != want {
		t.Errorf("after pgstate.Migrate, Apply applied %v; want %d migrations", applied, want)
	}
}

// A failing migration rolls every one of its batch back.
func TestApplyAtomic(t *testing.T) {
	pool := pgtest.New(t).Pool
	ctx := context.Background()
	// A table in the way of the registry's migration makes it fail.
	if _, err := pool.Exec(ctx, `CREATE TABLE cluster_replica (x int)`); err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(ctx, pool); err == nil {
		t.Fatal("Apply succeeded over a conflicting table")
	}
	if tableExists(t, pool, "oidc_refresh") || tableExists(t, pool, "schema_migrations") {
		t.Error("a failed Apply left part of its work")
	}
}
