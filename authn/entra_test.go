package authn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/entra"
	"github.com/dirgate/dirgate/internal/fakeentra"
	"github.com/dirgate/dirgate/internal/testlog"
)

// entraEnv is an authenticator with one Entra connector (m365) whose
// cache holds the tenant's users as a sync would store them, checking
// passwords against a fake tenant.
type entraEnv struct {
	tenant *fakeentra.Tenant
	a      *Authenticator
	logs   *testlog.Buffer
	slept  *sleeps
}

const entraSecret = "app-secret-value"

// entraUsers are in the tenant and in the cache. The login of each is its
// alias address; the password grant must get the userPrincipalName.
var entraUsers = []fakeentra.User{
	{ID: "u-ann", UserPrincipalName: "ann@contoso.example", Password: "Ann-Passw0rd"},
	{ID: "u-dis", UserPrincipalName: "dis@contoso.example", Password: "Dis-Passw0rd"},
	{ID: "u-lock", UserPrincipalName: "lock@contoso.example", Password: "Lock-Passw0rd", Locked: true},
	{ID: "u-exp", UserPrincipalName: "exp@contoso.example", Password: "Exp-Passw0rd", PasswordExpired: true},
	{ID: "u-mfa", UserPrincipalName: "mfa@contoso.example", Password: "Mfa-Passw0rd", MFARequired: true},
	{ID: "u-ca", UserPrincipalName: "ca@contoso.example", Password: "Ca-Passw0rd", BlockedByConditionalAccess: true},
	{ID: "u-fed", UserPrincipalName: "fed@contoso.example", Password: "Fed-Passw0rd", Federated: true},
}

// entraOpt varies the environment.
type entraOpt struct {
	checkOff bool          // entra.password_check: false
	app      fakeentra.App // ClientID and Secret default
	secret   string        // what the connector sends; default entraSecret
	auth     string        // YAML under auth:
}

func startEntra(t *testing.T, o entraOpt) *entraEnv {
	t.Helper()
	tenant := fakeentra.New(t, fakeentra.WithDomain("contoso.example"))
	if o.app.ClientID == "" {
		o.app.ClientID = "11111111-2222-3333-4444-555555555555"
	}
	if o.app.Secret == "" {
		o.app.Secret = entraSecret
	}
	if o.secret == "" {
		o.secret = entraSecret
	}
	if o.auth == "" {
		o.auth = "{}"
	}
	tenant.AddApp(o.app)
	for _, u := range entraUsers {
		u.AccountEnabled = u.ID != "u-dis"
		tenant.PutUser(u)
	}
	t.Setenv("DIRGATE_TEST_ENTRA_SECRET", o.secret)
	y := fmt.Sprintf(`cache: {dir: %s}
connectors:
  - name: m365
    type: entra
    email_domains: [contoso.example]
    entra: {tenant: %s, client_id: %s, client_secret_env: DIRGATE_TEST_ENTRA_SECRET,
            authority_url: %q, graph_url: %q, password_check: %v}
auth: %s
`, t.TempDir(), tenant.ID(), o.app.ClientID, tenant.AuthorityURL(), tenant.GraphURL(), !o.checkOff, o.auth)
	// The cache as a sync of the tenant leaves it, plus a user the tenant
	// no longer has (deleted since the last sync).
	var cached []*cache.Entry
	for _, u := range append(slices.Clone(entraUsers), fakeentra.User{ID: "u-gone", UserPrincipalName: "gone@contoso.example"}) {
		local, _, _ := strings.Cut(u.UserPrincipalName, "@")
		cached = append(cached, &cache.Entry{Connector: "m365", ID: u.ID, DN: "cn=" + local + ",o=contoso", Kind: cache.KindUser,
			Addresses: []string{u.UserPrincipalName, local + ".alias@contoso.example"},
			Attrs:     []cache.Attr{{Name: "userPrincipalName", Values: []string{u.UserPrincipalName}}}})
	}
	env := &entraEnv{tenant: tenant, logs: &testlog.Buffer{}, slept: &sleeps{}}
	env.a = cachedAuthenticator(t, y, "m365", cached, env.logs)
	env.a.wait = env.slept.wait
	return env
}

func (env *entraEnv) login(login, password string) (*Identity, error) {
	return env.a.Login(context.Background(), Attempt{Login: login, Password: password, Remote: "192.0.2.7:4000", Protocol: "ldap"})
}

// TestEntraPasswordCheck: every documented refusal of the password grant
// reaches the front-end as authn's typed failure, and a login by alias is
// checked as the user's userPrincipalName.
func TestEntraPasswordCheck(t *testing.T) {
	cases := []struct {
		name, login, password string
		opt                   entraOpt
		reason                Reason // 0: accepted
		verified              bool
		code                  int    // the AADSTS code in the audit line
		detail                string // also in the audit line
	}{
		{name: "right password by alias", login: "ann.alias@contoso.example", password: "Ann-Passw0rd"},
		{name: "right password by UPN", login: "ann@contoso.example", password: "Ann-Passw0rd"},
		{name: "50126 wrong password", login: "ann.alias@contoso.example", password: "nope", reason: ReasonInvalidCredentials, code: 50126},
		{name: "50126 federated domain", login: "fed@contoso.example", password: "Fed-Passw0rd", reason: ReasonInvalidCredentials, code: 50126},
		{name: "50034 not in the tenant", login: "gone@contoso.example", password: "whatever", reason: ReasonUnknownUser, code: 50034},
		{name: "50057 disabled", login: "dis@contoso.example", password: "Dis-Passw0rd", reason: ReasonDisabled, code: 50057},
		{name: "50053 locked", login: "lock@contoso.example", password: "Lock-Passw0rd", reason: ReasonLocked, code: 50053},
		{name: "50055 expired", login: "exp@contoso.example", password: "Exp-Passw0rd", reason: ReasonPasswordExpired, verified: true, code: 50055},
		{name: "50076 MFA", login: "mfa@contoso.example", password: "Mfa-Passw0rd", reason: ReasonRestricted, verified: true, code: 50076},
		{name: "53003 conditional access", login: "ca@contoso.example", password: "Ca-Passw0rd", reason: ReasonRestricted, verified: true, code: 53003},
		{name: "65001 consent", login: "ann@contoso.example", password: "Ann-Passw0rd", opt: entraOpt{app: fakeentra.App{ConsentMissing: true}},
			reason: ReasonUnavailable, code: 65001, detail: "Connect Entra ID"},
		{name: "7000215 wrong client secret", login: "ann@contoso.example", password: "Ann-Passw0rd", opt: entraOpt{secret: "stale-secret"},
			reason: ReasonUnavailable, code: 7000215, detail: "client_secret_env"},
		{name: "password check off", login: "ann@contoso.example", password: "Ann-Passw0rd", opt: entraOpt{checkOff: true},
			reason: ReasonRestricted, detail: "entra.password_check is off"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := startEntra(t, tc.opt)
			before := env.tenant.TokenRequests()
			id, err := env.login(tc.login, tc.password)
			if tc.reason == 0 {
				if err != nil {
					t.Fatalf("Login: %v", err)
				}
				if id.Entry.ID != "u-ann" || id.Host == "" || !strings.Contains(env.tenant.AuthorityURL(), id.Host) {
					t.Fatalf("identity %s from %q", id.Entry.ID, id.Host)
				}
				return
			}
			var ae *Error
			if !errors.As(err, &ae) || ae.Reason != tc.reason || ae.PasswordVerified != tc.verified || ae.Connector != "m365" {
				t.Fatalf("Login: %v (%+v), want %s verified %v", err, ae, tc.reason, tc.verified)
			}
			var se *entra.STSError
			if tc.code != 0 && (!errors.As(err, &se) || se.Code != tc.code) {
				t.Fatalf("Login: %v, want AADSTS%d", err, tc.code)
			}
			asked := env.tenant.TokenRequests() - before
			if want := map[bool]int{false: 1, true: 0}[tc.opt.checkOff]; asked != want {
				t.Errorf("%d token requests, want %d", asked, want)
			}
			logs := env.logs.String()
			if !strings.Contains(logs, `"result":"`+tc.reason.String()+`"`) || !strings.Contains(logs, tc.detail) ||
				(tc.code != 0 && !strings.Contains(logs, fmt.Sprintf("AADSTS%d", tc.code))) {
				t.Errorf("audit line lacks the reason, code or %q:\n%s", tc.detail, logs)
			}
			if strings.Contains(logs, tc.password) {
				t.Errorf("the password is in the logs:\n%s", logs)
			}
		})
	}
}

// TestEntraPasswordCheckThrottled: wrong passwords for one user are
// counted by dirgate, which stops asking Entra once the account is locked
// here, before Entra's smart lockout counts more; other users are not
// affected.
func TestEntraPasswordCheckThrottled(t *testing.T) {
	env := startEntra(t, entraOpt{auth: "{throttle: {account_failures: 3, address_failures: 100, window: 10m, lockout: 15m, base_delay: 100ms}}"})
	for i := range 3 {
		if _, err := env.login("ann.alias@contoso.example", fmt.Sprintf("guess-%d", i)); ReasonOf(err) != ReasonInvalidCredentials {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	before := env.tenant.TokenRequests()
	for _, pw := range []string{"guess-3", "Ann-Passw0rd"} {
		if _, err := env.login("ann@contoso.example", pw); ReasonOf(err) != ReasonThrottled {
			t.Fatalf("attempt with a locked account: %v, want throttled", err)
		}
	}
	if n := env.tenant.TokenRequests() - before; n != 0 {
		t.Fatalf("%d requests reached Entra for a locked account", n)
	}
	if n := env.tenant.PasswordFailures("u-ann"); n != 3 {
		t.Fatalf("Entra counted %d failures, want 3", n)
	}
	// Failures wait out the growing delay, as for an LDAP connector.
	if d := env.slept.take(); len(d) != 5 || d[1] <= d[0] || d[2] <= d[1] {
		t.Fatalf("delays %v", d)
	}
	if _, err := env.login("exp@contoso.example", "Exp-Passw0rd"); ReasonOf(err) != ReasonPasswordExpired {
		t.Fatalf("another user: %v", err)
	}
}
