package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

const agentConnector = `connector:
  name: corp
  type: openldap
  host: ldap.corp.example
  encryption: none
  root_dn: dc=corp,dc=example
  bind_dn: cn=sync,dc=corp,dc=example
  bind_password_env: DIRGATE_TEST_AGENT_PW
`

func TestAgentFile(t *testing.T) {
	t.Setenv("DIRGATE_TEST_AGENT_PW", "s3cret")
	dir := t.TempDir()
	name := filepath.Join(dir, "agent.yaml")
	for _, tc := range []struct {
		name string
		yaml string
		want string // a problem's text; empty: valid
	}{
		{"minimal", "hub: https://hub.example:8444\n" + agentConnector, ""},
		{"no hub is valid (enroll gives it)", agentConnector, ""},
		{"plain http hub", "hub: http://hub.example:8444\n" + agentConnector, "hub: must be an https:// URL"},
		{"hub with a path", "hub: https://hub.example:8444/agent/v1\n" + agentConnector, "hub: must be just https://host:port"},
		{"hub without host", "hub: https://:8444\n" + agentConnector, "hub: has no host"},
		{"no connector", "hub: https://hub.example:8444\n", "connector: required"},
		{"cloud type", "connector:\n  name: c\n  type: entra\n", "connector.type: entra is read through its cloud API"},
		{"connector checked like the hub's", strings.Replace(agentConnector, "  host: ldap.corp.example\n", "", 1), "connector.host: required"},
		{"inline bind password refused", agentConnector + "  bind_password: x\n", "connector.bind_password: inline passwords are not allowed"},
		{"pool size bound", "pool_size: 0\n" + agentConnector, "pool_size: must be from 1 to 64"},
		{"unknown key", "hubb: https://hub.example:8444\n" + agentConnector, `hubb: unknown key (did you mean "hub"?)`},
		{"bad log level", "log: {level: loud}\n" + agentConnector, "log.level:"},
		{"via refused in the agent's own file", agentConnector + "  via: agent\n", "connector.via: is for the hub's connectors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseAgentFile(name, []byte(tc.yaml))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("ParseAgentFile: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseAgentFile accepted it: %+v", f)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestAgentFileDefaults(t *testing.T) {
	t.Setenv("DIRGATE_TEST_AGENT_PW", "s3cret")
	dir := t.TempDir()
	f, err := ParseAgentFile(filepath.Join(dir, "agent.yaml"), []byte("hub: https://hub.example:8444\n"+agentConnector))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "agent-state"); f.StateDir != want {
		t.Errorf("state_dir = %q, want %q (relative to the file)", f.StateDir, want)
	}
	if f.PoolSize != 16 || f.Name == "" || f.Log.Level != "info" {
		t.Errorf("defaults: pool_size %d, name %q, log level %q", f.PoolSize, f.Name, f.Log.Level)
	}
	c := f.Connector
	if c.Port != 389 || c.BindPassword.Reveal() != "s3cret" || c.UserFilter == "" || c.Timeout.Std() == 0 {
		t.Errorf("connector defaults not applied: port %d, filter %q, timeout %v", c.Port, c.UserFilter, c.Timeout)
	}
}

// FuzzParseAgentFile: any input yields a file or an *Error, never a panic.
func FuzzParseAgentFile(f *testing.F) {
	f.Add([]byte("hub: https://hub.example:8444\n" + agentConnector))
	f.Add([]byte("connector: [1, 2]\nhub: {a: b}\n"))
	f.Add([]byte("connector:\n  <<: *x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		af, err := ParseAgentFile("agent.yaml", data)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("error of another type: %v", err)
			}
			return
		}
		if af.Connector.Name == "" || af.PoolSize < 1 {
			t.Fatalf("accepted without a connector or pool size: %+v", af)
		}
	})
}
