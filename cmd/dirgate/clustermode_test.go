package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dirgate/dirgate/cluster/schema/pgtest"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/demodir"
)

// testReplica is a replica's configuration file and admin address.
type testReplica struct{ path, admin string }

// clusterFixture writes, for each name, the configuration of a replica on
// one private schema of the test database and the demo directory, and
// returns them and a pool on the schema. The database password is in the
// environment, as an operator would give it.
func clusterFixture(t *testing.T, names ...string) (map[string]testReplica, *pgxpool.Pool) {
	t.Helper()
	db := pgtest.New(t)
	u, err := url.Parse(db.SearchPathURL())
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	u.User = url.User(u.User.Username())
	t.Setenv("DIRGATE_TEST_PG_PASSWORD", pw)
	up, err := demodir.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = up.Stop() })
	t.Setenv("DEMO_PW", demodir.SyncPassword)
	t.Setenv("DIRGATE_TEST_ADMIN_TOKEN", "test-admin-token-0123456789")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cluster.key"), []byte(strings.Repeat("ab", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	replicas := map[string]testReplica{}
	for _, name := range names {
		r := testReplica{path: filepath.Join(dir, name+".yaml"), admin: freePort(t)}
		y := fmt.Sprintf("cache: {dir: %s}\nldap: {listen: %q}\nadmin: {listen: %q, token_env: DIRGATE_TEST_ADMIN_TOKEN}\n"+
			"connectors: [{name: demo, type: openldap, host: 127.0.0.1, port: %d, encryption: none, bind_dn: %q, bind_password_env: DEMO_PW, root_dn: %q}]\n"+
			"log: {level: debug}\n"+
			"cluster: {postgres: %q, postgres_password_env: DIRGATE_TEST_PG_PASSWORD, encryption_key_file: cluster.key, replica_name: %s, lease_ttl: 2s, poll_interval: 200ms}\n",
			filepath.Join(dir, name), freePort(t), r.admin, up.Port(), demodir.SyncDN, demodir.Base, u.String(), name)
		if err := os.WriteFile(r.path, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		replicas[name] = r
	}
	return replicas, db.Pool
}

// startServe runs `dirgate serve -c file` and waits until its admin
// listener answers; the function returned stops it.
func startServe(t *testing.T, r testReplica) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := execute(ctx, "serve", "-c", r.path); done <- err }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve -c %s: %v", r.path, err)
		}
	}
	t.Cleanup(stop)
	waitFor(t, r.admin)
	return stop
}

// eventually polls cond until it holds, failing the test after a generous
// deadline (the machine is loaded).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leaderName is the replica name of the sync lease's unexpired holder, ""
// when none.
func leaderName(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var holder string
	err := pool.QueryRow(context.Background(), `SELECT holder FROM leader_lease WHERE name = 'sync' AND expires_at > clock_timestamp()`).Scan(&holder)
	var pgErr *pgconn.PgError
	if errors.Is(err, pgx.ErrNoRows) || errors.As(err, &pgErr) && pgErr.Code == "42P01" { // not migrated yet
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	name, _, _ := strings.Cut(holder, "/")
	return name
}

// runs is the shared sync history: "trigger:ended" per run, oldest first.
func runs(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT run->>'trigger', run->>'end' NOT LIKE '0001-%' FROM sync_run ORDER BY start`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var trigger string
		var ended bool
		err := r.Scan(&trigger, &ended)
		return fmt.Sprintf("%s:%v", trigger, ended), err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestClusterLeadership: two replicas started with `serve -c file` on one
// database: the first leads and syncs, the second does not sync but
// serves what the first synced (the change log), and its
// "Synchronize now" (the CLI through its admin API) runs on the leader;
// when the leader stops, the second takes the lease over without
// repeating the run the first made.
func TestClusterLeadership(t *testing.T) {
	replicas, pool := clusterFixture(t, "a", "b")
	log := captureLog(t)
	stopA := startServe(t, replicas["a"])
	eventually(t, "a leads", func() bool { return leaderName(t, pool) == "a" })
	eventually(t, "a's start-up sync ended", func() bool {
		r := runs(t, pool)
		return len(r) == 1 && r[0] == "missed:true"
	})
	startServe(t, replicas["b"])
	// b's cache follows a's through the change log.
	cfgB, err := config.Load(replicas["b"].path)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "b serves what a synced", func() bool {
		st, err := adminClient(cfgB).Status(context.Background())
		return err == nil && len(st) == 1 && st[0].Users == 5 && st[0].State == "ok"
	})
	out, err := execute(context.Background(), "sync", "-c", replicas["b"].path, "--dry-run")
	if err != nil || !strings.Contains(out, "dry run") {
		t.Fatalf("sync through b: %v\n%s", err, out)
	}
	if r := runs(t, pool); len(r) != 2 || r[1] != "api:true" {
		t.Fatalf("history after b's sync: %v, want a's missed run and the dry run asked through b's API", r)
	}
	if got := leaderName(t, pool); got != "a" {
		t.Fatalf("leader %q after b joined, want a", got)
	}
	stopA()
	eventually(t, "b leads", func() bool { return leaderName(t, pool) == "b" })
	// b's term starts with the scheduler's catch-up: nothing was missed.
	time.Sleep(time.Second)
	if r := runs(t, pool); len(r) != 2 {
		t.Fatalf("history after b took over: %v; the new leader repeated a run", r)
	}
	out, err = execute(context.Background(), "sync", "-c", replicas["b"].path, "--dry-run")
	if err != nil || !strings.Contains(out, "dry run") {
		t.Fatalf("sync on b as the leader: %v\n%s", err, out)
	}
	if l := log(); strings.Contains(l, os.Getenv("DIRGATE_TEST_PG_PASSWORD")) {
		t.Fatal("the log shows the database password")
	}
}
