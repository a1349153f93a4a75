package config

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/mail"
	"os"
	"regexp"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Google's endpoints, the defaults of the google section's URL overrides.
const (
	GoogleTokenURL     = "https://oauth2.googleapis.com/token"
	GoogleDirectoryURL = "https://admin.googleapis.com"
	GoogleIssuerURL    = "https://accounts.google.com"
	// GoogleMyCustomer names the customer of the impersonated admin.
	GoogleMyCustomer = "my_customer"
	// GoogleSecureLDAPHost is Google's Secure LDAP service.
	GoogleSecureLDAPHost = "ldap.google.com"
)

// GoogleDefaultRequestsPerMinute is the default of requests_per_minute:
// below the Directory API's default quota of 2,400 queries per minute per
// user and project, so that other tools of the same project keep some.
const GoogleDefaultRequestsPerMinute = 1500

const (
	googleHighestRequestsPerMinute = 100000
	googleServiceAccountKeyType    = "service_account"
	googleKeyFileUsage             = "the JSON key of a service account with domain-wide delegation (IAM > Service accounts > Keys > Add key > JSON)"
)

// Google holds the settings of a Google Workspace connector (type
// google), read through the Admin SDK Directory API with a service
// account that impersonates an administrator (domain-wide delegation).
type Google struct {
	// ServiceAccountKeyFile is the path of the service account's JSON
	// key. Required; the key is never written in the configuration.
	// Relative paths are resolved against the configuration file's
	// directory.
	ServiceAccountKeyFile string `yaml:"service_account_key_file"`
	// ServiceAccountKey is the key file's content, read at load time.
	ServiceAccountKey Secret `yaml:"-"`
	// Admin is the address of the administrator the service account
	// impersonates. Required.
	Admin string `yaml:"admin"`
	// Customer is the customer ID (such as C01abc23d) whose users and
	// groups are listed; default my_customer, the admin's own.
	Customer string `yaml:"customer"`
	// Domain, when set, lists only the users and groups of this one
	// domain of the customer.
	Domain string `yaml:"domain"`
	// OrgUnits, when set, syncs only the users in these organisational
	// units (paths such as /Sales) and beneath them.
	OrgUnits []string `yaml:"org_units"`
	// RequestsPerMinute is the most Directory API requests a run sends in
	// any minute, retries included. Default 1500.
	RequestsPerMinute int `yaml:"requests_per_minute"`
	// TokenURL, DirectoryURL and IssuerURL override Google's token
	// endpoint (default: the key file's token_uri), the Directory API's
	// base and the OpenID issuer of Sign in with Google. https is
	// required, except for loopback addresses. After loading they hold the
	// URLs in use, without a trailing slash.
	TokenURL     string `yaml:"token_url"`
	DirectoryURL string `yaml:"directory_url"`
	IssuerURL    string `yaml:"issuer_url"`
	// SecureLDAP, when set, checks the passwords of LDAP binds of this
	// connector's users with a bind to Google Secure LDAP.
	SecureLDAP *GoogleSecureLDAP `yaml:"secure_ldap"`
	// OAuthClientID is the OAuth client (type Web application) of Sign in
	// with Google, and OAuthClientSecretEnv or OAuthClientSecretFile name
	// where its secret is; google_signin.go checks them and reads the
	// secret into OAuthClientSecret.
	OAuthClientID         string `yaml:"oauth_client_id"`
	OAuthClientSecretEnv  string `yaml:"oauth_client_secret_env"`
	OAuthClientSecretFile string `yaml:"oauth_client_secret_file"`
	OAuthClientSecret     Secret `yaml:"-"`
}

// GoogleSecureLDAP is how dirgate reaches Google Secure LDAP: LDAPS with
// the client certificate of an LDAP client made in the Admin console.
type GoogleSecureLDAP struct {
	// Host defaults to ldap.google.com and Port to 636.
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
	// AlternateHost, when set, is tried when Host does not answer
	// (failover), on the same port.
	AlternateHost string `yaml:"alternate_host"`
	// ClientCertificateFile and ClientKeyFile (PEM) are the LDAP client's
	// certificate and key. Required.
	ClientCertificateFile string `yaml:"client_certificate_file"`
	ClientKeyFile         string `yaml:"client_key_file"`
	// CAFile (PEM) verifies the server; default the system roots.
	CAFile string `yaml:"ca_file"`
	// BaseDN is where users are looked up; default dc=… of the domain
	// (or of the first email domain).
	BaseDN string `yaml:"base_dn"`
}

// GoogleServiceAccount is what dirgate reads from a service account key.
type GoogleServiceAccount struct {
	Type         string `json:"type"`
	ClientEmail  string `json:"client_email"`
	ClientID     string `json:"client_id"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
	TokenURI     string `json:"token_uri"`
}

// ParseGoogleServiceAccount reads a service account's JSON key and checks
// that it can sign: its type, its address and its PKCS#8 (or PKCS#1) RSA
// private key. Messages never quote the key.
func ParseGoogleServiceAccount(data []byte) (*GoogleServiceAccount, error) {
	var sa GoogleServiceAccount
	if err := json.Unmarshal(data, &sa); err != nil {
		return nil, fmt.Errorf("is not a JSON service account key: %v", jsonErrorText(err))
	}
	switch {
	case sa.Type != googleServiceAccountKeyType:
		return nil, fmt.Errorf("is a key of type %q, not %q; download a JSON key of the service account", sa.Type, googleServiceAccountKeyType)
	case sa.ClientEmail == "":
		return nil, fmt.Errorf("has no client_email; download the service account's key again")
	case sa.PrivateKey == "":
		return nil, fmt.Errorf("has no private_key; download the service account's key again")
	}
	block, _ := pem.Decode([]byte(sa.PrivateKey))
	if block == nil {
		return nil, fmt.Errorf("private_key is not PEM; download the service account's key again")
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		if _, err1 := x509.ParsePKCS1PrivateKey(block.Bytes); err1 != nil {
			return nil, fmt.Errorf("private_key does not parse: %v", err)
		}
	}
	return &sa, nil
}

// jsonErrorText keeps only the position of a JSON syntax error: the
// decoder's own text may quote the key's content.
func jsonErrorText(err error) string {
	if se, ok := err.(*json.SyntaxError); ok {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	return "unexpected content"
}

var (
	googleCustomerID = regexp.MustCompile(`^C[0-9A-Za-z]{4,}$`)
	googleOrgUnit    = regexp.MustCompile(`^/[^\x00-\x1f]*$`)
)

// google checks and completes a google: section.
func (v *validator) google(c *Connector, p string) {
	g := &c.Google
	if !v.has(p) {
		v.errorf(p, "required for type google; set service_account_key_file and admin")
		return
	}
	keyTokenURI := v.googleKey(g, p)
	switch {
	case g.Admin == "":
		v.errorf(p+".admin", "required; give the address of the administrator the service account impersonates (domain-wide delegation)")
	case !isAddress(g.Admin):
		v.errorf(p+".admin", "%q is not an email address; give the address of an administrator such as admin@example.com", g.Admin)
	}
	if g.Customer == "" {
		g.Customer = GoogleMyCustomer
	} else if g.Customer != GoogleMyCustomer && !googleCustomerID.MatchString(g.Customer) {
		v.errorf(p+".customer", "%q is not a customer ID; give my_customer or the ID under Account > Account settings, such as C01abc23d", g.Customer)
	}
	if g.Domain != "" {
		g.Domain = strings.ToLower(strings.TrimSuffix(g.Domain, "."))
		if err := checkDomain(g.Domain); err != nil {
			v.errorf(p+".domain", "%v", err)
		}
	}
	for i, ou := range g.OrgUnits {
		if !googleOrgUnit.MatchString(ou) {
			v.errorf(fmt.Sprintf("%s.org_units[%d]", p, i), "%q is not an organisational unit path; paths start with / such as /Sales or /Sales/EMEA", ou)
		}
	}
	v.between(p+".requests_per_minute", &g.RequestsPerMinute, GoogleDefaultRequestsPerMinute, 1, googleHighestRequestsPerMinute)
	if keyTokenURI == "" {
		keyTokenURI = GoogleTokenURL
	}
	g.TokenURL = v.apiURL(p+".token_url", g.TokenURL, keyTokenURI)
	g.DirectoryURL = v.apiURL(p+".directory_url", g.DirectoryURL, GoogleDirectoryURL)
	g.IssuerURL = v.apiURL(p+".issuer_url", g.IssuerURL, GoogleIssuerURL)
	if g.SecureLDAP != nil {
		v.googleSecureLDAP(g, c.EmailDomains, p+".secure_ldap")
	}
	if c.RootDN == "" {
		c.RootDN = "o=" + ldap.EscapeDN(cmp.Or(g.Domain, g.Customer))
	}
}

// googleKey reads and checks the service account key; it returns the
// key's token_uri.
func (v *validator) googleKey(g *Google, p string) string {
	path := p + ".service_account_key_file"
	if g.ServiceAccountKeyFile == "" {
		v.errorf(path, "required; give the path of %s", googleKeyFileUsage)
		return ""
	}
	g.ServiceAccountKeyFile = v.resolvePath(g.ServiceAccountKeyFile)
	data, err := os.ReadFile(g.ServiceAccountKeyFile)
	if err != nil {
		v.errorf(path, "cannot read: %v", err)
		return ""
	}
	sa, err := ParseGoogleServiceAccount(data)
	if err != nil {
		v.errorf(path, "%s %v", g.ServiceAccountKeyFile, err)
		return ""
	}
	g.ServiceAccountKey = Secret(data)
	return sa.TokenURI
}

func (v *validator) googleSecureLDAP(g *Google, emailDomains []string, p string) {
	s := g.SecureLDAP
	if s.Host == "" {
		s.Host = GoogleSecureLDAPHost
	} else if err := checkHost(s.Host); err != nil {
		v.errorf(p+".host", "%v", err)
	}
	if s.AlternateHost != "" {
		if err := checkHost(s.AlternateHost); err != nil {
			v.errorf(p+".alternate_host", "%v", err)
		}
	}
	v.between(p+".port", &s.Port, 636, 1, 65535)
	v.keyPair(p, "client_certificate_file", "client_key_file", &s.ClientCertificateFile, &s.ClientKeyFile, "the LDAP client's certificate or key, as downloaded from Admin console > Apps > LDAP > the client > Authentication")
	if s.CAFile != "" {
		s.CAFile = v.resolvePath(s.CAFile)
		if data, err := os.ReadFile(s.CAFile); err != nil {
			v.errorf(p+".ca_file", "cannot read: %v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(data) {
			v.errorf(p+".ca_file", "%s holds no PEM certificate", s.CAFile)
		}
	}
	if s.BaseDN == "" {
		if d := cmp.Or(g.Domain, firstOr(emailDomains)); d != "" {
			s.BaseDN = domainDN(d)
		}
	} else if _, err := parseDN(s.BaseDN); err != nil {
		v.errorf(p+".base_dn", "%v", err)
	}
}

// keyPair checks a certificate and key named by two keys of section p:
// both given, readable, and a certificate with its key. The paths are
// resolved in place.
func (v *validator) keyPair(p, certKey, keyKey string, certFile, keyFile *string, what string) {
	var pems [2][]byte
	for i, f := range []struct {
		name string
		path *string
	}{{certKey, certFile}, {keyKey, keyFile}} {
		if *f.path == "" {
			v.errorf(p+"."+f.name, "required; give the path of a PEM file with %s", what)
			continue
		}
		*f.path = v.resolvePath(*f.path)
		data, err := os.ReadFile(*f.path)
		if err != nil {
			v.errorf(p+"."+f.name, "cannot read: %v", err)
			continue
		}
		pems[i] = data
	}
	if pems[0] == nil || pems[1] == nil {
		return
	}
	if _, err := tls.X509KeyPair(pems[0], pems[1]); err != nil {
		v.errorf(p, "%s and %s do not load as a certificate and its key: %v", certKey, keyKey, err)
	}
}

// domainDN is dc=example,dc=com for example.com.
func domainDN(domain string) string {
	labels := strings.Split(domain, ".")
	for i, l := range labels {
		labels[i] = "dc=" + ldap.EscapeDN(l)
	}
	return strings.Join(labels, ",")
}

func isAddress(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && a.Name == ""
}

func firstOr(list []string) string {
	if len(list) > 0 {
		return list[0]
	}
	return ""
}
