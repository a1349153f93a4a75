package google

import (
	"crypto/tls"
	"fmt"
	"strings"

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

// SecureLDAPBindDN is the DN a user binds as at Google Secure LDAP: the
// entry Google keeps for the user, uid=<local part of the primary
// email>,ou=Users,<base DN>.
func SecureLDAPBindDN(s *config.GoogleSecureLDAP, primaryEmail string) (string, error) {
	local, _, ok := strings.Cut(primaryEmail, "@")
	if !ok || local == "" {
		return "", fmt.Errorf("primary email %q has no local part", primaryEmail)
	}
	if s.BaseDN == "" {
		return "", fmt.Errorf("google.secure_ldap.base_dn is not set and no domain gives one")
	}
	return "uid=" + ldap.EscapeDN(local) + ",ou=Users," + s.BaseDN, nil
}
