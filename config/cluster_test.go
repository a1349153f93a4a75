package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clusterKeyB64 and clusterKeyHex are one 32-byte key in both notations.
const (
	clusterKeyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	clusterKeyB64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
)

// clusterFixture writes a key file and a password file into a temporary
// directory and returns the directory and a configuration there with the
// given cluster section.
func clusterFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string]string{
		"cluster.key": clusterKeyB64 + "\n",
		"hex.key":     clusterKeyHex,
		"short.key":   "c2hvcnQ=",
		"pg.pw":       "pg-s3cret\n",
		"empty":       "",
		"ca.pem":      "not a certificate",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func loadCluster(t *testing.T, dir, section string) (*Config, error) {
	t.Helper()
	path := filepath.Join(dir, "dirgate.yaml")
	if err := os.WriteFile(path, []byte(minimal+"cluster:\n"+section), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(path)
}

func TestClusterValidation(t *testing.T) {
	dir := clusterFixture(t)
	t.Setenv("DIRGATE_TEST_PG_PW", "env-s3cret")
	t.Setenv("DIRGATE_TEST_CLUSTER_KEY", clusterKeyHex)
	t.Setenv("DIRGATE_TEST_EMPTY", "")
	const url = "  postgres: postgres://dirgate@db.example.com:5432/dirgate?sslmode=verify-full\n"
	const key = "  encryption_key_file: cluster.key\n"
	for _, tc := range []struct {
		name    string
		section string
		want    string // a substring of the error; empty: valid
	}{
		{"minimal", url + key, ""},
		{"key from env, hex", url + "  encryption_key_env: DIRGATE_TEST_CLUSTER_KEY\n", ""},
		{"key file in hex", url + "  encryption_key_file: hex.key\n", ""},
		{"password from env", url + key + "  postgres_password_env: DIRGATE_TEST_PG_PW\n", ""},
		{"password from file", url + key + "  postgres_password_file: pg.pw\n", ""},
		{"all settings", url + key + "  replica_name: r1\n  advertise_admin: https://10.0.0.1:8443\n  lease_ttl: 5s\n  max_lag: 1m\n  migrate: manual\n  poll_interval: 500ms\n", ""},
		{"missing key", url, "cluster: needs an encryption key"},
		{"key both ways", url + key + "  encryption_key_env: DIRGATE_TEST_CLUSTER_KEY\n", "cluster.encryption_key_file: encryption_key_env is set too"},
		{"key too short", url + "  encryption_key_file: short.key\n", "cluster.encryption_key_file: must hold 32 random bytes"},
		{"key env empty", url + "  encryption_key_env: DIRGATE_TEST_EMPTY\n", "environment variable DIRGATE_TEST_EMPTY is not set or is empty"},
		{"key file missing", url + "  encryption_key_file: nope.key\n", "cluster.encryption_key_file: cannot read"},
		{"key file empty", url + "  encryption_key_file: empty\n", "is empty; write the key into it"},
		{"missing url", key, "cluster.postgres: required"},
		{"not a postgres url", "  postgres: mysql://db/dirgate\n" + key, "cluster.postgres: is not a postgres:// URL"},
		{"key-value dsn", "  postgres: host=db user=dirgate\n" + key, "cluster.postgres: is not a postgres:// URL"},
		{"password in url", "  postgres: postgres://dirgate:hunter2@db/dirgate\n" + key, "cluster.postgres: contains a password"},
		{"password in query", "  postgres: postgres://dirgate@db/dirgate?password=hunter2\n" + key, "cluster.postgres: contains a password"},
		{"password both ways", url + key + "  postgres_password_env: DIRGATE_TEST_PG_PW\n  postgres_password_file: pg.pw\n", "cluster.postgres_password_file: postgres_password_env is set too"},
		{"password env is a value", url + key + "  postgres_password_env: \"hunter2!\"\n", "cluster.postgres_password_env: is not an environment variable name"},
		{"tls without verifying sslmode", "  postgres: postgres://dirgate@db/dirgate?sslmode=require\n" + key + "  tls: {ca_file: ca.pem}\n", "cluster.tls: applies to sslmode=verify-ca or verify-full"},
		{"tls ca not pem", url + key + "  tls: {ca_file: ca.pem}\n", "ca.pem contains no PEM certificates"},
		{"tls cert without key", url + key + "  tls: {cert_file: ca.pem}\n", "cluster.tls.key_file: required"},
		{"migrate", url + key + "  migrate: sometimes\n", "cluster.migrate: \"sometimes\" is not one of auto, manual"},
		{"lease ttl too short", url + key + "  lease_ttl: 100ms\n", "cluster.lease_ttl: must be at least 1s"},
		{"lease ttl negative", url + key + "  lease_ttl: -1s\n", "cluster.lease_ttl: must be positive"},
		{"poll interval zero", url + key + "  poll_interval: 0s\n", "cluster.poll_interval: must be positive"},
		{"advertise admin not a url", url + key + "  advertise_admin: admin.example.com\n", "cluster.advertise_admin: \"admin.example.com\" is not an http(s) URL"},
		{"unknown key", url + key + "  leader_ttl: 5s\n", "leader_ttl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadCluster(t, dir, tc.section)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("no error, want one containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q\ndoes not contain %q", err, tc.want)
			}
			for _, secret := range []string{"hunter2", "pg-s3cret", "env-s3cret", clusterKeyB64, clusterKeyHex} {
				if err != nil && strings.Contains(err.Error(), secret) {
					t.Errorf("error shows a secret: %v", err)
				}
			}
		})
	}
}

func TestClusterDefaults(t *testing.T) {
	dir := clusterFixture(t)
	hostname = func() (string, error) { return "host-a", nil }
	t.Cleanup(func() { hostname = os.Hostname })
	cfg, err := loadCluster(t, dir, "  postgres: postgres://dirgate@db/dirgate\n  encryption_key_file: cluster.key\n  postgres_password_file: pg.pw\n")
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Cluster
	want := Cluster{
		Postgres: "postgres://dirgate@db/dirgate", PostgresPasswordFile: filepath.Join(dir, "pg.pw"), PostgresPassword: "pg-s3cret",
		EncryptionKeyFile: filepath.Join(dir, "cluster.key"), ReplicaName: "host-a",
		LeaseTTL: Duration(15 * time.Second), MaxLag: Duration(30 * time.Second), Migrate: MigrateAuto, PollInterval: Duration(2 * time.Second),
	}
	key := c.Key()
	c.EncryptionKey = ""
	if fmt.Sprintf("%#v", *c) != fmt.Sprintf("%#v", want) || c.PostgresPassword.Reveal() != "pg-s3cret" {
		t.Errorf("got  %+v\nwant %+v", *c, want)
	}
	if len(key) != 32 || key[0] != 0 || key[31] != 0x1f {
		t.Errorf("Key() = %x", key)
	}
}

// TestClusterSecretsNeverPrinted: the database password and the
// encryption key stay out of every way a Config is printed, encoded or
// logged.
func TestClusterSecretsNeverPrinted(t *testing.T) {
	dir := clusterFixture(t)
	cfg, err := loadCluster(t, dir, "  postgres: postgres://dirgate@db/dirgate\n  encryption_key_file: hex.key\n  postgres_password_file: pg.pw\n")
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "cluster", cfg.Cluster, "cfg", cfg)
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprintf("%v %+v %#v %s %s", cfg.Cluster, cfg.Cluster, cfg.Cluster, js, logged.String())
	for _, secret := range []string{"pg-s3cret", string(cfg.Cluster.Key()), fmt.Sprintf("%x", cfg.Cluster.Key())} {
		if strings.Contains(out, secret) {
			t.Errorf("output contains a secret: %s", out)
		}
	}
}
