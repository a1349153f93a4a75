// Package config reads dirgate's YAML configuration file.
//
// Loading is strict: unknown keys, wrong types and invalid values are all
// errors, and every problem in the file is reported at once as
// FILE:LINE: path.to.key: message. Defaults are filled in after decoding,
// relative file paths are resolved against the configuration file's
// directory, and upstream passwords are read from the environment or from
// files so that the configuration itself can be shared without secrets.
// See testdata/valid.yaml for an annotated example.
package config

import (
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/dirgate/dirgate/dirtype"
	"github.com/dirgate/dirgate/passwd"
)

// Connector types, as the directory-type registry names them.
const (
	TypeOpenLDAP = dirtype.OpenLDAP
	TypeAD       = dirtype.ActiveDirectory
	TypeDomino   = dirtype.Domino
	TypeEntra    = dirtype.Entra
	TypeGoogle   = dirtype.Google
)

// Encryption modes for upstream connections.
const (
	// EncryptionStrict uses TLS and verifies the server certificate against
	// CAFile, or the system roots when CAFile is empty.
	EncryptionStrict = "strict"
	// EncryptionRelaxed uses TLS but does not verify the server certificate;
	// it protects against passive eavesdropping only.
	EncryptionRelaxed = "relaxed"
	// EncryptionNone sends everything, passwords included, in clear text.
	EncryptionNone = "none"
)

// TLS modes for upstream connections that use encryption.
const (
	// TLSModeLDAPS speaks TLS from the first byte (port 636 by default).
	TLSModeLDAPS = "ldaps"
	// TLSModeStartTLS connects in clear text and upgrades with the StartTLS
	// extended operation before binding (port 389 by default).
	TLSModeStartTLS = "starttls"
)

// Config is the whole configuration file.
//
// Top-level keys starting with "x-" are ignored, so that settings shared
// by several connectors can be written once under an anchor and merged in:
//
//	x-corp: &corp
//	  type: openldap
//	  root_dn: dc=example,dc=com
//	connectors:
//	  - <<: *corp
//	    name: corp-1
//	    host: ldap1.example.com
type Config struct {
	// Path is the name the configuration was loaded from; relative paths
	// inside it were resolved against its directory.
	Path string `yaml:"-"`
	// Cache configures the embedded database holding synced entries.
	Cache Cache `yaml:"cache"`
	// LDAP configures the LDAP front-end that clients query.
	LDAP LDAPListener `yaml:"ldap"`
	// ServiceAccounts are the accounts clients bind as to search the
	// cache, as opposed to directory users whose binds are passed upstream.
	ServiceAccounts []ServiceAccount `yaml:"service_accounts"`
	// Connectors are the upstream directories to sync from; at least one
	// is required.
	Connectors []Connector `yaml:"connectors"`
	// Auth configures how directory users' passwords are checked: which
	// connector answers for which login domain, throttling of failed
	// attempts, the upstream connection pool and the optional offline
	// verifier. Every key has a default.
	Auth Auth `yaml:"auth"`
	// OIDC configures the OpenID Connect provider; nil (the key left out)
	// means no provider is served.
	OIDC *OIDC `yaml:"oidc"`
	// Schedule sets the time zone of scheduled syncs.
	Schedule Schedule `yaml:"schedule"`
	// Admin configures the admin API, console and health endpoints; nil
	// serves none of them.
	Admin *Admin `yaml:"admin"`
	// Log configures dirgate's own logging.
	Log Log `yaml:"log"`
	// Cluster runs this process as one replica of several sharing a
	// PostgreSQL database; nil runs it alone.
	Cluster *Cluster `yaml:"cluster"`
	// Agent opens the listener sync agents dial out to; nil opens none.
	// Required by connectors with via: agent.
	Agent *Agent `yaml:"agent"`
}

// Cache configures the embedded database.
type Cache struct {
	// Dir is where the database lives. Default "./data". A relative path is
	// resolved against the configuration file's directory, not the working
	// directory, so that a service manager's choice of working directory
	// does not move the data; after loading, Dir holds the resolved path.
	Dir string `yaml:"dir"`
}

// LDAPListener configures the LDAP front-end.
type LDAPListener struct {
	// Listen is the host:port for plain LDAP (upgradable with StartTLS).
	// Default "127.0.0.1:3890": loopback only, so that nothing is exposed
	// until the operator decides to. Use ":389" for all interfaces. Port 0
	// picks a free port, which is useful only in tests.
	Listen string `yaml:"listen"`
	// LDAPSListen is an optional host:port for LDAP over TLS, e.g. ":636".
	// Requires TLS.
	LDAPSListen string `yaml:"ldaps_listen"`
	// TLS is the server certificate for StartTLS and LDAPS. Both files are
	// required when set and must load as a key pair.
	TLS *TLSFiles `yaml:"tls"`
	// StartTLS offers the StartTLS extended operation on Listen. Defaults
	// to true when TLS is set; true without TLS is an error.
	StartTLS bool `yaml:"starttls"`
	// RequireTLSForBind refuses simple binds on connections that are not
	// encrypted, so that passwords never cross the network in clear text.
	// Default false. Requires TLS.
	RequireTLSForBind bool `yaml:"require_tls_for_bind"`
	// AllowAnonymous lets clients search without binding. Default false.
	AllowAnonymous bool `yaml:"allow_anonymous"`
	// SizeLimit caps the entries returned to a search that does not use
	// the paged-results control. Default 1000; at least 1.
	SizeLimit int `yaml:"size_limit"`
	// MaxPageSize caps the page size a client may request with the
	// paged-results control. Default 1000; at least 1.
	MaxPageSize int `yaml:"max_page_size"`
	// IdleTimeout closes client connections with no traffic for this long.
	// Default 15m; must be positive.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxConnections caps concurrent client connections. Default 1024; at
	// least 1.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerAddress caps the concurrent connections from one IP
	// address (IPv6 clients by /64), so that one client cannot take every
	// slot. Default a quarter of MaxConnections; from 1 to MaxConnections.
	// Behind a load balancer or proxy every client shares its address: set
	// it to MaxConnections there.
	MaxConnectionsPerAddress int `yaml:"max_connections_per_address"`
	// FirstRequestTimeout is the idle timeout of a connection until it is
	// established: until a bind with a password succeeds on it or, with
	// AllowAnonymous, until it was answered any request. A connection that
	// has not started to send a request this long after it was accepted
	// (an LDAPS handshake included) or after its last answer is closed, so
	// that connections that send nothing, or one anonymous bind, do not
	// hold slots for a whole IdleTimeout. A monitor that keeps an anonymous
	// connection open to read the root DSE now and then is closed after
	// this much silence while AllowAnonymous is off. Default 10s; positive,
	// at most IdleTimeout.
	FirstRequestTimeout Duration `yaml:"first_request_timeout"`
	// ReadTimeout closes a connection that takes longer than this to send
	// one whole request once its first byte has arrived, so that a client
	// sending a byte at a time cannot hold its slot. Default 30s; positive.
	ReadTimeout Duration `yaml:"read_timeout"`
}

// TLSFiles names a PEM certificate chain and its private key. Relative
// paths are resolved against the configuration file's directory; after
// loading, the fields hold the resolved paths.
type TLSFiles struct {
	// CertFile is the PEM certificate chain, leaf first. Required.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key matching CertFile. Required.
	KeyFile string `yaml:"key_file"`
}

// ServiceAccount is an account local to dirgate that clients (mail servers,
// applications) bind as to search the cache.
type ServiceAccount struct {
	// DN is the bind DN, e.g. "cn=mailserver,ou=services,dc=dirgate".
	// Required; unique, compared case-insensitively.
	DN string `yaml:"dn"`
	// PasswordHash is an argon2id PHC string ($argon2id$v=19$m=..,t=..,p=..$SALT$HASH)
	// or a bcrypt hash ($2a$, $2b$ or $2y$). Required. Plaintext passwords
	// are refused; `dirgate hash-password` prints a suitable hash.
	PasswordHash string `yaml:"password_hash"`
}

// Verify reports whether password matches the account's hash, in constant
// time with respect to where a wrong guess differs. A malformed hash never
// matches.
func (s ServiceAccount) Verify(password string) bool {
	return passwd.Verify(s.PasswordHash, password)
}

// Connector is one upstream directory.
type Connector struct {
	// Name identifies the connector in logs, metrics and the cache.
	// Required; unique; lower-case letters, digits, '-' and '_', starting
	// with a letter or digit, at most 63 characters, because it is used in
	// storage keys and metric labels.
	Name string `yaml:"name"`
	// Description is free text for operators.
	Description string `yaml:"description"`
	// Type is the directory product: openldap, ad or domino. Required,
	// because it selects the schema mapping and the defaults below.
	Type string `yaml:"type"`
	// Via is "agent" for a directory the hub cannot reach, read and
	// checked by a sync agent dialing out to the hub (see Agent): host,
	// encryption, bind account, filters and the other keys that say how
	// the directory is read are then in the agent's agent.yaml and refused
	// here. Empty (the default) reaches the directory directly.
	Via string `yaml:"via"`
	// Host is the primary server: a host name or IP address, without
	// scheme or port. Required.
	Host string `yaml:"host"`
	// AlternateHost is an optional failover server, tried when Host is
	// unreachable; it must differ from Host.
	AlternateHost string `yaml:"alternate_host"`
	// Port is used for both hosts. Default 636 when Encryption is not none
	// and TLSMode is ldaps, otherwise 389.
	Port int `yaml:"port"`
	// Encryption is strict (default), relaxed or none; see the Encryption
	// constants.
	Encryption string `yaml:"encryption"`
	// TLSMode is ldaps (default) or starttls. It must be empty when
	// Encryption is none, because it would have no effect.
	TLSMode string `yaml:"tls_mode"`
	// CAFile is an optional PEM bundle of the CAs trusted to sign the
	// server certificate, replacing the system roots. Only valid with
	// Encryption strict, the only mode that verifies certificates. Relative
	// paths are resolved against the configuration file's directory; after
	// loading, CAFile holds the resolved path.
	CAFile string `yaml:"ca_file"`
	// ServerName overrides the name checked against the server certificate,
	// for servers reached by IP address or an alias. Only valid with TLS.
	ServerName string `yaml:"server_name"`
	// BindDN is the account dirgate binds as to read the directory. Empty
	// means anonymous reads, in which case no password may be configured.
	BindDN string `yaml:"bind_dn"`
	// BindPasswordEnv names the environment variable holding BindDN's
	// password. Exactly one of BindPasswordEnv and BindPasswordFile is
	// required when BindDN is set. The variable is read once, at load.
	BindPasswordEnv string `yaml:"bind_password_env"`
	// BindPasswordFile names a file holding BindDN's password; trailing
	// newlines are removed. Relative paths are resolved against the
	// configuration file's directory; after loading, the field holds the
	// resolved path. The file is read once, at load.
	BindPasswordFile string `yaml:"bind_password_file"`
	// BindPassword is the password read from BindPasswordEnv or
	// BindPasswordFile. It cannot be written in the file.
	BindPassword Secret `yaml:"-"`
	// RootDN is the subtree to sync. Required for openldap and ad; may be
	// empty for domino, whose directory has no common root.
	RootDN string `yaml:"root_dn"`
	// UserFilter selects the entries synced as users. Default by type:
	//   openldap: (|(objectClass=inetOrgPerson)(objectClass=posixAccount))
	//   ad:       (&(objectCategory=person)(objectClass=user))
	//   domino:   (objectClass=dominoPerson)
	UserFilter string `yaml:"user_filter"`
	// GroupFilter selects the entries synced as groups. Default by type:
	//   openldap: (|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))
	//   ad:       (objectClass=group)
	//   domino:   (objectClass=dominoGroup)
	GroupFilter string `yaml:"group_filter"`
	// EmailDomains restricts synced users to those with an address in one
	// of these domains. Written either as a YAML list or as one
	// comma-separated string ("example.com, example.org"); stored
	// lower-cased and without duplicates. Empty means all domains.
	// Internationalised domains must be written in their ASCII (xn--) form.
	EmailDomains []string `yaml:"email_domains" config:"csv"`
	// AcknowledgeDisabledAccounts makes dirgate honour the upstream's own
	// marker for disabled accounts (for example AD's userAccountControl)
	// and treat those accounts as disabled. Default true.
	AcknowledgeDisabledAccounts bool `yaml:"acknowledge_disabled_accounts"`
	// MailAttribute holds a user's primary address. Default "mail".
	MailAttribute string `yaml:"mail_attribute"`
	// AliasAttributes hold further addresses of a user. Default by type:
	// ad ["proxyAddresses"]; openldap and domino none. An explicit empty
	// list turns the type's default off.
	AliasAttributes []string `yaml:"alias_attributes"`
	// Attributes are synced in addition to the ones dirgate needs itself.
	Attributes []string `yaml:"attributes"`
	// PageSize is the paged-results size used when reading the upstream.
	// Default 500; 1 to 5000, since servers commonly cap pages at 1000 to
	// 5000 entries.
	PageSize int `yaml:"page_size"`
	// Timeout bounds each network operation against the upstream. Default
	// 10s; must be positive.
	Timeout Duration `yaml:"timeout"`
	// FullSyncInterval is how often a full reconcile runs even when the
	// source can sync incrementally (syncrepl, DirSync, uSNChanged): a full
	// run catches what incremental reads cannot, such as entries that came
	// into scope without changing. Default 24h.
	FullSyncInterval Duration `yaml:"full_sync_interval"`
	// Schedule lists cron expressions (5 fields, in schedule.time_zone)
	// at which the connector syncs; empty means 08:00, 13:00 and 23:00.
	Schedule []string `yaml:"schedule"`
	// IncrementalInterval, when set, also runs incremental syncs this
	// often between the scheduled runs (sources that support them). 0 is
	// off (the default).
	IncrementalInterval Duration `yaml:"incremental_interval"`
	// Safety limits protect the cache against an upstream that suddenly
	// returns far fewer entries than before.
	Safety Safety `yaml:"safety"`
	// Domino holds Domino-only settings; setting it for another type is an
	// error.
	Domino Domino `yaml:"domino"`
	// Entra holds the settings of type entra (Microsoft Entra ID), which
	// is read through Microsoft Graph: host, port, encryption, bind and
	// filter keys do not apply to it. root_dn defaults to o=<tenant>.
	Entra Entra `yaml:"entra"`
	// Google holds the settings of type google (Google Workspace), read
	// through the Admin SDK Directory API: host, port, encryption, bind
	// and filter keys do not apply to it. root_dn defaults to o=<domain>,
	// or o=<customer> without a domain.
	Google Google `yaml:"google"`
}

// Safety holds limits on deletions a single sync may apply. A sync that
// would exceed either limit is not applied, since a misconfigured filter
// or a half-broken upstream would otherwise empty the cache.
type Safety struct {
	// MaxDeletes blocks a sync that would delete this many entries or more
	// ("met or exceeded", as Entra Connect counts). Default 500; 0 blocks
	// every deletion.
	MaxDeletes int `yaml:"max_deletes"`
	// MaxDeletePercent blocks a sync that would delete more than this
	// percentage of the entries cached for the connector. Default 10;
	// 0 to 100 (0 blocks every deletion, 100 disables the check).
	MaxDeletePercent float64 `yaml:"max_delete_percent"`
}

// Domino holds settings specific to HCL Domino directories.
type Domino struct {
	// HonorAvailableForDirSync skips people and groups whose
	// "Available for Directory Sync" flag is off. Default false.
	HonorAvailableForDirSync bool `yaml:"honor_available_for_dirsync"`
	// DenyGroups names Domino groups whose members are not synced.
	DenyGroups []string `yaml:"deny_groups"`
}

// Log configures dirgate's own logging.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is json (default) or text.
	Format string `yaml:"format"`
}

// Load reads and parses the configuration file at path. Unreadable files
// yield the *fs.PathError from os.ReadFile; problems with the content yield
// an *Error listing all of them.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Connector returns the connector with the given name.
func (c *Config) Connector(name string) (*Connector, bool) {
	for i := range c.Connectors {
		if c.Connectors[i].Name == name {
			return &c.Connectors[i], true
		}
	}
	return nil, false
}

// URLs returns the LDAP URLs to dial, primary host first, e.g.
// ["ldaps://dc1.example.com:636", "ldaps://[2001:db8::2]:636"].
func (c *Connector) URLs() []string {
	scheme := "ldap"
	if c.Encryption != EncryptionNone && c.TLSMode == TLSModeLDAPS {
		scheme = "ldaps"
	}
	hosts := []string{c.Host}
	if c.AlternateHost != "" {
		hosts = append(hosts, c.AlternateHost)
	}
	urls := make([]string, len(hosts))
	for i, h := range hosts {
		urls[i] = scheme + "://" + net.JoinHostPort(h, strconv.Itoa(c.Port))
	}
	return urls
}

// SlogLevel returns Level as a slog.Level; Level has been validated by Load.
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
