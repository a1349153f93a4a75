package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dirgate/dirgate/dirtype"
)

// ViaAgent is the value of Connector.Via for a directory read and checked
// by a sync agent (`dirgate agent`) that dials out to this hub.
const ViaAgent = "agent"

// Agent configures the hub's agent listener, which sync agents dial out to
// (HTTP/2 over mutual TLS). Nil (the key left out) opens no listener, and
// no connector may say via: agent.
type Agent struct {
	// Listen is the agent listener's host:port. Default ":8444".
	Listen string `yaml:"listen"`
	// CADir holds the agent CA (a P-256 key, 0600, and its certificate),
	// generated at the first start. In a cluster every replica must be
	// given the same files. Default "./agent-ca", relative to the file.
	CADir string `yaml:"ca_dir"`
	// ServerNames are the host names and IP addresses in the listener's
	// certificate: every name agents dial this replica by. Default: the
	// host name.
	ServerNames []string `yaml:"server_names"`
	// TokenTTL is the lifetime of an enrollment token. Default 1h; at most
	// 168h (a week).
	TokenTTL Duration `yaml:"token_ttl"`
	// MaxDisconnected makes /readyz fail when a via: agent connector has
	// had no agent connected to this replica for longer. Default 2m.
	MaxDisconnected Duration `yaml:"max_disconnected"`
	// ReplyStart bounds the wait for a sync read's reply stream to start
	// (default 1m), ReplyIdle each wait for its next bytes (default 5m):
	// past either the read fails as unreachable and the agent is told to
	// cancel it. At least 5s each.
	ReplyStart Duration `yaml:"reply_start"`
	ReplyIdle  Duration `yaml:"reply_idle"`
	// Advertise is the URL agents reach this replica's listener at
	// (https://host:port), sent to every agent in the list of replicas so
	// that each keeps a connection to every one. Default https:// the
	// first server name and the listen port. Its host must be one of
	// ServerNames.
	Advertise string `yaml:"advertise"`
}

// Port returns the port of Listen.
func (a *Agent) Port() string {
	_, port, _ := net.SplitHostPort(a.Listen)
	return port
}

// ViaAgent reports whether the connector is read and checked through a
// sync agent.
func (c *Connector) ViaAgent() bool { return c.Via == ViaAgent }

// agentOnlyKeys are the connector keys that describe how the directory is
// reached and read: with via: agent they belong in the agent's agent.yaml,
// which the agent reads the directory with.
var agentOnlyKeys = append(slices.Clone(ldapOnlyKeys), "email_domains", "mail_attribute", "alias_attributes",
	"attributes", "acknowledge_disabled_accounts", "domino")

// minReplyWait is the least agent.reply_start and agent.reply_idle: an
// agent's directory may take seconds to answer a search's first page.
const minReplyWait = 5 * time.Second

// minDuration sets *d to def when path is not given, else checks it is at
// least least.
func (v *validator) minDuration(path string, d *Duration, def, least time.Duration) {
	v.positiveDuration(path, d, def)
	if *d > 0 && d.Std() < least {
		v.errorf(path, "must be at least %s, got %s: a directory may take that long to answer a sync read's first search", least, d)
	}
}

// maxTokenTTL bounds agent.token_ttl (168h): a token is a credential.
const maxTokenTTL = 7 * 24 * time.Hour

func (v *validator) agent(a *Agent) {
	const p = "agent"
	if a.Listen == "" {
		a.Listen = ":8444"
	}
	v.listenAddr(p+".listen", a.Listen, "8444")
	if a.CADir == "" {
		a.CADir = "./agent-ca"
	}
	a.CADir = v.resolvePath(a.CADir)
	if len(a.ServerNames) == 0 {
		name, err := hostname()
		if err != nil || name == "" {
			v.errorf(p+".server_names", "is not set and the host name cannot be read (%v); list the names agents dial this hub by", err)
		} else {
			a.ServerNames = []string{name}
		}
	}
	for i, n := range a.ServerNames {
		path := fmt.Sprintf("%s.server_names[%d]", p, i)
		if strings.Contains(n, "://") {
			v.errorf(path, "%q is a URL; write only the host name or IP address (the listener's URL is advertise)", n)
		} else if err := checkHost(n); err != nil {
			v.errorf(path, "%v", err)
		}
	}
	v.positiveDuration(p+".token_ttl", &a.TokenTTL, time.Hour)
	if a.TokenTTL.Std() > maxTokenTTL {
		v.errorf(p+".token_ttl", "must be at most 168h (a week), got %s; an enrollment token is a credential: create one when an agent is installed", a.TokenTTL)
	}
	v.positiveDuration(p+".max_disconnected", &a.MaxDisconnected, 2*time.Minute)
	v.minDuration(p+".reply_start", &a.ReplyStart, time.Minute, minReplyWait)
	v.minDuration(p+".reply_idle", &a.ReplyIdle, 5*time.Minute, minReplyWait)
	if a.Advertise == "" {
		if len(a.ServerNames) > 0 {
			a.Advertise = "https://" + net.JoinHostPort(a.ServerNames[0], a.Port())
		}
		return
	}
	if err := CheckHubURL(a.Advertise); err != nil {
		v.errorf(p+".advertise", "%v", err)
		return
	}
	a.Advertise = strings.TrimRight(a.Advertise, "/")
	if u, _ := url.Parse(a.Advertise); !containsFold(a.ServerNames, u.Hostname()) {
		v.errorf(p+".advertise", "host %q is not in server_names (%s), so the listener's certificate would not match it; add it there", u.Hostname(), strings.Join(a.ServerNames, ", "))
	}
}

// via checks a connector's via: key; it reports whether the connector is
// read through an agent, in which case its connection keys are refused.
func (v *validator) via(c *Connector, typ *dirtype.Type, p string) bool {
	if c.Via == "" {
		return false
	}
	if !v.oneOf(p+".via", c.Via, ViaAgent) {
		return false
	}
	if typ != nil && typ.Protocol != dirtype.ProtocolLDAP {
		v.errorf(p+".via", "type %s is read through its cloud API, which the hub reaches itself; an agent serves LDAP directories only (ad, domino or openldap)", c.Type)
		return false
	}
	for _, k := range agentOnlyKeys {
		if v.has(p + "." + k) {
			v.errorf(p+"."+k, "belongs in the agent's configuration (agent.yaml) with via: agent, since the agent reaches and reads the directory; remove it here")
		}
	}
	if c.RootDN == "" && typ != nil && typ.RootDNRequired {
		v.errorf(p+".root_dn", "required for type %s; set the base DN the agent syncs from (the same as in its agent.yaml), which the hub serves as a naming context", c.Type)
	} else if c.RootDN != "" {
		if _, err := parseDN(c.RootDN); err != nil {
			v.errorf(p+".root_dn", "%v", err)
		}
	}
	return true
}

// agentConnectors checks that the connectors read through an agent have
// an agent listener to reach.
func (v *validator) agentConnectors(c *Config) {
	if c.Agent != nil {
		v.agent(c.Agent)
		return
	}
	for i, conn := range c.Connectors {
		if conn.ViaAgent() {
			v.errorf(fmt.Sprintf("connectors[%d].via", i), "needs the hub's agent listener; add an agent: section (at least agent: {server_names: [this hub's name]})")
		}
	}
}
