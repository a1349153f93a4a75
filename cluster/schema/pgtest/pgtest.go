// Package pgtest gives a test a PostgreSQL schema of its own on the test
// environment's server, dropped when the test ends, so tests and runs do
// not see each other's rows.
package pgtest

import (
	"context"
	"crypto/rand"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dirgate/dirgate/internal/testenv"
)

// URL is the test server: DIRGATE_PG_URL, else the test environment file
// (which skips, or fails when upstreams are required).
func URL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("DIRGATE_PG_URL"); u != "" {
		return u
	}
	return testenv.PostgresURL(t)
}

// DB is one test's private schema.
type DB struct {
	URL    string // the server's URL
	Schema string // the schema's name
	Pool   *pgxpool.Pool
}

// New creates an empty schema for t and a pool whose connections use it.
func New(t testing.TB) *DB {
	t.Helper()
	ctx := context.Background()
	url := URL(t)
	name := "t_" + strings.ToLower(rand.Text())
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, url)
		if err == nil {
			_, err = c.Exec(ctx, "DROP SCHEMA "+name+" CASCADE")
			c.Close(ctx)
		}
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	d := &DB{URL: url, Schema: name}
	d.Pool = d.NewPool(t)
	return d
}

// NewPool opens another pool on the schema (a second replica), closed
// when the test ends.
func (d *DB) NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(d.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = d.Schema
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// SearchPathURL is the server's URL with the schema as search path, for
// code that opens its own connections from a URL (a config file).
func (d *DB) SearchPathURL() string {
	sep := "?"
	if strings.Contains(d.URL, "?") {
		sep = "&"
	}
	return d.URL + sep + "search_path=" + d.Schema
}
