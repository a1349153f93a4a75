package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/dirtype"
	"github.com/dirgate/dirgate/entra"
	"github.com/dirgate/dirgate/google"
	"github.com/dirgate/dirgate/upstream"
)

// passwordChecker verifies an account's password against the directory
// that owns it: an LDAP bind (pool), Entra's password grant (ropcChecker),
// or a refusal for a directory whose passwords dirgate cannot check
// (noChecker). Login calls it after throttling, so every check is counted,
// delayed on failure and audited alike.
type passwordChecker interface {
	// verify returns the host that answered, and nil or a typed *Error.
	verify(ctx context.Context, e *cache.Entry, password string) (string, error)
	close()
}

// newChecker returns the password checker of connector c: a via: agent
// connector's checks go to its agents; otherwise it is chosen by its
// directory type: LDAP types (and a type no registry entry names, which
// validation refuses) bind; Entra uses the password grant when
// entra.password_check is on; Google binds to Google Secure LDAP when
// google.secure_ldap is set.
func (a *Authenticator) newChecker(c *config.Connector, poolSize int, now func() time.Time) (passwordChecker, error) {
	t, known := dirtype.Lookup(c.Type)
	newPool := func(target *upstream.Target) *pool {
		p := &pool{target: target, size: max(0, poolSize), dial: dialTarget, now: now}
		a.pools[c.Name] = p
		return p
	}
	switch {
	case c.ViaAgent():
		return agentChecker{connector: c.Name, agents: a.agents}, nil
	case !known || t.Protocol == dirtype.ProtocolLDAP:
		target, err := upstream.FromConnector(c)
		if err != nil {
			return nil, err
		}
		return newPool(target), nil
	case c.Type == dirtype.Google && c.Google.SecureLDAP != nil:
		target, err := google.SecureLDAPTarget(c)
		if err != nil {
			return nil, err
		}
		return &secureLDAPChecker{pool: newPool(target), locate: google.NewSecureLDAPLocator(target, c.Google.SecureLDAP)}, nil
	case c.Type == dirtype.Google:
		return a.refuse(c, "google.secure_ldap is not configured: Google has no password-check API, so binds as its users "+
			"are refused (configure Secure LDAP with an LDAP client's certificate to check passwords there, or sign in "+
			"through the OIDC login with Google)"), nil
	case c.Type == dirtype.Entra && c.Entra.PasswordCheck:
		// No answer is awaited past the connector's timeout (the grant
		// itself follows no redirect with the password).
		g, err := entra.NewPasswordGrant(&c.Entra, &http.Client{Timeout: c.Timeout.Std()})
		if err != nil {
			return nil, fmt.Errorf("connector %s: password check: %w", c.Name, err)
		}
		return &ropcChecker{connector: c.Name, grant: g}, nil
	case c.Type == dirtype.Entra:
		return a.refuse(c, "entra.password_check is off: binds as its users are refused (turn it on to check "+
			"passwords with Entra's password grant, or sign in through the OIDC login)"), nil
	}
	return a.refuse(c, t.DisplayName+" passwords cannot be checked by dirgate: binds as its users are refused"), nil
}

// refuse returns the checker that refuses every password of connector c,
// and says why in a warning at start-up.
func (a *Authenticator) refuse(c *config.Connector, why string) passwordChecker {
	a.log.Warn("connector refuses password checks", slog.String("connector", c.Name), slog.String("why", why))
	return noChecker{connector: c.Name, why: why}
}

// secureLDAPChecker checks a Google user's password with a bind to Google
// Secure LDAP, through a pool like the LDAP types' (failover, TLS, typed
// failures), as the user's entry in Google's tree (looked up: the cached
// DN is dirgate's, not Google's).
type secureLDAPChecker struct {
	*pool
	locate *google.SecureLDAPLocator
}

func (s *secureLDAPChecker) verify(ctx context.Context, e *cache.Entry, password string) (string, error) {
	dn, err := s.locate.BindDN(ctx, e.First("primaryEmail"), e.First("orgUnitPath"))
	if err != nil {
		return "", &Error{Reason: ReasonUnavailable, Connector: s.target.Name, Err: err}
	}
	return s.check(ctx, dn, password)
}

// verify binds as the entry (pool.check).
func (p *pool) verify(ctx context.Context, e *cache.Entry, password string) (string, error) {
	return p.check(ctx, e.DN, password)
}

// noChecker refuses every password of a connector whose passwords dirgate
// does not check. The refusal is ReasonRestricted (the account cannot sign
// in this way) rather than a wrong password, so the audit line says why;
// the client still reads "invalid credentials", which tells nothing about
// the account.
type noChecker struct{ connector, why string }

func (n noChecker) verify(context.Context, *cache.Entry, string) (string, error) {
	return "", &Error{Reason: ReasonRestricted, Connector: n.connector, Err: errors.New(n.why)}
}

func (noChecker) close() {}

// ropcChecker checks passwords with Entra's resource-owner password grant
// as the user's userPrincipalName (the login may be an alias: Login
// resolved it to the cached entry).
type ropcChecker struct {
	connector string
	grant     *entra.PasswordGrant
}

// entraReasons maps Entra's refusals of a user to authn's reasons; every
// other class (the app, the tenant or the service is at fault) is
// ReasonUnavailable, with the fix in the audit line.
var entraReasons = map[entra.FailureClass]Reason{
	entra.FailureInvalidCredentials:  ReasonInvalidCredentials,
	entra.FailureUnknownUser:         ReasonUnknownUser,
	entra.FailureDisabled:            ReasonDisabled,
	entra.FailureLocked:              ReasonLocked,
	entra.FailurePasswordExpired:     ReasonPasswordExpired,
	entra.FailureInteractionRequired: ReasonRestricted,
	entra.FailureBlocked:             ReasonRestricted,
}

func (r *ropcChecker) verify(ctx context.Context, e *cache.Entry, password string) (string, error) {
	upn := e.First("userPrincipalName")
	if upn == "" {
		return "", &Error{Reason: ReasonUnavailable, Connector: r.connector, Err: errors.New("the cached entry has no userPrincipalName")}
	}
	host := r.grant.Host()
	err := r.grant.Check(ctx, upn, password)
	if err == nil {
		return host, nil
	}
	var se *entra.STSError
	if !errors.As(err, &se) {
		return host, &Error{Reason: ReasonUnavailable, Connector: r.connector, Err: err}
	}
	if reason, ok := entraReasons[se.Class]; ok {
		return host, &Error{Reason: reason, Connector: r.connector, Err: se, PasswordVerified: se.PasswordVerified}
	}
	return host, &Error{Reason: ReasonUnavailable, Connector: r.connector, Err: fmt.Errorf("%w; fix: %s", se, se.Fix)}
}

func (*ropcChecker) close() {}
