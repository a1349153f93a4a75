package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dirgate/dirgate/dirtype"
)

// AnyDomain in AuthProfile.Domains matches every login domain that no
// other profile names.
const AnyDomain = "*"

// MaxThrottleDelay caps the delay before a failed attempt is answered,
// however many failures came before it.
const MaxThrottleDelay = 5 * time.Second

// Auth configures how the passwords of directory users are checked, for
// LDAP binds and OIDC sign-ins alike.
type Auth struct {
	// Profiles route login domains to connectors: a login written as an
	// email address or UPN (it contains "@") is accepted only if its domain
	// is listed in a profile, and only for an account of that profile's
	// connector. Logins written as a DN, DOMAIN\user or a bare uid skip the
	// domain check. When the list is empty, every connector acts as a
	// profile for its email_domains (for every domain when it has none).
	Profiles []AuthProfile `yaml:"profiles"`
	// Throttle limits failed attempts per account and per client address.
	Throttle Throttle `yaml:"throttle"`
	// OfflineVerifier lets users sign in while every upstream host of
	// their connector is unreachable. Off by default.
	OfflineVerifier OfflineVerifier `yaml:"offline_verifier"`
	// CachedAuthTimeout, when above zero, accepts the password the
	// upstream last accepted for an account, for this long afterwards,
	// without asking the upstream again (SSSD's cached_auth_timeout). A
	// different password is always checked upstream. The price: a
	// password changed or an account locked in the directory still works
	// through dirgate until the next sync notices it or the timeout ends.
	// Default 0 (off); at most 1h.
	CachedAuthTimeout Duration `yaml:"cached_auth_timeout"`
	// PoolSize is how many idle upstream connections are kept per
	// connector for password checks, so that a bind does not pay a TCP and
	// TLS handshake. Default 16; 0 to 64 (0 dials a new connection for
	// every check).
	PoolSize int `yaml:"pool_size"`
	// BindTimeout bounds one password check against the upstream,
	// failover from the primary to the alternate host included. Default
	// 15s.
	BindTimeout Duration `yaml:"bind_timeout"`
}

// AuthProfile sends the logins of some domains to one connector.
type AuthProfile struct {
	// Domains are the login domains (the part after "@") of this profile,
	// matched exactly and case-insensitively. Written as a YAML list or one
	// comma-separated string; stored lower-cased. "*" (quoted in YAML)
	// matches any domain no profile lists, and may appear in one profile
	// only; every other domain may appear in one profile only too.
	// Required.
	Domains []string `yaml:"domains" config:"csv"`
	// Connector names the connector whose accounts sign in with these
	// domains. Required; must name a configured connector.
	Connector string `yaml:"connector"`
	// SignIn says how these domains' users sign in on dirgate's OIDC
	// login page: "password" (the default: email address and directory
	// password), "upstream" (only through the connector's own identity
	// provider — "Sign in with Microsoft" for an entra connector, whose
	// entra section gives the authority, tenant and app; "Sign in with
	// Google" for a google connector, whose google section gives the OAuth
	// client — a login of these domains typed in the password form is sent
	// there), or "both" (the password form, and the button). upstream and
	// both need an oidc section and a connector of a type that signs in
	// upstream (entra, google).
	// LDAP binds are not affected.
	SignIn string `yaml:"sign_in"`
}

// Values of AuthProfile.SignIn.
const (
	SignInPassword = "password"
	SignInUpstream = "upstream"
	SignInBoth     = "both"
)

// Upstream reports whether the profile's users sign in through the
// connector's identity provider (SignIn upstream or both).
func (p AuthProfile) Upstream() bool { return p.SignIn == SignInUpstream || p.SignIn == SignInBoth }

// Throttle limits failed sign-in attempts. Counting happens in dirgate's
// memory, before the upstream is asked: an account dirgate has locked is
// refused without contacting the upstream, so AccountFailures lower than
// the upstream's own lockout threshold (AD's "Account lockout threshold",
// OpenLDAP ppolicy's pwdMaxFailure) keeps guesses made through dirgate from
// locking the account in the directory itself.
type Throttle struct {
	// AccountFailures is how many failed attempts on one account (wrong
	// password, unknown login, ambiguous address, disabled account) lock it
	// in dirgate for Lockout. It must be lower than the upstream's lockout
	// threshold. Default 5; at least 1.
	AccountFailures int `yaml:"account_failures"`
	// AddressFailures is how many failed attempts from one client address
	// (IPv6: one /64) lock that address for Lockout. Default 20; at least 1.
	AddressFailures int `yaml:"address_failures"`
	// Window is how long a failure is remembered: the count starts again
	// from zero when the previous failure is older than Window (the rule
	// AD's "reset account lockout counter after" uses). Default 15m.
	Window Duration `yaml:"window"`
	// Lockout is how long a locked account or address is refused. Default
	// 15m.
	Lockout Duration `yaml:"lockout"`
	// BaseDelay delays the answer to a failed attempt by
	// BaseDelay·2^(n-1) for the account's n-th failure, at most 5s.
	// Default 200ms; 0 disables the delay; at most 5s.
	BaseDelay Duration `yaml:"base_delay"`
}

// OfflineVerifier keeps an argon2id hash of each password that an upstream
// accepted, and checks passwords against it only while every host of the
// account's connector is unreachable.
type OfflineVerifier struct {
	// Enabled turns the verifier on. Default false: no password-derived
	// data is stored.
	Enabled bool `yaml:"enabled"`
	// MaxAge is how long after the last successful online sign-in the
	// stored hash may still be used. Default 168h (7 days).
	MaxAge Duration `yaml:"max_age"`
}

func (v *validator) auth(c *Config) {
	a := &c.Auth
	firstUse := map[string]string{} // domain -> profile path that lists it
	for i := range a.Profiles {
		p := fmt.Sprintf("auth.profiles[%d]", i)
		prof := &a.Profiles[i]
		var out []string
		bad := false
		for j, d := range prof.Domains {
			dp := fmt.Sprintf("%s.domains[%d]", p, j)
			d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
			if d == "" {
				continue
			}
			if d != AnyDomain {
				if err := checkDomain(d); err != nil {
					v.errorf(dp, "%v", err)
					bad = true
					continue
				}
			}
			if slices.Contains(out, d) {
				continue
			}
			if other, dup := firstUse[d]; dup {
				if d == AnyDomain {
					v.errorf(dp, "\"*\" (any domain) is already used by %s; only one profile may take the domains no other profile lists", other)
				} else {
					v.errorf(dp, "%q is already listed in %s; a domain belongs to one profile", d, other)
				}
				bad = true
				continue
			}
			firstUse[d] = p
			out = append(out, d)
		}
		prof.Domains = out
		if len(out) == 0 && !bad {
			v.errorf(p+".domains", "required; list the login domains of this profile, e.g. [example.com], or [\"*\"] for any domain")
		}
		switch {
		case prof.Connector == "":
			v.errorf(p+".connector", "required; name the connector whose accounts sign in with these domains")
		default:
			if _, ok := c.Connector(prof.Connector); !ok {
				v.errorf(p+".connector", "%q is not a configured connector; use one of %s", prof.Connector, connectorNames(c))
			}
		}
		v.signIn(c, prof, p)
	}
	v.googleSignIns(c)

	t := &a.Throttle
	v.atLeast("auth.throttle.account_failures", &t.AccountFailures, 5, 1)
	v.atLeast("auth.throttle.address_failures", &t.AddressFailures, 20, 1)
	v.positiveDuration("auth.throttle.window", &t.Window, 15*time.Minute)
	v.positiveDuration("auth.throttle.lockout", &t.Lockout, 15*time.Minute)
	if !v.has("auth.throttle.base_delay") {
		t.BaseDelay = Duration(200 * time.Millisecond)
	} else if t.BaseDelay < 0 || t.BaseDelay.Std() > MaxThrottleDelay {
		v.errorf("auth.throttle.base_delay", "must be from 0s (no delay) to %s, got %s", MaxThrottleDelay, t.BaseDelay)
	}

	v.positiveDuration("auth.offline_verifier.max_age", &a.OfflineVerifier.MaxAge, 168*time.Hour)
	if a.CachedAuthTimeout < 0 || a.CachedAuthTimeout.Std() > time.Hour {
		v.errorf("auth.cached_auth_timeout", "must be from 0s (off) to 1h, got %s", a.CachedAuthTimeout)
	}
	v.between("auth.pool_size", &a.PoolSize, 16, 0, 64)
	v.positiveDuration("auth.bind_timeout", &a.BindTimeout, 15*time.Second)
}

// signIn checks a profile's sign_in.
func (v *validator) signIn(c *Config, prof *AuthProfile, p string) {
	if !v.has(p + ".sign_in") {
		return
	}
	if !v.oneOf(p+".sign_in", prof.SignIn, SignInPassword, SignInUpstream, SignInBoth) || !prof.Upstream() {
		return
	}
	conn, ok := c.Connector(prof.Connector)
	switch {
	case c.OIDC == nil:
		v.errorf(p+".sign_in", "%q applies to dirgate's OIDC login page, but there is no oidc section; configure oidc or remove sign_in", prof.SignIn)
	case ok && !signsInUpstream(conn.Type):
		v.errorf(p+".sign_in", "%q needs a connector whose directory signs users in itself (type %s); connector %q is of type %s",
			prof.SignIn, strings.Join(upstreamSignInTypes(), ", "), conn.Name, conn.Type)
	case ok && prof.SignIn == SignInUpstream && slices.Contains(prof.Domains, AnyDomain):
		v.errorf(p+".sign_in", "upstream would send every login of any domain (\"*\") to %s; list the domains, or use both", conn.Name)
	}
}

func connectorNames(c *Config) string {
	var names []string
	for _, conn := range c.Connectors {
		if conn.Name != "" {
			names = append(names, conn.Name)
		}
	}
	if len(names) == 0 {
		return "the names under connectors: (none is configured)"
	}
	return strings.Join(names, ", ")
}

// signsInUpstream reports whether the registry says a type's directory can
// sign its users in on dirgate's behalf.
func signsInUpstream(typ string) bool {
	t, ok := dirtype.Lookup(typ)
	return ok && t.UpstreamSignIn
}

// upstreamSignInTypes names the registry's types that sign users in
// upstream, for messages.
func upstreamSignInTypes() []string {
	var names []string
	for _, t := range dirtype.All() {
		if t.UpstreamSignIn {
			names = append(names, t.Name)
		}
	}
	return names
}
