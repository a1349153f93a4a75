// Package testenv reads the integration-test environment that
// scripts/testenv/up.sh writes (DIRGATE_TESTENV): addresses, accounts and
// certificates of the real upstream servers the tests run against. It also
// starts private instances of those servers through the same scripts, for
// tests that must change or stop them without disturbing other tests.
package testenv

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
	return LoadFile(t, path)
}

// LoadFile reads an environment file as the scripts write them: lines
// `export NAME='value'`, everything else ignored.
func LoadFile(t testing.TB, path string) Env {
	t.Helper()
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

// Instance is a private server started by one of the instance scripts of
// scripts/testenv (openldap.sh, postgres.sh, ...) in a directory of its own.
type Instance struct {
	// Env is the instance's environment file ($DIR/env).
	Env    Env
	script string
	vars   []string
}

// StartInstance runs `script start` with vars (NAME=value, among them the
// script's instance directory variable dirVar, set here to a fresh
// directory under /tmp that the server's unprivileged account can enter)
// and stops the instance, deleting its directory, when the test ends. It
// skips or fails like Load when there is no test environment.
func StartInstance(t testing.TB, script, dirVar string, vars ...string) *Instance {
	t.Helper()
	Load(t)
	// Not t.TempDir: its parents are private to root, and postgres.sh runs
	// the server as the postgres account. The script creates the directory
	// and refuses to wipe one it did not create, so only a name is reserved.
	dir, err := os.MkdirTemp("", "dirgate-it-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	in := &Instance{script: script, vars: append(vars, dirVar+"="+dir)}
	t.Cleanup(func() { in.run(t, "stop") })
	in.Run(t, "start")
	in.Env = LoadFile(t, filepath.Join(dir, "env"))
	return in
}

// Run runs a subcommand of the instance's script (halt, resume, status...),
// failing the test when it fails.
func (in *Instance) Run(t testing.TB, cmd string) {
	t.Helper()
	if out, err := in.run(t, cmd); err != nil {
		t.Fatalf("%s %s: %v\n%s", in.script, cmd, err, out)
	}
}

func (in *Instance) run(t testing.TB, cmd string) ([]byte, error) {
	_, here, _, _ := runtime.Caller(0)
	c := exec.Command(filepath.Join(filepath.Dir(here), "..", "..", "scripts", "testenv", in.script), cmd)
	c.Env = append(os.Environ(), in.vars...)
	out, err := c.CombinedOutput()
	if err != nil && cmd == "stop" {
		t.Errorf("%s stop: %v\n%s", in.script, err, out)
	}
	return out, err
}

// FreePort returns a loopback TCP port nothing listens on right now.
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}
