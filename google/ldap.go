package google

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/upstream"
)

// Google Secure LDAP checks user passwords, Google having no API for it:
// an LDAP client made in the Admin console connects over LDAPS with the
// certificate Google issued it, and a simple bind as the user's entry in
// Google's tree checks the password. Suspended users cannot bind there.

// SecureLDAPTarget is the upstream of connector c's secure_ldap section:
// LDAPS with strict certificate checks, the LDAP client's certificate,
// and the connector's timeout. c.Google.SecureLDAP must be set.
func SecureLDAPTarget(c *config.Connector) (*upstream.Target, error) {
	s := c.Google.SecureLDAP
	cert, err := tls.LoadX509KeyPair(s.ClientCertificateFile, s.ClientKeyFile)
	if err != nil {
		return nil, fmt.Errorf("connector %s: google.secure_ldap client certificate: %w", c.Name, err)
	}
	t := &upstream.Target{
		Name:       c.Name,
		Hosts:      []string{s.Host},
		Port:       s.Port,
		Encryption: upstream.EncryptionStrict,
		TLSMode:    upstream.TLSModeLDAPS,
		Timeout:    c.Timeout.Std(),
		ClientCert: &cert,
	}
	if s.AlternateHost != "" {
		t.Hosts = append(t.Hosts, s.AlternateHost)
	}
	if t.Timeout <= 0 {
		t.Timeout = upstream.DefaultTimeout
	}
	if s.CAFile != "" {
		if t.RootCAs, err = upstream.LoadCAFile(s.CAFile); err != nil {
			return nil, fmt.Errorf("connector %s: google.secure_ldap.ca_file: %w", c.Name, err)
		}
	}
	return t, nil
}

// SecureLDAPLocator finds the entry a user binds as in Google's tree.
// Google places people under their org unit (uid=lisa,ou=EU,ou=Sales,
// ou=Users,<base DN> for /Sales/EU), and users of secondary domains can
// share a local part, so the DN is looked up: a search for the primary
// email under the base DN, with the client certificate (the LDAP client
// needs "Read user information" for it). A search that finds nothing or
// is refused falls back to the DN the cached org unit path gives. Found
// DNs are remembered per address and org unit path: a move to another
// org unit, once synced, looks the user up again.
type SecureLDAPLocator struct {
	target *upstream.Target
	baseDN string

	mu    sync.Mutex
	found map[[2]string]string
}

// maxLocated bounds the DNs a locator remembers; past it, it starts over.
const maxLocated = 10000

// NewSecureLDAPLocator returns the locator that searches target (the
// connector's SecureLDAPTarget) under s.BaseDN.
func NewSecureLDAPLocator(target *upstream.Target, s *config.GoogleSecureLDAP) *SecureLDAPLocator {
	return &SecureLDAPLocator{target: target, baseDN: s.BaseDN, found: map[[2]string]string{}}
}

// BindDN returns the DN the user with primaryEmail, cached in the org unit
// orgUnitPath, binds as. Its error is the search's when Secure LDAP could
// not be reached or answered otherwise than with entries or a refusal.
func (l *SecureLDAPLocator) BindDN(ctx context.Context, primaryEmail, orgUnitPath string) (string, error) {
	fallback, err := orgUnitBindDN(l.baseDN, primaryEmail, orgUnitPath)
	if err != nil {
		return "", err
	}
	key := [2]string{strings.ToLower(primaryEmail), orgUnitPath}
	l.mu.Lock()
	dn, ok := l.found[key]
	l.mu.Unlock()
	if ok {
		return dn, nil
	}
	dn, err = l.search(ctx, primaryEmail)
	if err != nil {
		return "", err
	}
	if dn == "" {
		// Not remembered: the search may find the user once the client
		// may read users, or Google has caught up with a new user.
		return fallback, nil
	}
	l.mu.Lock()
	if len(l.found) >= maxLocated {
		clear(l.found)
	}
	l.found[key] = dn
	l.mu.Unlock()
	return dn, nil
}

// search returns the DN of the one entry whose mail is primaryEmail, or ""
// when there is none, more than one, or the client may not search.
func (l *SecureLDAPLocator) search(ctx context.Context, primaryEmail string) (string, error) {
	conn, _, err := l.target.Dial(ctx)
	if err != nil {
		return "", fmt.Errorf("google.secure_ldap: looking up %s: %w", primaryEmail, err)
	}
	defer conn.Close()
	res, err := conn.Search(ldap.NewSearchRequest(l.baseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2,
		int(l.target.Timeout.Seconds()), false, "(mail="+ldap.EscapeFilter(primaryEmail)+")", []string{"1.1"}, nil))
	if err != nil {
		var le *ldap.Error
		if !errors.As(err, &le) || le.ResultCode >= ldap.ErrorNetwork {
			return "", fmt.Errorf("google.secure_ldap: looking up %s: %w", primaryEmail, err)
		}
		// Secure LDAP answered, but not with one entry: refused (no "Read
		// user information", a base DN outside the client's reach) or
		// more than one; the bind says whether the fallback is right.
		return "", nil
	}
	if len(res.Entries) != 1 {
		return "", nil
	}
	return res.Entries[0].DN, nil
}

// orgUnitBindDN is the DN Google gives the user with primaryEmail in the
// org unit orgUnitPath: uid=<local part>, then the org units from the
// innermost to the root's ou=Users, then baseDN.
func orgUnitBindDN(baseDN, primaryEmail, orgUnitPath string) (string, error) {
	local, _, ok := strings.Cut(primaryEmail, "@")
	if !ok || local == "" {
		return "", fmt.Errorf("primary email %q has no local part", primaryEmail)
	}
	if baseDN == "" {
		return "", fmt.Errorf("google.secure_ldap.base_dn is not set and no domain gives one")
	}
	var b strings.Builder
	b.WriteString("uid=" + ldap.EscapeDN(local))
	units := strings.Split(strings.Trim(orgUnitPath, "/"), "/")
	for i := len(units) - 1; i >= 0; i-- {
		if units[i] != "" {
			b.WriteString(",ou=" + ldap.EscapeDN(units[i]))
		}
	}
	b.WriteString(",ou=Users," + baseDN)
	return b.String(), nil
}
