package authn

import (
	"context"
	"time"

	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/upstream"
)

// LDAPChecker checks passwords with binds to one LDAP connector's upstream,
// through the same pool, failover and typed failures (AD sub-codes
// decoded) as the Authenticator's own checks. The sync agent uses it to
// answer the hub's checks next to the directory.
type LDAPChecker struct{ p *pool }

// NewLDAPChecker returns the checker of an LDAP connector (ad, domino,
// openldap), keeping up to poolSize idle connections. It does not connect.
func NewLDAPChecker(c *config.Connector, poolSize int) (*LDAPChecker, error) {
	target, err := upstream.FromConnector(c)
	if err != nil {
		return nil, err
	}
	return &LDAPChecker{p: &pool{target: target, size: max(0, poolSize), dial: dialTarget, now: time.Now}}, nil
}

// Check binds as dn with password and returns the host that answered, and
// nil or a typed *Error (ReasonUnavailable when no host could be reached).
// It binds at most once.
func (c *LDAPChecker) Check(ctx context.Context, dn, password string) (string, error) {
	return c.p.check(ctx, dn, password)
}

// Close closes the idle connections.
func (c *LDAPChecker) Close() { c.p.close() }
