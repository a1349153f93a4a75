// Package testenv reads the integration-test environment that
// scripts/testenv/up.sh writes (DIRGATE_TESTENV): addresses, accounts and
// certificates of the real upstream servers the tests run against.
package testenv

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// Env maps the file's variable names to their values.
type Env map[string]string

// Load reads the environment, skipping the test when there is none, or
// failing it when DIRGATE_REQUIRE_UPSTREAMS=1 (as `make test` sets).
func Load(t testing.TB) Env {
	t.Helper()
	path := os.Getenv("DIRGATE_TESTENV")
	if path == "" {
		if os.Getenv("DIRGATE_REQUIRE_UPSTREAMS") == "1" {
			t.Fatal("DIRGATE_TESTENV is not set but upstreams are required: run scripts/testenv/up.sh")
		}
		t.Skip("no test upstreams: run `make test`, or scripts/testenv/up.sh and set DIRGATE_TESTENV")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("test environment: %v", err)
	}
	defer f.Close()
	e := Env{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "export ")
		if !ok {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		e[k] = strings.ReplaceAll(strings.Trim(v, "'"), `'\''`, "'")
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("test environment: %v", err)
	}
	return e
}

// Get returns a variable, failing the test when it is missing.
func (e Env) Get(t testing.TB, k string) string {
	t.Helper()
	v, ok := e[k]
	if !ok {
		t.Fatalf("test environment has no %s", k)
	}
	return v
}

// PostgresURL returns the connection string of the test PostgreSQL
// (DIRGATE_PG_URL, written by scripts/testenv/postgres.sh): role dirgate,
// owner of its database, allowed to create schemas and databases. It skips
// or fails like Load.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return Load(t).Get(t, "DIRGATE_PG_URL")
}
