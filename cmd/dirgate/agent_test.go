package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAgentCommands(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.yaml")
	conf := "hub: https://hub.example:8444\nconnector:\n  name: corp\n  type: openldap\n  host: ldap.corp.example\n  encryption: none\n  root_dn: dc=corp,dc=example\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	const fp = "0000000000000000000000000000000000000000000000000000000000000000"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"not enrolled", []string{"agent", "-c", path}, "holds no enrollment; run `dirgate agent enroll` first"},
		{"agent.yaml without -c", []string{"agent"}, "holds no enrollment"},
		{"no agent.yaml", []string{"agent", "-c", filepath.Join(dir, "none.yaml")}, "not found"},
		{"plain http hub", []string{"agent", "enroll", "-c", path, "--hub", "http://hub.example", "--token", "t", "--ca-sha256", fp}, "must be an https:// URL"},
		{"bad fingerprint", []string{"agent", "enroll", "-c", path, "--token", "t", "--ca-sha256", "abc"}, "is not a SHA-256 fingerprint"},
		{"token required", []string{"agent", "enroll", "-c", path, "--ca-sha256", fp}, `required flag(s) "token" not set`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := execute(context.Background(), tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
