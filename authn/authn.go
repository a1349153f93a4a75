// Package authn checks the passwords of directory users, and of the
// accounts dirgate holds itself (LDAP service accounts), for every
// front-end (LDAP binds, OIDC sign-ins) through one entry point, Login:
// throttling of failed attempts per account and client address,
// authentication profiles (which connector answers for which login
// domain), resolution of the login to a cached account, a bind against the
// upstream that owns the account (pooled connections, failover from the
// primary host to the alternate), the optional offline verifier, and one
// audit log line per attempt. Passwords are never stored, and never logged;
// only the offline verifier, when an admin enables it, keeps an argon2id
// hash.
package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/dirtype"
	"github.com/dirgate/dirgate/dn"
	"github.com/dirgate/dirgate/metrics"
	"github.com/dirgate/dirgate/state"
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
	// ReasonThrottled: dirgate refused the attempt without asking the
	// upstream, because the account or the client address is locked after
	// too many failures (config auth.throttle). Unknown logins are
	// throttled like real ones, so it does not tell whether an account
	// exists.
	ReasonThrottled
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
	ReasonThrottled:          "throttled",
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
	Host  string // upstream host that verified the password; "" when Offline
	// Offline is true when every upstream host was unreachable and the
	// password was checked against the offline verifier instead.
	Offline bool
	// Cached is true when the password was the one the upstream accepted
	// less than auth.cached_auth_timeout ago, and was not sent again.
	Cached bool
	// Local is true when the attempt named a LocalAccount and its Verify
	// accepted the password; Entry is then nil.
	Local bool
}

// Attempt is one sign-in attempt as a front-end received it.
type Attempt struct {
	// Login is what the user typed: an email address (primary or alias),
	// an AD userPrincipalName, a DN, DOMAIN\user, or a bare uid.
	Login    string
	Password string
	// Remote is the client address, "ip:port" or "ip"; "" when unknown
	// (then no per-address throttling applies).
	Remote string
	// Protocol is "ldap" or "oidc", for the audit log.
	Protocol string
	// Local, when set, is the account the attempt is for: the login is not
	// looked up in the cache and no upstream is asked.
	Local *LocalAccount
}

// LocalAccount is an account dirgate holds itself, such as an LDAP service
// account. Its password is checked by Verify in the same pipeline as a
// directory user's: throttling, failure delay, audit line and metrics.
// Its failures lock it only for the client address they came from: a
// service account is shared by applications, and a lock that any address
// could set would let one client lock every application out.
type LocalAccount struct {
	// Key identifies the account for throttling, e.g. its normalised DN.
	Key string
	// DN is the account's name in the audit log.
	DN string
	// Verify reports whether password is the account's.
	Verify func(password string) bool
}

// Authenticator verifies logins against the cache and the upstreams. It is
// safe for concurrent use. Close releases its pooled upstream connections.
type Authenticator struct {
	store       *cache.Store
	log         *slog.Logger
	checkers    map[string]passwordChecker // by connector name
	pools       map[string]*pool           // the checkers that bind over LDAP
	profiles    *profiles
	throttle    *throttle
	offline     *offline
	recent      *recent
	memo        lookupMemo
	bindTimeout time.Duration
	agents      AgentChecker // checks of via: agent connectors; nil: none

	// Replaceable in tests.
	now  func() time.Time
	wait func(ctx context.Context, start time.Time, d time.Duration) error
}

// New builds an authenticator for the configured connectors. It dials
// nothing until the first Login; Close releases the connections it pools.
// Settings that a Config not made by config.Parse leaves at zero mean: no
// pooling, no failure limits, a 15m window and lockout, no delay, a 15s
// bind timeout, offline verifier off.
//
// Of states it keeps the throttle counters and the offline verifiers; the
// caller opens them (in one process, or shared by a cluster's replicas).
func New(cfg *config.Config, store *cache.Store, states state.Stores, log *slog.Logger, opts ...Option) (*Authenticator, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{
		store:       store,
		log:         log,
		checkers:    map[string]passwordChecker{},
		pools:       map[string]*pool{},
		profiles:    newProfiles(cfg),
		bindTimeout: cfg.Auth.BindTimeout.Std(),
		now:         time.Now,
		wait:        waitFrom,
	}
	if a.bindTimeout <= 0 {
		a.bindTimeout = 15 * time.Second
	}
	for _, o := range opts {
		o(a)
	}
	now := func() time.Time { return a.now() }
	th := cfg.Auth.Throttle
	if th.Window <= 0 {
		th.Window = config.Duration(15 * time.Minute)
	}
	if th.Lockout <= 0 {
		th.Lockout = config.Duration(15 * time.Minute)
	}
	a.throttle = newThrottle(th, now, states.Throttle, log)
	types := map[string]string{}
	for i := range cfg.Connectors {
		c := &cfg.Connectors[i]
		chk, err := a.newChecker(c, cfg.Auth.PoolSize, now)
		if err != nil {
			return nil, err
		}
		a.checkers[c.Name] = chk
		types[c.Name] = c.Type
	}
	a.offline = newOffline(cfg.Auth.OfflineVerifier, states.Verifiers, types, now, log)
	a.recent = newRecent(cfg.Auth.CachedAuthTimeout.Std(), types, now)
	return a, nil
}

// Activate is called when the authenticator starts answering sign-ins: at
// start-up, and after a reload has swapped it in (not before, since a
// reload that fails keeps the previous one). With the offline verifier off,
// it removes the verifiers stored while it was on.
func (a *Authenticator) Activate() { a.offline.purgeIfOff() }

// Close closes the pooled upstream connections and stops the offline
// verifier from storing anything more (a replaced authenticator must not
// write after its successor's Activate). Logins after Close still work, on
// connections that are closed after each check.
func (a *Authenticator) Close() error {
	a.offline.retired.Store(true)
	for _, c := range a.checkers {
		c.close()
	}
	return nil
}

// Resolve finds the account a login names: a DN, an email address (primary
// or alias, case-insensitive), an AD userPrincipalName, DOMAIN\user, or a
// bare uid / short name. An address held by more than one
// account is refused, never guessed. It applies no authentication profile;
// Login does.
func (a *Authenticator) Resolve(ctx context.Context, login string) (*cache.Entry, error) {
	users, err := a.lookup(ctx, strings.TrimSpace(login))
	if err != nil {
		return nil, err
	}
	return pick(users)
}

// lookup returns the user entries a login names, in any connector.
func (a *Authenticator) lookup(ctx context.Context, login string) ([]*cache.Entry, error) {
	// Read before the view: a result stored under this version then
	// reflects this state or a newer one (see cache.Store.Version).
	version := a.store.Version()
	if users, ok := a.memo.get(version, login); ok {
		return users, nil
	}
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
	a.memo.put(version, login, users)
	return users, nil
}

// pick returns the one account of users, or why there is not exactly one.
func pick(users []*cache.Entry) (*cache.Entry, error) {
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

// resolveForLogin is Resolve under the authentication profiles: a login
// written as an address must have a domain some profile takes, and only
// accounts of that profile's connectors count (so a profile also settles
// which of two connectors holding the address is meant).
func (a *Authenticator) resolveForLogin(ctx context.Context, login string) (*cache.Entry, error) {
	domain, isAddr := addressLogin(login)
	var allowed []string
	if isAddr {
		var ok bool
		if allowed, ok = a.profiles.connectorsFor(domain); !ok {
			return nil, &Error{Reason: ReasonUnknownUser, Err: fmt.Errorf("no authentication profile for domain %s", domain)}
		}
	}
	users, err := a.lookup(ctx, login)
	if err != nil || allowed == nil {
		if err != nil {
			return nil, err
		}
		return pick(users)
	}
	var in, out []*cache.Entry
	for _, u := range users {
		if slices.Contains(allowed, u.Connector) {
			in = append(in, u)
		} else {
			out = append(out, u)
		}
	}
	if len(in) == 0 && len(out) > 0 {
		ids := make([]string, len(out))
		for i, u := range out {
			ids[i] = u.Connector + "/" + u.DN
		}
		return nil, &Error{Reason: ReasonUnknownUser, Err: fmt.Errorf("the account (%s) is not in the connector the authentication profile for domain %s names", strings.Join(ids, "; "), domain)}
	}
	return pick(in)
}

// errEmptyPassword marks the refusal of an empty password, which is no
// guess and does not count as a failed attempt.
var errEmptyPassword = errors.New("empty password")

// Login checks one sign-in attempt; it is the only way front-ends verify a
// directory user's or a local account's password. In order:
//
//  1. A locked client address is refused (ReasonThrottled).
//  2. A login written as an address must have a domain an authentication
//     profile takes, and resolve to an account of that profile's connector;
//     otherwise ReasonUnknownUser.
//  3. The login resolves to one cached account (ReasonUnknownUser,
//     ReasonAmbiguous). A locked account — or, for a login that does not
//     resolve, a locked login text — is refused (ReasonThrottled) without
//     contacting the upstream.
//  4. An empty password (ReasonInvalidCredentials) and a disabled account
//     (ReasonDisabled) are refused.
//  5. With auth.cached_auth_timeout set, the password the upstream
//     accepted for the account less than that long ago is accepted again
//     without a bind (Identity.Cached).
//  6. The password is checked by a bind against the connector's upstream,
//     on a pooled connection, within auth.bind_timeout. Only connection
//     failures fail over to the alternate host, never an answer. An Entra
//     connector checks it with Entra's password grant instead, as the
//     account's userPrincipalName, when entra.password_check is on, and
//     refuses it (ReasonRestricted, the audit line says why) when off.
//  7. When every upstream host is unreachable and the offline verifier is
//     enabled, the password is checked against it (Identity.Offline).
//
// An attempt for a LocalAccount (Attempt.Local) is refused for a locked
// client address, a locked account (per client address, see LocalAccount)
// or an empty password, and otherwise checked by the account's Verify.
//
// Failures that could be guesses (wrong password, unknown login, ambiguous
// address, disabled or upstream-locked account, including wrong passwords
// against the offline verifier or a local account's Verify) count against the account and the client
// address; a success resets the account's count. Every attempt is logged
// once, at Info, as "auth attempt" (never with the password).
//
// Every failure, whatever its cause, is answered no earlier than the
// throttle delay after the attempt began, so that how long an answer takes
// tells nothing the answer does not: not whether the upstream was asked,
// nor whether the account exists or is locked. The delay is
// BaseDelay·2^(n-1) (auth.throttle.base_delay), where n is the account's
// count of failures with this one, for a refused locked account or address
// one more than the failures that locked it (the delay the next failure
// would have had), and 1 for any other failure. An upstream slower than
// the delay still shows through. The wait ends early when ctx ends.
//
// Errors are *Error values; ReasonOf gives the reason. Front-ends must show
// all reasons alike ("invalid credentials") except ReasonUnavailable and,
// when Error.PasswordVerified is set, the reason itself.
func (a *Authenticator) Login(ctx context.Context, at Attempt) (*Identity, error) {
	start := time.Now()
	var rec attemptRecord
	id, o, err := a.login(ctx, at, &rec)
	n := 0
	if rec.admitted {
		n = a.throttle.end(rec.acctKey, rec.addrKey, o)
	}
	var delay time.Duration
	if err != nil {
		delay = a.throttle.delay(delayRank(err, o, n))
	}
	a.audit(ctx, at, &rec, err, time.Since(start), delay)
	if delay > 0 {
		_ = a.wait(ctx, start, delay)
	}
	return id, err
}

// delayRank is the n of the throttle delay a failed attempt waits for (see
// Login), given its outcome and, for a counted failure, the account's
// count of failures.
func delayRank(err error, o outcome, counted int) int {
	var le *lockedError
	switch {
	case o == outcomeFailure:
		return counted
	case errors.As(err, &le):
		return le.failures + 1
	}
	return 1
}

// attemptRecord collects what the audit line reports about an attempt.
type attemptRecord struct {
	connector, dn, host string
	offline             bool
	cached              bool
	acctKey, addrKey    string
	admitted            bool // throttle.begin succeeded; end is due
	local               bool // Attempt.Local
}

func (a *Authenticator) login(ctx context.Context, at Attempt, rec *attemptRecord) (*Identity, outcome, error) {
	rec.addrKey = addressKey(at.Remote)
	if err := a.throttle.addressLocked(rec.addrKey); err != nil {
		return nil, outcomeNeutral, err
	}
	if at.Local != nil {
		return a.loginLocal(ctx, at, rec)
	}
	login := strings.TrimSpace(at.Login)
	e, rerr := a.resolveForLogin(ctx, login)
	if e != nil {
		rec.connector, rec.dn = e.Connector, e.DN
		rec.acctKey = accountKey(e.Connector, e.ID, "")
	} else {
		rec.acctKey = accountKey("", "", login)
	}
	fail := func(err error, o outcome) (*Identity, outcome, error) {
		var ae *Error
		if e != nil && errors.As(err, &ae) && ae.Connector == "" {
			ae.Connector = e.Connector
		}
		return nil, o, err
	}
	if err := a.throttle.begin(ctx, rec.acctKey); err != nil {
		return fail(err, outcomeNeutral)
	}
	rec.admitted = true
	if rerr != nil {
		return fail(rerr, outcomeOf(rerr))
	}
	// An empty password would be an RFC 4513 unauthenticated bind, which
	// many servers accept as anonymous: never pass one upstream.
	if at.Password == "" {
		return fail(&Error{Reason: ReasonInvalidCredentials, Err: errEmptyPassword}, outcomeNeutral)
	}
	if e.Disabled {
		a.offline.forget(e)
		a.recent.forget(e)
		return fail(&Error{Reason: ReasonDisabled, Err: errors.New("disabled in the cache")}, outcomeFailure)
	}
	chk, ok := a.checkers[e.Connector]
	if !ok {
		return fail(&Error{Reason: ReasonUnavailable, Err: errors.New("connector is no longer configured")}, outcomeNeutral)
	}
	if a.recent.match(e, at.Password) {
		rec.cached = true
		return &Identity{Entry: e, Cached: true}, outcomeSuccess, nil
	}
	tok := a.recent.begin(e)
	bctx, cancel := context.WithTimeout(ctx, a.bindTimeout)
	host, err := chk.verify(bctx, e, at.Password)
	cancel()
	rec.host = host
	if err == nil {
		a.offline.remember(e, at.Password)
		a.recent.remember(e, at.Password, tok)
		return &Identity{Entry: e, Host: host}, outcomeSuccess, nil
	}
	if ReasonOf(err) != ReasonUnavailable {
		a.recent.forget(e)
		if r := ReasonOf(err); r != ReasonRestricted {
			// The upstream refused the password or the account: a stored
			// verifier must not outlive that.
			a.offline.forget(e)
		}
		return fail(err, outcomeOf(err))
	}
	if !a.offline.enabled || !errors.Is(err, upstream.ErrUnreachable) || ctx.Err() != nil {
		return fail(err, outcomeNeutral)
	}
	cause := err
	if ae := (*Error)(nil); errors.As(err, &ae) && ae.Err != nil {
		cause = ae.Err
	}
	switch res, why := a.offline.verify(e, at.Password); res {
	case offlineMatch:
		rec.offline = true
		return &Identity{Entry: e, Offline: true}, outcomeSuccess, nil
	case offlineMismatch:
		return fail(&Error{Reason: ReasonInvalidCredentials, Err: fmt.Errorf("wrong password against the offline verifier (upstream unreachable: %w)", cause)}, outcomeFailure)
	default:
		return fail(&Error{Reason: ReasonUnavailable, Err: fmt.Errorf("%w; offline verifier not used: %s", cause, why)}, outcomeNeutral)
	}
}

// loginLocal checks an attempt for a LocalAccount, after login has checked
// the client address.
func (a *Authenticator) loginLocal(ctx context.Context, at Attempt, rec *attemptRecord) (*Identity, outcome, error) {
	rec.local, rec.dn = true, at.Local.DN
	rec.acctKey = localKey(at.Local.Key, rec.addrKey)
	if err := a.throttle.begin(ctx, rec.acctKey); err != nil {
		return nil, outcomeNeutral, err
	}
	rec.admitted = true
	if at.Password == "" {
		return nil, outcomeNeutral, &Error{Reason: ReasonInvalidCredentials, Err: errEmptyPassword}
	}
	if !at.Local.Verify(at.Password) {
		return nil, outcomeFailure, &Error{Reason: ReasonInvalidCredentials, Err: errors.New("wrong password for a local account")}
	}
	return &Identity{Local: true}, outcomeSuccess, nil
}

// outcomeOf tells whether err counts as a failed attempt for throttling:
// refusals that could answer a guess do; an unreachable upstream, an empty
// password and refusals made after the upstream accepted the password do
// not.
func outcomeOf(err error) outcome {
	var ae *Error
	if !errors.As(err, &ae) || ae.PasswordVerified || errors.Is(err, errEmptyPassword) {
		return outcomeNeutral
	}
	switch ae.Reason {
	case ReasonInvalidCredentials, ReasonUnknownUser, ReasonAmbiguous, ReasonDisabled, ReasonLocked:
		return outcomeFailure
	}
	return outcomeNeutral
}

// maxLoggedLogin bounds the login text in the audit log.
const maxLoggedLogin = 256

// audit writes the one log line of an attempt.
func (a *Authenticator) audit(ctx context.Context, at Attempt, rec *attemptRecord, err error, d, delay time.Duration) {
	result := "success"
	if err != nil {
		result = ReasonOf(err).String()
	}
	login := at.Login
	if len(login) > maxLoggedLogin {
		login = strings.ToValidUTF8(login[:maxLoggedLogin], "") + "..."
	}
	attrs := []slog.Attr{
		slog.String("protocol", at.Protocol),
		slog.String("login", login),
		slog.String("remote", at.Remote),
		slog.String("result", result),
		slog.String("connector", rec.connector),
		slog.String("dn", rec.dn),
		slog.String("upstream", rec.host),
		slog.Bool("offline", rec.offline),
		slog.Bool("cached", rec.cached),
		slog.Bool("local", rec.local),
		slog.Duration("duration", d),
	}
	if delay > 0 {
		attrs = append(attrs, slog.Duration("delay", delay))
	}
	var ae *Error
	if errors.As(err, &ae) && ae.Err != nil {
		attrs = append(attrs, slog.String("detail", ae.Err.Error()))
	} else if err != nil && ae == nil {
		attrs = append(attrs, slog.String("detail", err.Error()))
	}
	a.log.LogAttrs(context.WithoutCancel(ctx), slog.LevelInfo, "auth attempt", attrs...)
	metrics.AuthAttempts.WithLabelValues(at.Protocol, result).Inc()
	// A failure is answered delay after its start, or later when the
	// check itself took longer.
	metrics.BindLatency.WithLabelValues(at.Protocol).Observe(max(d, delay).Seconds())
}

// conditions maps what a directory's wording of a refused bind says
// about the account (dirtype decodes it) to a reason.
var conditions = map[dirtype.Condition]Reason{
	dirtype.InvalidCredentials: ReasonInvalidCredentials,
	dirtype.UnknownUser:        ReasonUnknownUser,
	dirtype.Restricted:         ReasonRestricted,
	dirtype.PasswordExpired:    ReasonPasswordExpired,
	dirtype.Disabled:           ReasonDisabled,
	dirtype.AccountExpired:     ReasonAccountExpired,
	dirtype.MustChangePassword: ReasonMustChangePassword,
	dirtype.Locked:             ReasonLocked,
}

func classify(connector string, err error) error {
	var le *ldap.Error
	if errors.As(err, &le) {
		switch le.ResultCode {
		case ldap.LDAPResultInvalidCredentials:
			if le.Err != nil {
				f, _ := dirtype.DecodeBindFailure(le.Err.Error())
				if r, ok := conditions[f.Condition]; ok {
					return &Error{Reason: r, Connector: connector, Err: err, PasswordVerified: f.PasswordVerified}
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
