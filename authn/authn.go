// Package authn checks passwords: it resolves a login (a DN or an email
// address) to a cached account, then verifies the password with a bind
// against the upstream directory that owns the account, failing over from
// the primary host to the alternate. Passwords are never stored.
package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/dn"
	"github.com/dirgate/dirgate/upstream"
)

// Reason classifies an authentication failure. Front-ends map it to their
// own result (an LDAP result code, an OIDC error page) in one place; a
// message to an end user never tells whether an account exists.
type Reason int

// The distinct authentication failures.
const (
	ReasonInvalidCredentials Reason = iota + 1
	ReasonUnknownUser
	ReasonAmbiguous
	ReasonDisabled
	ReasonLocked
	ReasonUnavailable
	ReasonPasswordExpired
	ReasonAccountExpired
	ReasonMustChangePassword
	ReasonRestricted // logon hours or workstation restrictions
)

var reasonNames = map[Reason]string{
	ReasonInvalidCredentials: "invalid_credentials",
	ReasonUnknownUser:        "unknown_user",
	ReasonAmbiguous:          "ambiguous_login",
	ReasonDisabled:           "account_disabled",
	ReasonLocked:             "account_locked",
	ReasonUnavailable:        "upstream_unavailable",
	ReasonPasswordExpired:    "password_expired",
	ReasonAccountExpired:     "account_expired",
	ReasonMustChangePassword: "must_change_password",
	ReasonRestricted:         "logon_restricted",
}

// String is the stable name used in logs and metrics.
func (r Reason) String() string {
	if s, ok := reasonNames[r]; ok {
		return s
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// Error is a typed authentication failure.
type Error struct {
	Reason    Reason
	Connector string
	Err       error // the underlying cause, for the admin's log
	// PasswordVerified is true when the upstream accepted the password and
	// refused for another reason (AD reports 532, 533, 701, 773 only after a
	// correct password): only then may a front-end tell the user why.
	PasswordVerified bool
}

func (e *Error) Error() string {
	s := "authentication failed: " + e.Reason.String()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of err, or 0 when err is not an *Error.
func ReasonOf(err error) Reason {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return 0
}

// Identity is an authenticated account.
type Identity struct {
	Entry *cache.Entry
	Host  string // upstream host that verified the password
}

// Authenticator verifies logins against the cache and the upstreams.
type Authenticator struct {
	store   *cache.Store
	targets map[string]*upstream.Target
	log     *slog.Logger
}

// New builds an authenticator for the configured connectors.
func New(cfg *config.Config, store *cache.Store, log *slog.Logger) (*Authenticator, error) {
	a := &Authenticator{store: store, targets: map[string]*upstream.Target{}, log: log}
	for i := range cfg.Connectors {
		t, err := upstream.FromConnector(&cfg.Connectors[i])
		if err != nil {
			return nil, err
		}
		a.targets[cfg.Connectors[i].Name] = t
	}
	return a, nil
}

// Resolve finds the account a login names: a DN, an email address (primary
// or alias, case-insensitive), an AD userPrincipalName, DOMAIN\user, or a
// bare uid / short name. An address held by more than one
// account is refused, never guessed.
func (a *Authenticator) Resolve(ctx context.Context, login string) (*cache.Entry, error) {
	login = strings.TrimSpace(login)
	var found []*cache.Entry
	err := a.store.View(ctx, func(v *cache.View) error {
		switch {
		case strings.Contains(login, "="):
			key, err := dn.Key(login)
			if err != nil {
				return nil // not a DN after all: unknown
			}
			e, err := v.ByDNKey(key)
			if errors.Is(err, cache.ErrNotFound) {
				return nil
			}
			found = []*cache.Entry{e}
			return err
		case strings.Contains(login, "@"):
			var err error
			if found, err = v.ByAddress(login); err != nil || len(found) > 0 {
				return err
			}
			// An AD userPrincipalName that is not also a mail address.
			found, err = v.ByAttr("userPrincipalName", login)
			return err
		case strings.Contains(login, `\`):
			// DOMAIN\sAMAccountName: the NetBIOS domain is not kept in the
			// cache, so any domain prefix resolves by sAMAccountName and two
			// connectors holding the name make it ambiguous.
			var err error
			found, err = v.ByAttr("sAMAccountName", login[strings.LastIndex(login, `\`)+1:])
			return err
		case login != "":
			// A bare name: the uid (Domino ShortName, OpenLDAP uid) or AD's
			// sAMAccountName.
			var err error
			if found, err = v.ByAttr("uid", login); err != nil || len(found) > 0 {
				return err
			}
			found, err = v.ByAttr("sAMAccountName", login)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, &Error{Reason: ReasonUnavailable, Err: fmt.Errorf("cache lookup: %w", err)}
	}
	var users []*cache.Entry
	for _, e := range found {
		if e.Kind == cache.KindUser {
			users = append(users, e)
		}
	}
	switch len(users) {
	case 0:
		return nil, &Error{Reason: ReasonUnknownUser}
	case 1:
		return users[0], nil
	}
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.Connector + "/" + u.DN
	}
	return nil, &Error{Reason: ReasonAmbiguous, Err: fmt.Errorf("%d accounts hold this login: %s", len(users), strings.Join(ids, "; "))}
}

// Authenticate resolves login and checks password against the upstream.
func (a *Authenticator) Authenticate(ctx context.Context, login, password string) (*Identity, error) {
	e, err := a.Resolve(ctx, login)
	if err != nil {
		return nil, err
	}
	// An empty password would be an RFC 4513 unauthenticated bind, which
	// many servers accept as anonymous: never pass one upstream.
	if password == "" {
		return nil, &Error{Reason: ReasonInvalidCredentials, Connector: e.Connector, Err: errors.New("empty password")}
	}
	if e.Disabled {
		return nil, &Error{Reason: ReasonDisabled, Connector: e.Connector}
	}
	t, ok := a.targets[e.Connector]
	if !ok {
		return nil, &Error{Reason: ReasonUnavailable, Connector: e.Connector, Err: errors.New("connector is no longer configured")}
	}
	host, err := a.bind(ctx, t, e.DN, password)
	if err != nil {
		return nil, err
	}
	return &Identity{Entry: e, Host: host}, nil
}

// bind verifies the password on a fresh connection: a bind changes the
// state of its connection, so user binds never share the sync's.
func (a *Authenticator) bind(ctx context.Context, t *upstream.Target, userDN, password string) (string, error) {
	conn, host, err := t.Dial(ctx)
	if err != nil {
		return "", &Error{Reason: ReasonUnavailable, Connector: t.Name, Err: err}
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	err = conn.Bind(userDN, password)
	if err == nil {
		return host, nil
	}
	return host, classify(t.Name, err)
}

// adCodes maps AD's "data XXX" bind diagnostic (the Win32 error in the
// text of result 49) to a reason, and whether AD only reports it after
// checking the password.
var adCodes = map[string]struct {
	reason   Reason
	verified bool
}{
	"525": {ReasonUnknownUser, false},
	"52e": {ReasonInvalidCredentials, false},
	"530": {ReasonRestricted, true},
	"531": {ReasonRestricted, true},
	"532": {ReasonPasswordExpired, true},
	"533": {ReasonDisabled, true},
	"701": {ReasonAccountExpired, true},
	"773": {ReasonMustChangePassword, true},
	"775": {ReasonLocked, false},
}

// ADDataCode extracts the sub-code from an AD bind error text such as
// "80090308: LdapErr: DSID-0C09041C, comment: AcceptSecurityContext error,
// data 52e, v4563", or "".
func ADDataCode(text string) string {
	i := strings.Index(text, "data ")
	if i < 0 {
		return ""
	}
	code := text[i+5:]
	if j := strings.IndexAny(code, ", "); j >= 0 {
		code = code[:j]
	}
	return strings.ToLower(code)
}

func classify(connector string, err error) error {
	var le *ldap.Error
	if errors.As(err, &le) {
		switch le.ResultCode {
		case ldap.LDAPResultInvalidCredentials:
			if le.Err != nil {
				if c, ok := adCodes[ADDataCode(le.Err.Error())]; ok {
					return &Error{Reason: c.reason, Connector: connector, Err: err, PasswordVerified: c.verified}
				}
			}
			return &Error{Reason: ReasonInvalidCredentials, Connector: connector, Err: err}
		case ldap.LDAPResultUnwillingToPerform, ldap.LDAPResultConstraintViolation:
			return &Error{Reason: ReasonLocked, Connector: connector, Err: err}
		case ldap.LDAPResultInappropriateAuthentication, ldap.LDAPResultInsufficientAccessRights:
			return &Error{Reason: ReasonInvalidCredentials, Connector: connector, Err: err}
		case ldap.ErrorNetwork, ldap.LDAPResultBusy, ldap.LDAPResultUnavailable, ldap.LDAPResultTimeout:
			return &Error{Reason: ReasonUnavailable, Connector: connector, Err: err}
		}
	}
	return &Error{Reason: ReasonUnavailable, Connector: connector, Err: err}
}
