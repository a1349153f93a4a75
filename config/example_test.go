package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClusterExample keeps the README's cluster example valid: the files
// it names under /etc/dirgate are made in a temporary directory, and the
// file must then parse without a problem into a cluster configuration.
func TestClusterExample(t *testing.T) {
	data, err := os.ReadFile("../examples/cluster/dirgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca, err := os.ReadFile("testdata/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"admin-token":   "an-admin-token-of-some-length",
		"pg-password":   "pg-secret",
		"pg-ca.pem":     string(ca),
		"ldap-ca.pem":   string(ca),
		"ldap-password": "ldap-secret",
		"cluster.key":   "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", // 32 bytes, base64
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	text := strings.ReplaceAll(string(data), "/etc/dirgate/", dir+"/")
	cfg, err := Parse(filepath.Join(dir, "dirgate.yaml"), []byte(text))
	if err != nil {
		t.Fatalf("the cluster example does not parse:\n%v", err)
	}
	if cfg.Cluster == nil || cfg.Cluster.ReplicaName == "" {
		t.Fatalf("cluster section not read: %+v", cfg.Cluster)
	}
	if string(cfg.Cluster.PostgresPassword) == "" || len(cfg.Cluster.Key()) != 32 {
		t.Fatal("the password or the encryption key was not read from its file")
	}
}
