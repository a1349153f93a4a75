package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/dirtype"
	"github.com/dirgate/dirgate/passwd"
)

// validator fills in defaults and checks values after decoding. It shares
// the decoder's record of lines and set paths, so it can point at the line
// of any key, or at the enclosing mapping for a key that is missing.
type validator struct {
	*decoder
	dir string // base for relative paths
}

func (v *validator) errorf(path, format string, args ...any) {
	v.add(v.lineOf(path), path, format, args...)
}

func (v *validator) lineOf(path string) int {
	for {
		if line, ok := v.lines[path]; ok {
			return line
		}
		if path == "" {
			return 1
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			i = 0
		}
		path = path[:i]
	}
}

// has reports whether the file gave path a value, as opposed to leaving it
// for the default.
func (v *validator) has(path string) bool { return v.set[path] }

func (v *validator) oneOf(path, value string, allowed ...string) bool {
	if slices.Contains(allowed, value) {
		return true
	}
	v.errorf(path, "%q is not one of %s", value, strings.Join(allowed, ", "))
	return false
}

func (v *validator) resolvePath(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(v.dir, p)
}

func (v *validator) config(c *Config) {
	if c.Cache.Dir == "" {
		c.Cache.Dir = "./data"
	}
	c.Cache.Dir = v.resolvePath(c.Cache.Dir)

	v.listener(&c.LDAP, "ldap")
	v.serviceAccounts(c.ServiceAccounts)

	if len(c.Connectors) == 0 {
		v.errorf("connectors", "at least one connector is required; list the upstream directories to sync under connectors:")
	}
	names := map[string]int{}
	for i := range c.Connectors {
		p := fmt.Sprintf("connectors[%d]", i)
		conn := &c.Connectors[i]
		v.connector(conn, p)
		if j, dup := names[conn.Name]; dup && conn.Name != "" {
			v.errorf(p+".name", "%q is already used by connectors[%d]; connector names must be unique", conn.Name, j)
		} else {
			names[conn.Name] = i
		}
	}
	v.onPremConnectors(c)
	v.agentConnectors(c)

	v.auth(c)
	if c.OIDC != nil {
		v.oidc(c.OIDC)
	}
	v.operations(c)
	if c.Cluster != nil {
		v.cluster(c.Cluster)
	}

	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	v.oneOf("log.format", c.Log.Format, "json", "text")
}

func (v *validator) listener(l *LDAPListener, p string) {
	if !v.has(p + ".listen") {
		l.Listen = "127.0.0.1:3890"
	}
	v.listenAddr(p+".listen", l.Listen, "3890")
	if l.LDAPSListen != "" {
		v.listenAddr(p+".ldaps_listen", l.LDAPSListen, "636")
		switch {
		case l.TLS == nil:
			v.errorf(p+".ldaps_listen", "needs a certificate; set ldap.tls.cert_file and ldap.tls.key_file, or remove ldaps_listen")
		case l.LDAPSListen == l.Listen:
			v.errorf(p+".ldaps_listen", "is the same address as listen; give LDAPS its own port, e.g. \":636\"")
		}
	}
	if l.TLS != nil {
		v.tlsFiles(l.TLS, p+".tls")
	}
	if !v.has(p + ".starttls") {
		l.StartTLS = l.TLS != nil
	} else if l.StartTLS && l.TLS == nil {
		v.errorf(p+".starttls", "needs a certificate; set ldap.tls.cert_file and ldap.tls.key_file, or set starttls: false")
	}
	if l.RequireTLSForBind && l.TLS == nil {
		v.errorf(p+".require_tls_for_bind", "without ldap.tls no connection can be encrypted, so every bind would be refused; configure ldap.tls or set require_tls_for_bind: false")
	}
	v.atLeast(p+".size_limit", &l.SizeLimit, 1000, 1)
	v.atLeast(p+".max_page_size", &l.MaxPageSize, 1000, 1)
	v.positiveDuration(p+".idle_timeout", &l.IdleTimeout, 15*time.Minute)
	v.positiveDuration(p+".first_request_timeout", &l.FirstRequestTimeout, min(10*time.Second, l.IdleTimeout.Std()))
	if l.IdleTimeout > 0 && l.FirstRequestTimeout > l.IdleTimeout {
		v.errorf(p+".first_request_timeout", "%s is longer than idle_timeout (%s); a connection would idle longer before it is established (bound) than after", l.FirstRequestTimeout, l.IdleTimeout)
	}
	v.positiveDuration(p+".read_timeout", &l.ReadTimeout, 30*time.Second)
	v.atLeast(p+".max_connections", &l.MaxConnections, 1024, 1)
	v.between(p+".max_connections_per_address", &l.MaxConnectionsPerAddress, max(1, l.MaxConnections/4), 1, max(1, l.MaxConnections))
}

// listenAddr checks a host:port to listen on; examplePort is used in the
// hint.
func (v *validator) listenAddr(path, addr, examplePort string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.errorf(path, "%q is not host:port; write e.g. \"127.0.0.1:%s\", or \":%s\" for all interfaces", addr, examplePort, examplePort)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.errorf(path, "port %q must be a number from 0 to 65535", port)
		return
	}
	if host != "" {
		if err := checkHost(host); err != nil {
			v.errorf(path, "%v", err)
		}
	}
}

// caFile resolves *file in place and checks that it holds PEM
// certificates.
func (v *validator) caFile(path string, file *string) {
	*file = v.resolvePath(*file)
	if data, err := os.ReadFile(*file); err != nil {
		v.errorf(path, "cannot read: %v", err)
	} else if !x509.NewCertPool().AppendCertsFromPEM(data) {
		v.errorf(path, "%s contains no PEM certificates; give a file with one or more \"-----BEGIN CERTIFICATE-----\" blocks", *file)
	}
}

func (v *validator) tlsFiles(t *TLSFiles, p string) {
	v.keyPair(p, "cert_file", "key_file", &t.CertFile, &t.KeyFile, "the listener's certificate or its key")
}

func (v *validator) atLeast(path string, n *int, def, lowest int) {
	if !v.has(path) {
		*n = def
	} else if *n < lowest {
		v.errorf(path, "must be at least %d, got %d", lowest, *n)
	}
}

func (v *validator) between(path string, n *int, def, lowest, highest int) {
	if !v.has(path) {
		*n = def
	} else if *n < lowest || *n > highest {
		v.errorf(path, "must be from %d to %d, got %d", lowest, highest, *n)
	}
}

func (v *validator) positiveDuration(path string, d *Duration, def time.Duration) {
	if !v.has(path) {
		*d = Duration(def)
	} else if *d <= 0 {
		v.errorf(path, "must be positive, got %s", d)
	}
}

func (v *validator) serviceAccounts(accounts []ServiceAccount) {
	type seenDN struct {
		dn    *ldap.DN
		index int
	}
	var seen []seenDN
	for i, sa := range accounts {
		p := fmt.Sprintf("service_accounts[%d]", i)
		if sa.DN == "" {
			v.errorf(p+".dn", "required; set the DN clients bind as, e.g. cn=mailserver,ou=services,dc=dirgate")
		} else if dn, err := parseDN(sa.DN); err != nil {
			v.errorf(p+".dn", "%v", err)
		} else {
			for _, s := range seen {
				if s.dn.EqualFold(dn) {
					v.errorf(p+".dn", "same DN as service_accounts[%d] (DNs are compared case-insensitively); each account needs its own DN", s.index)
					break
				}
			}
			seen = append(seen, seenDN{dn, i})
		}
		if sa.PasswordHash == "" {
			v.errorf(p+".password_hash", "required; run `dirgate hash-password` and paste its output here")
		} else if err := passwd.CheckHash(sa.PasswordHash); err != nil {
			v.errorf(p+".password_hash", "%v", err)
		}
	}
}

var connectorName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

func (v *validator) connector(c *Connector, p string) {
	switch {
	case c.Name == "":
		v.errorf(p+".name", "required; give the connector a short unique name such as \"corp-ldap\"")
	case !connectorName.MatchString(c.Name):
		v.errorf(p+".name", "%q is not a valid name; use up to 63 lower-case letters, digits, \"-\" and \"_\", starting with a letter or digit", c.Name)
	}
	var typ *dirtype.Type
	if c.Type == "" {
		v.errorf(p+".type", "required; set one of %s", strings.Join(dirtype.Names(), ", "))
	} else if v.oneOf(p+".type", c.Type, dirtype.Names()...) {
		typ, _ = dirtype.Lookup(c.Type)
	}

	switch {
	case v.via(c, typ, p):
	case typ != nil && typ.Protocol != dirtype.ProtocolLDAP:
		v.cloudConnector(c, p)
	default:
		v.ldapConnection(c, typ, p)
	}

	v.emailDomains(c, p)
	if !v.has(p + ".acknowledge_disabled_accounts") {
		c.AcknowledgeDisabledAccounts = true
	}
	if c.MailAttribute == "" {
		c.MailAttribute = "mail"
	}
	v.attributeName(p+".mail_attribute", c.MailAttribute)
	if !v.has(p+".alias_attributes") && typ != nil && len(typ.Mapping.Aliases) > 0 {
		c.AliasAttributes = slices.Clone(typ.Mapping.Aliases)
	}
	for i, a := range c.AliasAttributes {
		v.attributeName(fmt.Sprintf("%s.alias_attributes[%d]", p, i), a)
	}
	for i, a := range c.Attributes {
		v.attributeName(fmt.Sprintf("%s.attributes[%d]", p, i), a)
	}
	v.between(p+".page_size", &c.PageSize, 500, 1, 5000)
	v.positiveDuration(p+".timeout", &c.Timeout, 10*time.Second)
	v.positiveDuration(p+".full_sync_interval", &c.FullSyncInterval, 24*time.Hour)

	v.atLeast(p+".safety.max_deletes", &c.Safety.MaxDeletes, 500, 0)
	if !v.has(p + ".safety.max_delete_percent") {
		c.Safety.MaxDeletePercent = 10
	} else if pct := c.Safety.MaxDeletePercent; pct < 0 || pct > 100 {
		v.errorf(p+".safety.max_delete_percent", "must be from 0 to 100, got %g", pct)
	}

	v.sections(typ, p)
	for i, g := range c.Domino.DenyGroups {
		if strings.TrimSpace(g) == "" {
			v.errorf(fmt.Sprintf("%s.domino.deny_groups[%d]", p, i), "is empty; give a Domino group name")
		}
	}
}

// ldapConnection checks how dirgate reaches and reads an LDAP directory:
// hosts, transport, credentials, root DN and filters.
func (v *validator) ldapConnection(c *Connector, typ *dirtype.Type, p string) {
	if c.Host == "" {
		v.errorf(p+".host", "required; set the upstream server's host name or IP address")
	} else if err := checkHost(c.Host); err != nil {
		v.errorf(p+".host", "%v", err)
	}
	if c.AlternateHost != "" {
		if err := checkHost(c.AlternateHost); err != nil {
			v.errorf(p+".alternate_host", "%v", err)
		} else if strings.EqualFold(c.AlternateHost, c.Host) {
			v.errorf(p+".alternate_host", "is the same as host; name a different server, or remove alternate_host")
		}
	}

	v.transport(c, p)
	v.bind(c, p)

	if c.RootDN == "" {
		if typ != nil && typ.RootDNRequired {
			v.errorf(p+".root_dn", "required for type %s; set the base DN to sync from, e.g. dc=example,dc=com", c.Type)
		}
	} else if _, err := parseDN(c.RootDN); err != nil {
		v.errorf(p+".root_dn", "%v", err)
	}

	if typ != nil && c.UserFilter == "" {
		c.UserFilter = typ.UserFilter
	}
	v.filter(p+".user_filter", c.UserFilter)
	if typ != nil && c.GroupFilter == "" {
		c.GroupFilter = typ.GroupFilter
	}
	v.filter(p+".group_filter", c.GroupFilter)
}

// sections refuses the type-specific sections (such as domino:) that the
// connector's type (nil when missing or unknown) does not accept.
func (v *validator) sections(typ *dirtype.Type, p string) {
	for _, s := range dirtype.Sections() {
		if !v.has(p+"."+s) || (typ != nil && typ.HasSection(s)) {
			continue
		}
		var owners []string
		for _, t := range dirtype.All() {
			if t.HasSection(s) {
				owners = append(owners, t.Name)
			}
		}
		v.errorf(p+"."+s, "only applies to type %s; remove it", strings.Join(owners, " or "))
	}
}

// transport checks how dirgate reaches the upstream: encryption, TLS mode,
// port and certificate verification settings.
func (v *validator) transport(c *Connector, p string) {
	if c.Encryption == "" {
		c.Encryption = EncryptionStrict
	}
	v.oneOf(p+".encryption", c.Encryption, EncryptionStrict, EncryptionRelaxed, EncryptionNone)
	plain := c.Encryption == EncryptionNone
	if plain {
		if c.TLSMode != "" {
			v.errorf(p+".tls_mode", "has no effect with encryption none; remove tls_mode, or set encryption to strict or relaxed")
		}
	} else {
		if c.TLSMode == "" {
			c.TLSMode = TLSModeLDAPS
		}
		v.oneOf(p+".tls_mode", c.TLSMode, TLSModeLDAPS, TLSModeStartTLS)
	}

	if !v.has(p + ".port") {
		c.Port = 389
		if !plain && c.TLSMode == TLSModeLDAPS {
			c.Port = 636
		}
	} else if c.Port < 1 || c.Port > 65535 {
		v.errorf(p+".port", "must be from 1 to 65535, got %d", c.Port)
	} else if !plain && c.TLSMode == TLSModeStartTLS && c.Port == 636 {
		v.errorf(p+".port", "636 is the LDAPS port, where servers expect TLS from the first byte, but tls_mode starttls begins in clear text; use port 389, or set tls_mode: ldaps")
	}

	if c.CAFile != "" {
		if c.Encryption != EncryptionStrict {
			v.errorf(p+".ca_file", "is only used with encryption strict, the only mode that verifies certificates; remove ca_file or set encryption: strict")
		} else {
			v.caFile(p+".ca_file", &c.CAFile)
		}
	}
	if c.ServerName != "" {
		if plain {
			v.errorf(p+".server_name", "is only used with TLS; remove server_name, or set encryption to strict or relaxed")
		} else if err := checkHost(c.ServerName); err != nil {
			v.errorf(p+".server_name", "%v", err)
		}
	}
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// bind checks the upstream credentials and reads the password. Messages
// may name the variable or file but never include the password.
func (v *validator) bind(c *Connector, p string) {
	hasEnv, hasFile := c.BindPasswordEnv != "", c.BindPasswordFile != ""
	if c.BindDN == "" {
		for _, k := range []struct {
			set  bool
			name string
		}{{hasEnv, "bind_password_env"}, {hasFile, "bind_password_file"}} {
			if k.set {
				v.errorf(p+"."+k.name, "is set but bind_dn is empty; set bind_dn, or remove %s to read the upstream anonymously", k.name)
			}
		}
		return
	}
	if _, err := parseDN(c.BindDN); err != nil {
		v.errorf(p+".bind_dn", "%v", err)
	}
	if !hasEnv && !hasFile {
		v.errorf(p+".bind_dn", "needs a password; set bind_password_env to the name of an environment variable holding it, or bind_password_file to a file containing it")
		return
	}
	c.BindPassword = v.secret(p, "bind_password", &c.BindPasswordEnv, &c.BindPasswordFile, "password")
}

// secret reads a credential from the environment variable named by the
// key <prefix>_env or from the file named by <prefix>_file (resolving
// *file), of which exactly one is set. what names the credential in
// messages, which may name the variable or file but never the value.
func (v *validator) secret(p, prefix string, env, file *string, what string) Secret {
	switch {
	case *env != "" && *file != "":
		v.errorf(p+"."+prefix+"_file", "%s_env is set too; keep only one of them", prefix)
	case *env != "":
		path := p + "." + prefix + "_env"
		if !envName.MatchString(*env) {
			// Not quoted: a value that is no variable name may be the
			// secret itself.
			v.errorf(path, "is not an environment variable name (letters, digits and \"_\", not starting with a digit); give the variable's name, not the %s", what)
			return ""
		}
		val := os.Getenv(*env)
		if val == "" {
			v.errorf(path, "environment variable %s is not set or is empty; export it before starting dirgate", *env)
			return ""
		}
		return Secret(val)
	case *file != "":
		path := p + "." + prefix + "_file"
		*file = v.resolvePath(*file)
		data, err := os.ReadFile(*file)
		if err != nil {
			v.errorf(path, "cannot read: %v", err)
			return ""
		}
		val := strings.TrimRight(string(data), "\r\n")
		if val == "" {
			v.errorf(path, "%s is empty; write the %s into it", *file, what)
			return ""
		}
		return Secret(val)
	}
	return ""
}

func (v *validator) filter(path, f string) {
	if f == "" {
		return // only when the type is invalid, which is already reported
	}
	if _, err := ldap.CompileFilter(f); err != nil {
		var lerr *ldap.Error
		if errors.As(err, &lerr) && lerr.Err != nil {
			err = lerr.Err
		}
		v.errorf(path, "%q is not a valid LDAP filter (%v); filters look like (objectClass=person) or (&(objectClass=person)(mail=*))", f, err)
	}
}

func (v *validator) emailDomains(c *Connector, p string) {
	var out []string
	for i, d := range c.EmailDomains {
		d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
		if d == "" {
			continue
		}
		if err := checkDomain(d); err != nil {
			v.errorf(fmt.Sprintf("%s.email_domains[%d]", p, i), "%v", err)
			continue
		}
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	c.EmailDomains = out
}

// attributeDescription is an LDAP attribute name or OID, with options
// such as ";binary".
var attributeDescription = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)+)(;[A-Za-z0-9-]+)*$`)

func (v *validator) attributeName(path, a string) {
	if !attributeDescription.MatchString(a) {
		v.errorf(path, "%q is not an LDAP attribute name; names start with a letter and contain letters, digits and \"-\"", a)
	}
}

// attributeType is an attribute type as it may appear in a DN.
var attributeType = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)+)$`)

// parseDN is ldap.ParseDN with the checks it leaves out: ";" as an RDN
// separator (obsolete since RFC 4514 and almost always a typo), malformed
// attribute types and empty values.
func parseDN(s string) (*ldap.DN, error) {
	const example = "; a DN looks like cn=reader,ou=people,dc=example,dc=com, with \\ before any , + ; \" < > \\ inside a value"
	escaped := false
	for i, r := range s {
		switch {
		case escaped:
			escaped = false
		case r == '\\':
			escaped = true
		case r == ';':
			return nil, fmt.Errorf("\"%s\" is not a valid DN: unescaped \";\" at offset %d; write \\; if it is part of a value, or separate RDNs with \",\"", s, i)
		}
	}
	dn, err := ldap.ParseDN(s)
	if err != nil {
		return nil, fmt.Errorf("\"%s\" is not a valid DN (%v)%s", s, err, example)
	}
	if len(dn.RDNs) == 0 {
		return nil, fmt.Errorf("is blank%s", example)
	}
	for _, rdn := range dn.RDNs {
		for _, a := range rdn.Attributes {
			if !attributeType.MatchString(a.Type) {
				return nil, fmt.Errorf("\"%s\" is not a valid DN: %q is not an attribute type%s", s, a.Type, example)
			}
			if a.Value == "" {
				return nil, fmt.Errorf("\"%s\" is not a valid DN: %s= has no value%s", s, a.Type, example)
			}
		}
	}
	return dn, nil
}

// checkHost accepts a bare host name or IP address: no scheme, no port,
// no brackets, because those are set elsewhere and URLs adds them.
func checkHost(h string) error {
	switch {
	case strings.Contains(h, "://"):
		return fmt.Errorf("%q includes a scheme; write only the host name, and choose LDAPS or StartTLS with encryption and tls_mode", h)
	case strings.HasPrefix(h, "["):
		return fmt.Errorf("%q has brackets; write IPv6 addresses without them", h)
	}
	if addr, err := netip.ParseAddr(h); err == nil {
		if addr.Zone() != "" {
			return fmt.Errorf("%q has an IPv6 zone, which is not supported; use a global address or a host name", h)
		}
		return nil
	}
	if _, port, err := net.SplitHostPort(h); err == nil {
		return fmt.Errorf("%q includes a port; remove \":%s\" and set port: %s instead", h, port, port)
	}
	if !isHostname(h) {
		return fmt.Errorf("%q is not a valid host name or IP address", h)
	}
	return nil
}

func isHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	// A numeric last label is a mistyped IP address, not a name.
	_, err := strconv.Atoi(labels[len(labels)-1])
	return err != nil
}

func checkDomain(d string) error {
	switch {
	case strings.HasPrefix(d, "@"):
		return fmt.Errorf("%q starts with @; write only the domain, e.g. %q", d, d[1:])
	case strings.Contains(d, "@"):
		return fmt.Errorf("%q is an address; write only the domain after the @", d)
	}
	for _, r := range d {
		if r > 127 {
			return fmt.Errorf("%q is not ASCII; write internationalised domains in their xn-- form", d)
		}
	}
	if !isHostname(d) || !strings.Contains(strings.TrimSuffix(d, "."), ".") {
		return fmt.Errorf("%q is not a domain name such as example.com", d)
	}
	return nil
}
