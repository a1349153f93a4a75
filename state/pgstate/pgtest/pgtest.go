// Package pgtest gives tests of the PostgreSQL state stores a private,
// migrated schema of the test database (cluster/schema/pgtest's, whose TCP
// proxy that cuts the database away it shares) and stores on it as several
// replicas have them.
package pgtest

import (
	"bytes"
	"context"
	"testing"

	schematest "github.com/dirgate/dirgate/cluster/schema/pgtest"
	"github.com/dirgate/dirgate/state/pgstate"
)

// Key is the signing-key encryption key every test replica shares.
var Key = bytes.Repeat([]byte{7}, 32)

// DB is one test's private schema with pgstate's tables.
type DB struct{ *schematest.DB }

// New creates and migrates the schema (see schematest.New for the
// server and when the test is skipped).
func New(t testing.TB) *DB {
	t.Helper()
	d := &DB{schematest.New(t)}
	if err := pgstate.Migrate(context.Background(), d.DB.Pool); err != nil {
		t.Fatal(err)
	}
	return d
}

// Store returns a store on the schema, as one replica has it (through addr
// when not empty).
func (d *DB) Store(t testing.TB, addr string) *pgstate.Store {
	t.Helper()
	s, err := pgstate.New(d.PoolVia(t, addr), Key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
