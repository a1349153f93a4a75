package config

import (
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"time"
)

// Values of Cluster.Migrate.
const (
	// MigrateAuto applies pending schema migrations when serve starts.
	MigrateAuto = "auto"
	// MigrateManual refuses to start while migrations are pending; the
	// operator applies them with `dirgate migrate`.
	MigrateManual = "manual"
)

// Cluster runs several dirgate replicas on one PostgreSQL database: one
// replica (the leader, elected through a lease) syncs and publishes every
// committed change; the others apply them to their own caches and serve.
// Nil (the key left out) runs a single process on the Badger cache alone.
type Cluster struct {
	// Postgres is the database URL, postgres://user@host:5432/db?sslmode=...,
	// without a password: that comes from PostgresPasswordEnv or
	// PostgresPasswordFile. Required.
	Postgres string `yaml:"postgres"`
	// PostgresPasswordEnv or PostgresPasswordFile give the database
	// password (at most one; neither when the server needs none, e.g. with
	// client certificates).
	PostgresPasswordEnv  string `yaml:"postgres_password_env"`
	PostgresPasswordFile string `yaml:"postgres_password_file"`
	// PostgresPassword is the resolved password, empty when none.
	PostgresPassword Secret `yaml:"-"`
	// TLS names the CA and client certificate for sslmode verify-ca or
	// verify-full.
	TLS *PostgresTLS `yaml:"tls"`
	// EncryptionKeyFile or EncryptionKeyEnv give the 32-byte key (64 hex
	// digits or base64) that encrypts the OIDC signing keys in the
	// database. Exactly one is required, and every replica needs the same.
	EncryptionKeyFile string `yaml:"encryption_key_file"`
	EncryptionKeyEnv  string `yaml:"encryption_key_env"`
	// EncryptionKey is the decoded key: 32 bytes.
	EncryptionKey Secret `yaml:"-"`
	// ReplicaName names this replica in status pages. Default: the host
	// name.
	ReplicaName string `yaml:"replica_name"`
	// AdvertiseAdmin is this replica's admin console URL, shown in the
	// cluster status. Optional.
	AdvertiseAdmin string `yaml:"advertise_admin"`
	// LeaseTTL is how long the leader's lease lasts without renewal: the
	// longest a dead leader blocks syncing. Default 15s; at least 1s.
	LeaseTTL Duration `yaml:"lease_ttl"`
	// MaxLag makes /readyz fail when this replica's cache is further than
	// this behind the leader's change log. Default 30s.
	MaxLag Duration `yaml:"max_lag"`
	// Migrate is auto (apply schema migrations at start, the default) or
	// manual.
	Migrate string `yaml:"migrate"`
	// PollInterval paces the change-log poll that backs up PostgreSQL
	// notifications. Default 2s.
	PollInterval Duration `yaml:"poll_interval"`
}

// PostgresTLS names the files for a verified TLS connection to PostgreSQL.
// Relative paths are resolved against the configuration file's directory.
type PostgresTLS struct {
	// CAFile verifies the server certificate; default the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate and its key, both or
	// neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Key returns the decoded encryption key.
func (c *Cluster) Key() []byte { return []byte(c.EncryptionKey.Reveal()) }

// clusterKeyLen is the size of the AES-256 key that encrypts signing keys.
const clusterKeyLen = 32

// hostname is os.Hostname, replaceable in tests.
var hostname = os.Hostname

func (v *validator) cluster(c *Cluster) {
	const p = "cluster"
	v.postgresURL(p+".postgres", c.Postgres)
	c.PostgresPassword = v.secret(p, "postgres_password", &c.PostgresPasswordEnv, &c.PostgresPasswordFile, "password")
	if c.TLS != nil {
		v.postgresTLS(c, p+".tls")
	}
	if c.EncryptionKeyEnv == "" && c.EncryptionKeyFile == "" {
		v.errorf(p, "needs an encryption key for the signing keys kept in the database; create one with `openssl rand -base64 32 > cluster.key` and set encryption_key_file to it (or encryption_key_env to a variable holding it); every replica needs the same key")
	} else if raw := v.secret(p, "encryption_key", &c.EncryptionKeyEnv, &c.EncryptionKeyFile, "key"); raw != "" {
		key, ok := decodeKey(raw.Reveal())
		if !ok {
			path := p + ".encryption_key_file"
			if c.EncryptionKeyEnv != "" {
				path = p + ".encryption_key_env"
			}
			v.errorf(path, "must hold %d random bytes written as %d hex digits or in base64 (e.g. the output of `openssl rand -base64 32`)", clusterKeyLen, 2*clusterKeyLen)
		}
		c.EncryptionKey = Secret(key)
	}
	if c.ReplicaName == "" {
		name, err := hostname()
		if err != nil || name == "" {
			v.errorf(p+".replica_name", "is not set and the host name cannot be read (%v); set replica_name", err)
		}
		c.ReplicaName = name
	}
	c.AdvertiseAdmin = v.apiURL(p+".advertise_admin", c.AdvertiseAdmin, "")
	v.positiveDuration(p+".lease_ttl", &c.LeaseTTL, 15*time.Second)
	if c.LeaseTTL > 0 && c.LeaseTTL.Std() < time.Second {
		v.errorf(p+".lease_ttl", "must be at least 1s, got %s", c.LeaseTTL)
	}
	v.positiveDuration(p+".max_lag", &c.MaxLag, 30*time.Second)
	v.positiveDuration(p+".poll_interval", &c.PollInterval, 2*time.Second)
	if c.Migrate == "" {
		c.Migrate = MigrateAuto
	}
	v.oneOf(p+".migrate", c.Migrate, MigrateAuto, MigrateManual)
}

// postgresURL checks the database URL. A password in it is refused like
// an inline upstream password, so the file stays shareable.
func (v *validator) postgresURL(path, raw string) {
	if raw == "" {
		v.errorf(path, "required; give the database URL, e.g. postgres://dirgate@db.example.com:5432/dirgate?sslmode=verify-full")
		return
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// Not quoted: a mistyped URL may carry a password.
		v.errorf(path, "is not a postgres:// URL such as postgres://dirgate@db.example.com:5432/dirgate?sslmode=verify-full")
		return
	}
	if _, has := u.User.Password(); has || u.Query().Has("password") {
		v.errorf(path, "contains a password; remove it from the URL and set postgres_password_env or postgres_password_file, so that the file can be shared and versioned")
	}
}

// postgresTLS checks the TLS files; they only take effect with a verifying
// sslmode, which the URL must then name.
func (v *validator) postgresTLS(c *Cluster, p string) {
	t := c.TLS
	if u, err := url.Parse(c.Postgres); err == nil {
		if mode := u.Query().Get("sslmode"); mode != "verify-ca" && mode != "verify-full" {
			v.errorf(p, "applies to sslmode=verify-ca or verify-full, but the postgres URL has sslmode=%q; add ?sslmode=verify-full to it", mode)
		}
	}
	if t.CAFile != "" {
		v.caFile(p+".ca_file", &t.CAFile)
	}
	if t.CertFile != "" || t.KeyFile != "" {
		v.keyPair(p, "cert_file", "key_file", &t.CertFile, &t.KeyFile, "the client certificate or its key")
	}
}

// decodeKey reads a key written as hex or base64 (standard or URL
// alphabet, padded or not); ok only for exactly clusterKeyLen bytes.
func decodeKey(s string) ([]byte, bool) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil {
		return b, len(b) == clusterKeyLen
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, len(b) == clusterKeyLen
		}
	}
	return nil, false
}
