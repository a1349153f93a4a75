package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Clouds of Microsoft Entra ID, as entra.cloud names them.
const (
	// CloudGlobal is the worldwide cloud.
	CloudGlobal = "global"
	// CloudUSGov is the US Government cloud for GCC High and DoD tenants.
	CloudUSGov = "usgov"
)

// EntraHosts are the sign-in authority and Graph base URLs of each cloud.
var EntraHosts = map[string]struct{ Authority, Graph string }{
	CloudGlobal: {"https://login.microsoftonline.com", "https://graph.microsoft.com"},
	CloudUSGov:  {"https://login.microsoftonline.us", "https://graph.microsoft.us"},
}

// Entra holds the settings of a Microsoft Entra ID connector (type entra).
type Entra struct {
	// Tenant is the directory (tenant) ID, a GUID, or one of the tenant's
	// verified domains such as contoso.onmicrosoft.com. Required.
	Tenant string `yaml:"tenant"`
	// ClientID is the application (client) ID of dirgate's app
	// registration. Required.
	ClientID string `yaml:"client_id"`
	// ClientSecretEnv names the environment variable holding a client
	// secret of the app; ClientSecretFile names a file holding it. Exactly
	// one of them, or CertificateFile with PrivateKeyFile, is required.
	ClientSecretEnv  string `yaml:"client_secret_env"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// ClientSecret is the secret read from ClientSecretEnv or
	// ClientSecretFile. It cannot be written in the file.
	ClientSecret Secret `yaml:"-"`
	// CertificateFile (PEM) is a certificate uploaded to the app
	// registration and PrivateKeyFile (PEM) its private key: dirgate then
	// signs a client assertion for every token request instead of sending
	// a secret. Relative paths are resolved against the configuration
	// file's directory.
	CertificateFile string `yaml:"certificate_file"`
	PrivateKeyFile  string `yaml:"private_key_file"`
	// SigningAlgorithm signs the client assertion: RS256 (default) or
	// PS256. Only with CertificateFile.
	SigningAlgorithm string `yaml:"signing_algorithm"`
	// Cloud picks the sign-in and Graph hosts: global (default) or usgov
	// (GCC High).
	Cloud string `yaml:"cloud"`
	// AuthorityURL and GraphURL override the cloud's hosts (a proxy, or a
	// test double). https is required, except for loopback addresses.
	// After loading they hold the URLs in use, without a trailing slash.
	AuthorityURL string `yaml:"authority_url"`
	GraphURL     string `yaml:"graph_url"`
	// IncludeGuests syncs guest accounts (userType Guest) too. Default
	// false.
	IncludeGuests bool `yaml:"include_guests"`
	// PasswordCheck checks the passwords of LDAP binds of this
	// connector's users with Entra's resource-owner password grant.
	// Default false.
	PasswordCheck bool `yaml:"password_check"`
	// OnPremisesConnectors names the ad connectors syncing the domains
	// whose users Entra Connect (or Cloud Sync) copies into this tenant.
	// A user of this connector that Entra marks as synced from
	// on-premises, whose onPremisesImmutableId is the objectGUID of a user
	// of one of them, is served once, as that AD user, and signing in
	// with Microsoft signs in as the AD user. Empty (default): no such
	// join; a synced user is served twice, and the addresses both entries
	// share are refused as ambiguous.
	OnPremisesConnectors []string `yaml:"on_premises_connectors"`
}

// OnPremPairs returns, for each entra connector with
// on_premises_connectors, the names of those ad connectors, in the form
// cache.Store.SetOnPremPairs takes.
func (c *Config) OnPremPairs() map[string][]string {
	pairs := map[string][]string{}
	for _, conn := range c.Connectors {
		if conn.Type == TypeEntra && len(conn.Entra.OnPremisesConnectors) > 0 {
			pairs[conn.Name] = conn.Entra.OnPremisesConnectors
		}
	}
	return pairs
}

// onPremConnectors checks every entra.on_premises_connectors against the
// other connectors: each name must be an ad connector, once.
func (v *validator) onPremConnectors(c *Config) {
	types := map[string]string{}
	for _, conn := range c.Connectors {
		types[conn.Name] = conn.Type
	}
	for i, conn := range c.Connectors {
		if conn.Type != TypeEntra {
			continue
		}
		for j, name := range conn.Entra.OnPremisesConnectors {
			p := fmt.Sprintf("connectors[%d].entra.on_premises_connectors[%d]", i, j)
			typ, ok := types[name]
			switch {
			case !ok:
				v.errorf(p, "%q is not a connector; name the ad connector syncing the domain that Entra Connect copies into this tenant", name)
			case typ != TypeAD:
				v.errorf(p, "%q is a connector of type %s; only the users of an ad connector are copied into Entra ID by its directory sync", name, typ)
			case slices.Index(conn.Entra.OnPremisesConnectors, name) < j:
				v.errorf(p, "%q is listed twice; remove one", name)
			}
		}
	}
}

// ldapOnlyKeys are connector keys that describe an LDAP connection and
// mean nothing for a cloud directory.
var ldapOnlyKeys = []string{"host", "alternate_host", "port", "encryption", "tls_mode", "ca_file", "server_name",
	"bind_dn", "bind_password_env", "bind_password_file", "user_filter", "group_filter", "page_size"}

var (
	guid        = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	tenantNames = []string{"common", "organizations", "consumers"}
)

// IsGUID reports whether s is a GUID (8-4-4-4-12 hexadecimal digits, any
// case), the form of an Entra tenant or application ID.
func IsGUID(s string) bool { return guid.MatchString(s) }

// cloudConnector checks a connector of a cloud directory type: it refuses
// the LDAP connection keys and checks the type's section.
func (v *validator) cloudConnector(c *Connector, p string) {
	for _, k := range ldapOnlyKeys {
		if v.has(p + "." + k) {
			v.errorf(p+"."+k, "does not apply to type %s, which is read over its cloud API; remove it", c.Type)
		}
	}
	if c.Type == TypeEntra {
		v.entra(&c.Entra, p+".entra")
		if c.RootDN == "" && c.Entra.Tenant != "" {
			c.RootDN = "o=" + ldap.EscapeDN(strings.ToLower(c.Entra.Tenant))
		}
	}
	if c.Type == TypeGoogle {
		v.google(c, p+".google")
	}
	if c.RootDN != "" {
		if _, err := parseDN(c.RootDN); err != nil {
			v.errorf(p+".root_dn", "%v", err)
		}
	}
}

// entra checks and completes an entra: section.
func (v *validator) entra(e *Entra, p string) {
	switch {
	case !v.has(p):
		v.errorf(p, "required for type entra; set tenant, client_id and a client secret or certificate")
		return
	case e.Tenant == "":
		v.errorf(p+".tenant", "required; give the directory (tenant) ID or a verified domain such as contoso.onmicrosoft.com")
	case containsFold(tenantNames, e.Tenant):
		v.errorf(p+".tenant", "%q is not one tenant; app-only access needs the directory (tenant) ID or a verified domain", e.Tenant)
	case !guid.MatchString(e.Tenant) && checkDomain(strings.ToLower(e.Tenant)) != nil:
		v.errorf(p+".tenant", "%q is neither a directory (tenant) ID (a GUID) nor a domain name such as contoso.onmicrosoft.com", e.Tenant)
	}
	if e.ClientID == "" {
		v.errorf(p+".client_id", "required; give the application (client) ID of the app registration")
	} else if !guid.MatchString(e.ClientID) {
		v.errorf(p+".client_id", "%q is not an application (client) ID, which is a GUID such as 00000000-0000-0000-0000-000000000000", e.ClientID)
	}
	v.entraCredentials(e, p)

	if e.Cloud == "" {
		e.Cloud = CloudGlobal
	}
	if v.oneOf(p+".cloud", e.Cloud, CloudGlobal, CloudUSGov) {
		hosts := EntraHosts[e.Cloud]
		e.AuthorityURL = v.apiURL(p+".authority_url", e.AuthorityURL, hosts.Authority)
		e.GraphURL = v.apiURL(p+".graph_url", e.GraphURL, hosts.Graph)
	}
}

// entraCredentials checks that exactly one kind of credential is given
// and reads the secret, or checks that the certificate and key load.
// Messages name the variable or file, never the secret.
func (v *validator) entraCredentials(e *Entra, p string) {
	hasSecret := e.ClientSecretEnv != "" || e.ClientSecretFile != ""
	hasCert := e.CertificateFile != "" || e.PrivateKeyFile != ""
	switch {
	case hasSecret && hasCert:
		v.errorf(p+".certificate_file", "a client secret is set too; use either a secret (client_secret_env or client_secret_file) or a certificate, not both")
	case !hasSecret && !hasCert:
		v.errorf(p, "needs a credential; set client_secret_env or client_secret_file to a client secret of the app, or certificate_file and private_key_file to a certificate uploaded to it")
	case hasSecret:
		e.ClientSecret = v.secret(p, "client_secret", &e.ClientSecretEnv, &e.ClientSecretFile, "client secret")
	default:
		v.entraCertificate(e, p)
	}
	if e.SigningAlgorithm != "" && !hasCert {
		v.errorf(p+".signing_algorithm", "only applies to a certificate; remove it, or set certificate_file and private_key_file")
	} else if hasCert {
		if e.SigningAlgorithm == "" {
			e.SigningAlgorithm = "RS256"
		}
		v.oneOf(p+".signing_algorithm", e.SigningAlgorithm, "RS256", "PS256")
	}
}

func (v *validator) entraCertificate(e *Entra, p string) {
	v.keyPair(p, "certificate_file", "private_key_file", &e.CertificateFile, &e.PrivateKeyFile, "the application's certificate or its private key")
}

// apiURL checks an override of a cloud API's base URL and returns the URL
// to use: the override without a trailing slash, or def.
func (v *validator) apiURL(path, raw, def string) string {
	if raw == "" {
		return def
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		v.errorf(path, "%q is not an http(s) URL such as %s", raw, def)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		v.errorf(path, "%q has a query, fragment or user name; give only scheme, host and path", raw)
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		v.errorf(path, "%q is plain http; credentials and tokens would travel in clear text: use https (http is allowed for loopback addresses only)", raw)
	}
	return strings.TrimRight(raw, "/")
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
