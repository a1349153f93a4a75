package config

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"reflect"

	"github.com/dirgate/dirgate/dirtype"
)

// AgentFile is the configuration of `dirgate agent` (agent.yaml): the hub
// it dials out to, where it keeps its key and certificates, and the one
// LDAP connector it reads and checks passwords against, written exactly as
// a connector in the hub's configuration.
//
//	hub: https://dirgate.example.com:8444
//	state_dir: /var/lib/dirgate-agent
//	connector:
//	  name: corp-ad
//	  type: ad
//	  host: dc1.corp.example
//	  ...
type AgentFile struct {
	// Path is the name the file was loaded from; relative paths inside it
	// were resolved against its directory.
	Path string `yaml:"-"`
	// Hub is the URL of the hub's agent listener, https://host:port.
	// Required by `dirgate agent`; `dirgate agent enroll --hub` overrides
	// it.
	Hub string `yaml:"hub"`
	// StateDir holds the agent's private key (0600, generated at
	// enrollment and never sent), its certificate and the hub's CA.
	// Default "./agent-state", relative to the file.
	StateDir string `yaml:"state_dir"`
	// Name names the agent in the hub's console. Default: the host name.
	Name string `yaml:"name"`
	// PoolSize is how many password checks run at once, and how many idle
	// directory connections are kept for them. Default 16; 1 to 64.
	PoolSize int `yaml:"pool_size"`
	// Connector is the directory the agent serves: type ad, domino or
	// openldap, with the same keys and defaults as in the hub's
	// connectors: list. Its name must be the connector the enrollment
	// token was created for.
	Connector Connector `yaml:"connector"`
	// Log configures the agent's own logging.
	Log Log `yaml:"log"`
}

// LoadAgentFile reads and parses the agent configuration at path.
// Unreadable files yield the *fs.PathError from os.ReadFile; problems with
// the content yield an *Error listing all of them.
func LoadAgentFile(path string) (*AgentFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseAgentFile(path, data)
}

// ParseAgentFile parses an agent configuration held in memory; name is
// used in problem messages and as the base of relative paths.
func ParseAgentFile(name string, data []byte) (*AgentFile, error) {
	d := &decoder{problems: &problems{file: name}, lines: map[string]int{}, set: map[string]bool{}}
	root, ok := d.parse(data)
	if !ok {
		return nil, d.problems.err()
	}
	f := &AgentFile{Path: name}
	if root != nil {
		d.lines[""] = root.Line
		d.decode(root, reflect.ValueOf(f).Elem(), "")
	}
	v := &validator{decoder: d, dir: filepath.Dir(name)}
	v.agentFile(f)
	if err := d.problems.err(); err != nil {
		return nil, err
	}
	return f, nil
}

func (v *validator) agentFile(f *AgentFile) {
	if f.Hub != "" {
		v.hubURL("hub", f.Hub)
	}
	if f.StateDir == "" {
		f.StateDir = "./agent-state"
	}
	f.StateDir = v.resolvePath(f.StateDir)
	if f.Name == "" {
		f.Name, _ = os.Hostname()
	}
	v.between("pool_size", &f.PoolSize, 16, 1, 64)

	if !v.has("connector") {
		v.errorf("connector", "required; give the directory this agent reads, with the same keys as a connector in the hub's configuration")
	} else {
		if t, ok := dirtype.Lookup(f.Connector.Type); ok && t.Protocol != dirtype.ProtocolLDAP {
			v.errorf("connector.type", "%s is read through its cloud API, which the hub reaches itself; an agent serves LDAP directories only (%s)",
				f.Connector.Type, "ad, domino or openldap")
		}
		if v.has("connector.via") {
			v.errorf("connector.via", "is for the hub's connectors: the agent reaches the directory itself, so give host and the other connection keys here and remove via")
			f.Connector.Via = ""
		}
		v.connector(&f.Connector, "connector")
	}

	if f.Log.Level == "" {
		f.Log.Level = "info"
	}
	v.oneOf("log.level", f.Log.Level, "debug", "info", "warn", "error")
	if f.Log.Format == "" {
		f.Log.Format = "json"
	}
	v.oneOf("log.format", f.Log.Format, "json", "text")
}

// hubURL checks the address of a hub's agent listener: https, a host, and
// nothing after the port (the agent adds the endpoint paths).
func (v *validator) hubURL(path, s string) {
	if err := CheckHubURL(s); err != nil {
		v.errorf(path, "%v", err)
	}
}

// CheckHubURL reports what is wrong with s as the address of a hub's agent
// listener, for the enroll command's --hub flag and agent.yaml's hub:.
func CheckHubURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return err
	case u.Scheme != "https":
		return errors.New("must be an https:// URL such as https://dirgate.example.com:8444; the agent only talks TLS to the hub")
	case u.Host == "" || u.Hostname() == "":
		return errors.New("has no host; write https://host:port")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/"):
		return errors.New("must be just https://host:port, without a path, query or credentials")
	}
	return nil
}
