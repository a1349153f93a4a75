// Package migration applies versioned SQL migrations to PostgreSQL and
// records them in the table schema_migrations. It is the engine under
// package schema, kept apart so that the packages owning tables (pgstate,
// lease, ...) can declare their migrations without importing schema,
// which imports them.
package migration

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Migration is one versioned schema change. Versions are unique across
// every package (see package schema for the ranges); Name is recorded with
// the version.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// MustParse returns the migrations in fsys, files named NNNN_name.sql at
// its root, in version order. It is meant for embedded files: a misnamed
// file is a programming error that any test catches, so it panics.
func MustParse(fsys fs.FS) []Migration {
	ms, err := parse(fsys)
	if err != nil {
		panic(err)
	}
	return ms
}

// MustParseDir is MustParse of the directory dir of fsys (an embed.FS
// holding migrations/*.sql).
func MustParseDir(fsys fs.FS, dir string) []Migration {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err)
	}
	return MustParse(sub)
}

func parse(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, name := range names {
		v, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration: %s: name does not start with a version", name)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(b)})
	}
	return Merge(out)
}

// Merge joins lists of migrations into one in version order; two
// migrations with the same version are an error.
func Merge(lists ...[]Migration) ([]Migration, error) {
	out := slices.Concat(lists...)
	slices.SortFunc(out, func(a, b Migration) int { return cmp.Compare(a.Version, b.Version) })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("migration: %s and %s share version %d", out[i-1].Name, out[i].Name, out[i].Version)
		}
	}
	return out, nil
}

// DB is what migrating needs; *pgxpool.Pool and *pgx.Conn satisfy it.
type DB interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// lockKey is the transaction-scoped advisory lock that serialises
// migrations across replicas ("dirgate" in ASCII, then 0). Releases before
// package schema used it for the state tables' own migrations, so an older
// replica migrating at the same time waits on the same lock.
const lockKey int64 = 0x6469726761746500

// createTable is the bookkeeping table, in the shape earlier releases
// created it.
const createTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version int PRIMARY KEY,
	name text NOT NULL,
	applied timestamptz NOT NULL DEFAULT now())`

// Apply applies, in one transaction and in version order, the migrations
// of ms not yet recorded in schema_migrations of the connection's search
// path, and returns them. The advisory lock makes replicas starting at
// once apply each migration once: the others wait, then find nothing left
// to do. Versions recorded that ms does not know (a newer release's) are
// left alone, so an older replica keeps running during a rolling upgrade.
func Apply(ctx context.Context, db DB, ms []Migration) ([]Migration, error) {
	var todo []Migration
	err := pgx.BeginTxFunc(ctx, db, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if _, err := tx.Exec(ctx, createTable); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var err error
		if todo, err = pending(ctx, tx, ms); err != nil {
			return err
		}
		for _, m := range todo {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
				return fmt.Errorf("record %s: %w", m.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return todo, nil
}

// Pending returns the migrations of ms not recorded yet, changing nothing.
func Pending(ctx context.Context, db DB, ms []Migration) ([]Migration, error) {
	var out []Migration
	err := pgx.BeginTxFunc(ctx, db, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			out = ms
			return nil
		}
		var err error
		out, err = pending(ctx, tx, ms)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	return out, nil
}

// pending returns the migrations of ms that schema_migrations lacks.
func pending(ctx context.Context, tx pgx.Tx, ms []Migration) ([]Migration, error) {
	rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, err
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, m := range ms {
		if !slices.Contains(done, int32(m.Version)) {
			out = append(out, m)
		}
	}
	return out, nil
}
