package testconn

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/dirgate/dirgate/dirtype"
	"github.com/dirgate/dirgate/internal/fakeentra"
)

const (
	entraClientID = "11111111-2222-3333-4444-555555555555"
	entraSecret   = "app-secret-value"
)

// entraCase is a fake tenant and a connector to test against it.
type entraCase struct {
	app       fakeentra.App // ClientID and Secret default
	noUsers   bool
	tenant    string // the connector's tenant; default the fake's ID
	authority string // the connector's authority_url; default the fake's
	secret    string // the connector's secret; default entraSecret
	checkOff  bool   // password_check: false
}

func (ec entraCase) run(t *testing.T) *Report {
	t.Helper()
	tenant := fakeentra.New(t, fakeentra.WithDomain("contoso.example"))
	app := ec.app
	app.ClientID = entraClientID
	if app.Secret == "" {
		app.Secret = entraSecret
	}
	if app.Roles == nil {
		app.Roles = []string{"User.Read.All", "GroupMember.Read.All"}
	}
	tenant.AddApp(app)
	if !ec.noUsers {
		tenant.PutUser(fakeentra.User{ID: "u-1", UserPrincipalName: "ann@contoso.example", Mail: "ann@contoso.example",
			ProxyAddresses: []string{"SMTP:ann@contoso.example", "smtp:a.smith@contoso.example"}, AccountEnabled: true, Password: "x"})
		tenant.PutUser(fakeentra.User{ID: "u-2", UserPrincipalName: "bob@contoso.example", AccountEnabled: false})
		tenant.PutUser(fakeentra.User{ID: "u-3", UserPrincipalName: "eve_ext#EXT#@contoso.example", UserType: "Guest", AccountEnabled: true})
	}
	if ec.tenant == "" {
		ec.tenant = tenant.ID()
	}
	if ec.authority == "" {
		ec.authority = tenant.AuthorityURL()
	}
	if ec.secret == "" {
		ec.secret = entraSecret
	}
	t.Setenv("DIRGATE_TEST_ENTRA_SECRET", ec.secret)
	c := parseConnector(t, "type: entra", "timeout: 5s",
		fmt.Sprintf("entra: {tenant: %s, client_id: %s, client_secret_env: DIRGATE_TEST_ENTRA_SECRET, authority_url: %q, graph_url: %q, password_check: %v}",
			ec.tenant, entraClientID, ec.authority, tenant.GraphURL(), !ec.checkOff))
	return Run(context.Background(), c)
}

// TestEntraSteps: Test Connection of an Entra ID connector runs the
// registry's steps; each failure names what happened and its fix.
func TestEntraSteps(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String()
	closed.Close()

	cases := []struct {
		name   string
		ec     entraCase
		failed string   // the step that fails; "" = all pass
		detail []string // fragments of that step's detail (or, all passing, of the report)
		fix    string   // fragment of its fix
	}{
		{name: "all pass", detail: []string{
			"knows tenant", "app-only Graph token", "User.Read.All",
			"3 users, 1 with mail, 1 with alias addresses (smtp: proxyAddresses), 1 disabled, 1 guest (not synced: include_guests is off)",
			"delta link", "on: the app may use the password grant", "AADSTS50034", "MFA", "federated domains"}},
		{name: "password check off", ec: entraCase{checkOff: true}, detail: []string{"off: LDAP binds as this connector's users are refused", "MFA"}},
		{name: "authority unreachable", ec: entraCase{authority: closedURL}, failed: StepAuthority,
			detail: []string{"refused"}, fix: "outbound HTTPS"},
		{name: "tenant not found", ec: entraCase{tenant: "99999999-9999-9999-9999-999999999999"}, failed: StepAuthority,
			detail: []string{"AADSTS90002"}, fix: "usgov"},
		{name: "wrong secret", ec: entraCase{secret: "stale-secret"}, failed: StepCredentials,
			detail: []string{"AADSTS7000215", "the client secret is wrong", "trace ID"}, fix: "client_secret_env"},
		{name: "no user permission", ec: entraCase{app: fakeentra.App{Roles: []string{"GroupMember.Read.All"}}}, failed: StepPermissions,
			detail: []string{"403 Authorization_RequestDenied", "lacks User.Read.All"}, fix: "Grant admin consent"},
		{name: "no group permission", ec: entraCase{app: fakeentra.App{Roles: []string{"User.Read.All"}}}, failed: StepPermissions,
			detail: []string{"lacks GroupMember.Read.All"}, fix: "Directory.Read.All"},
		{name: "no permission", ec: entraCase{app: fakeentra.App{Roles: []string{}}}, failed: StepPermissions,
			detail: []string{"lacks User.Read.All and GroupMember.Read.All"}, fix: "Connect Entra ID"},
		{name: "directory read covers both", ec: entraCase{app: fakeentra.App{Roles: []string{"Directory.Read.All"}}}},
		{name: "empty tenant", ec: entraCase{noUsers: true}, failed: StepSample, detail: []string{"no user"}, fix: "tenant"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.ec.run(t)
			checkCloudReport(t, r, dirtype.EntraTestSteps, []string{entraSecret, "stale-secret"}, tc.failed, tc.fix, tc.detail)
		})
	}
}
