package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/cluster/registry"
	"github.com/dirgate/dirgate/cluster/schema/pgtest"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/state"
	"github.com/dirgate/dirgate/state/pgstate"
)

// clusterKey is the encryption key of the test configurations.
var clusterKey = bytes.Repeat([]byte{9}, 32)

// clusterURL returns the URL of db's schema for cluster.postgres: without
// its password, which it puts in DIRGATE_TEST_PG_PASSWORD for
// postgres_password_env, as the configuration requires.
func clusterURL(t *testing.T, db *pgtest.DB) string {
	t.Helper()
	u, err := url.Parse(db.SearchPathURL())
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	u.User = url.User(u.User.Username())
	t.Setenv("DIRGATE_TEST_PG_PASSWORD", pw)
	return u.String()
}

// clusterConfigFile writes a configuration whose cluster section points
// at db's schema and returns its path.
func clusterConfigFile(t *testing.T, db *pgtest.DB) string {
	t.Helper()
	t.Setenv("DIRGATE_TEST_CLUSTER_KEY", "0909090909090909090909090909090909090909090909090909090909090909")
	dir := t.TempDir()
	y := "cache: {dir: " + filepath.Join(dir, "cache") + "}\nconnectors: [{name: corp, type: openldap, host: ldap.corp.test, encryption: none, root_dn: \"dc=corp,dc=test\"}]\ncluster:\n" +
		"  postgres: \"" + clusterURL(t, db) + "\"\n  postgres_password_env: DIRGATE_TEST_PG_PASSWORD\n" +
		"  encryption_key_env: DIRGATE_TEST_CLUSTER_KEY\n  replica_name: test-1\n"
	p := filepath.Join(dir, "dirgate.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMigrateSchema(t *testing.T) {
	db := pgtest.New(t)
	cfg := clusterConfigFile(t, db)
	out, err := execute(t.Context(), "migrate", "-c", cfg)
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	for _, want := range []string{"applied 0001_state.sql", "applied 0100_leader_lease.sql", "applied 0400_cluster_replica.sql"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if out, err = execute(t.Context(), "migrate", "-c", cfg); err != nil || strings.TrimSpace(out) != "schema up to date" {
		t.Errorf("second migrate: %v\n%s", err, out)
	}
}

func TestMigrateNeedsCluster(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d.yaml")
	if err := os.WriteFile(p, []byte("connectors: [{name: a, type: openldap, host: h, encryption: none, root_dn: dc=x}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"migrate"}, {"cluster", "status"}} {
		if _, err := execute(t.Context(), append(args, "-c", p)...); err == nil || !strings.Contains(err.Error(), "no cluster section") {
			t.Errorf("%v without a cluster section: %v", args, err)
		}
	}
}

// A single instance's state arrives in PostgreSQL whole; a second run
// copies nothing again and undoes nothing the cluster did since.
func TestMigrateFromCache(t *testing.T) {
	db := pgtest.New(t)
	cfg := clusterConfigFile(t, db)
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	dir := filepath.Join(t.TempDir(), "single")
	src, err := cache.Open(dir, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := src.States()
	live := state.Refresh{Family: "fam", ClientID: "app", Connector: "corp", ID: "u1", Scope: []string{"openid"}, AuthTime: now, Expires: now.Add(time.Hour)}
	must(t, st.Grants.PutRefresh(ctx, "live", live))
	must(t, st.Grants.PutRefresh(ctx, "old", state.Refresh{ClientID: "app", Expires: now.Add(-time.Minute)}))
	must(t, st.Grants.RevokeFamily(ctx, "revoked-fam", now))
	must(t, st.Keys.PublishSigningKeys(ctx, nil, []byte(`{"keys":"set"}`)))
	must(t, st.Verifiers.PutVerifier(ctx, "corp", "u1", state.Verifier{Created: now, Stamp: "s", Hash: "$argon2id$h"}))
	must(t, st.Sync.SaveEngineState(ctx, "corp", state.Engine{LastFull: now, Scope: "x"}))
	must(t, st.Sync.RecordRun(ctx, &state.Run{Connector: "corp", Start: now, End: now, Mode: "full", Added: 5}))

	// While a server holds the cache, nothing is copied.
	out, err := execute(ctx, "migrate", "-c", cfg, "--from-cache", dir)
	if err == nil || !strings.Contains(err.Error(), "open by a running dirgate") {
		t.Fatalf("migrate from an open cache: %v\n%s", err, out)
	}
	must(t, src.Close())

	out, err = execute(ctx, "migrate", "-c", cfg, "--from-cache", dir)
	if err != nil {
		t.Fatalf("migrate --from-cache: %v\n%s", err, out)
	}
	for _, want := range []string{
		"refresh tokens: 1 copied, 0 already present, 1 expired and skipped",
		"revoked token families: 1 copied", "signing key sets: 1 copied", "offline verifiers: 1 copied",
		"engine states: 1 copied", "sync runs: 1 copied",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	pg, err := pgstate.New(db.Pool, clusterKey)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := pg.Refresh(ctx, "live", now); err != nil || r.ID != "u1" || r.Family != "fam" {
		t.Errorf("refresh token in PostgreSQL: %+v, %v", r, err)
	}
	must(t, pg.PutRefresh(ctx, "of-revoked", state.Refresh{Family: "revoked-fam", ClientID: "app", Expires: now.Add(time.Hour)}))
	if _, err := pg.Refresh(ctx, "of-revoked", now); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("a token of the revoked family is live: %v", err)
	}
	if k, err := pg.SigningKeys(ctx); err != nil || string(k) != `{"keys":"set"}` {
		t.Errorf("signing keys %q, %v", k, err)
	}
	if v, err := pg.Verifier(ctx, "corp", "u1"); err != nil || v.Hash != "$argon2id$h" {
		t.Errorf("verifier %+v, %v", v, err)
	}
	if e, err := pg.EngineState(ctx, "corp"); err != nil || !e.LastFull.Equal(now) {
		t.Errorf("engine state %+v, %v", e, err)
	}
	if runs, err := pg.Runs(ctx, "corp", 10); err != nil || len(runs) != 1 || runs[0].Added != 5 {
		t.Errorf("runs %+v, %v", runs, err)
	}

	// The cluster rotates the token; copying again must not bring the
	// unrotated copy back.
	if _, outcome, err := pg.RotateRefresh(ctx, "live", "app", now); err != nil || outcome != state.RefreshLive {
		t.Fatalf("rotate: %v, %v", outcome, err)
	}
	out, err = execute(ctx, "migrate", "-c", cfg, "--from-cache", dir)
	if err != nil {
		t.Fatalf("second migrate --from-cache: %v\n%s", err, out)
	}
	if !strings.Contains(out, "refresh tokens: 0 copied, 1 already present") || !strings.Contains(out, "signing key sets: 0 copied, 1 already present") {
		t.Errorf("second run:\n%s", out)
	}
	if _, outcome, err := pg.RotateRefresh(ctx, "live", "app", now); err != nil || outcome != state.RefreshReused {
		t.Errorf("the rotated token after a second copy: %v, %v; want it still rotated (reuse)", outcome, err)
	}
}

func TestMigrateFromNoCache(t *testing.T) {
	db := pgtest.New(t)
	cfg := clusterConfigFile(t, db)
	dir := filepath.Join(t.TempDir(), "typo")
	_, err := execute(t.Context(), "migrate", "-c", cfg, "--from-cache", dir)
	if err == nil || !strings.Contains(err.Error(), "holds no dirgate cache") {
		t.Fatalf("migrate from a missing cache: %v", err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("migrate created a cache directory")
	}
}

func TestClusterStatus(t *testing.T) {
	db := pgtest.New(t)
	cfg := clusterConfigFile(t, db)
	ctx := t.Context()
	if out, err := execute(ctx, "migrate", "-c", cfg); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	for _, r := range []registry.Config{
		{Name: "dirgate-1", Holder: "h1", Version: "v1", AdminURL: "https://10.0.0.1:8443",
			Position: func() (uint64, time.Time, error) { return 7, time.Now(), nil }, Leader: func() bool { return true }},
		{Name: "dirgate-2", Holder: "h2", Version: "v1"},
	} {
		reg, err := registry.New(db.Pool, r)
		if err != nil {
			t.Fatal(err)
		}
		must(t, reg.Beat(ctx))
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO leader_lease VALUES ('sync', 'h1', 3, clock_timestamp() + interval '15 seconds')`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE cluster_replica SET seen = seen - interval '5 minutes' WHERE name = 'dirgate-2'`); err != nil {
		t.Fatal(err)
	}
	out, err := execute(ctx, "cluster", "status", "-c", cfg)
	if err != nil {
		t.Fatalf("cluster status: %v\n%s", err, out)
	}
	for _, want := range []string{"Leader: dirgate-1 (epoch 3", "dirgate-1  leader", "dirgate-2  standby  gone", "https://10.0.0.1:8443"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	out, err = execute(ctx, "cluster", "status", "-c", cfg, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st registry.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if st.Lease == nil || st.Lease.Epoch != 3 || len(st.Replicas) != 2 || !st.Replicas[0].Leader || !st.Replicas[1].Gone || st.Replicas[0].Position != 7 {
		t.Errorf("--json: %+v", st)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// The admin listener of a replica shows the cluster read from PostgreSQL,
// its role and its lag against cluster.max_lag (the same verdict /readyz
// uses, tested in package admin).
func TestAdminClusterView(t *testing.T) {
	db := pgtest.New(t)
	path := clusterConfigFile(t, db)
	ctx := t.Context()
	if out, err := execute(ctx, "migrate", "-c", path); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DIRGATE_TEST_ADMIN_TOKEN", "admin-token-0123456789abcdef")
	_, err = f.WriteString("  max_lag: 10s\nadmin: {listen: \"127.0.0.1:0\", token_env: DIRGATE_TEST_ADMIN_TOKEN}\n")
	f.Close()
	must(t, err)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(db.Pool, registry.Config{Name: "test-1", Holder: "h1"})
	must(t, err)
	must(t, reg.Beat(ctx))
	var lag atomic.Int64
	var leading atomic.Bool
	view := &clusterView{name: "test-1", db: db.Pool, leader: leading.Load,
		lag:  func() time.Duration { return time.Duration(lag.Load()) },
		head: func(context.Context) (uint64, time.Time, error) { return 0, time.Time{}, nil }}
	srv, err := newAdmin(cfg, &adminBackend{cfg: func() *config.Config { return cfg }, cluster: view}, slog.New(slog.DiscardHandler))
	must(t, err)
	ts := httptest.NewServer(srv.Handler)
	defer ts.Close()
	get := func(path string) (int, string) {
		req, _ := http.NewRequest("GET", ts.URL+path, nil)
		req.Header.Set("Authorization", "Bearer admin-token-0123456789abcdef")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/api/v1/cluster"); code != 200 || !strings.Contains(body, `"role": "standby"`) || !strings.Contains(body, `"name": "test-1"`) {
		t.Errorf("GET /api/v1/cluster: %d %s", code, body)
	}
	lag.Store(int64(11 * time.Second))
	if code, body := get("/api/v1/cluster"); code != 200 || !strings.Contains(body, `"ready": false`) || !strings.Contains(body, "more than cluster.max_lag 10s") {
		t.Errorf("beyond max_lag: %d %s", code, body)
	}
	leading.Store(true) // its follower is paused and its lag meaningless
	if code, body := get("/api/v1/cluster"); code != 200 || !strings.Contains(body, `"ready": true`) || !strings.Contains(body, `"role": "leader"`) {
		t.Errorf("leader: %d %s", code, body)
	}
}
