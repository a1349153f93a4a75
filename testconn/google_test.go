package testconn

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dirgate/dirgate/dirtype"
	"github.com/dirgate/dirgate/google"
	"github.com/dirgate/dirgate/internal/fakegoogle"
)

// googleCase is a fake Workspace account and a connector to test against it.
type googleCase struct {
	scopes   []string // delegated to the service account; default google.Scopes, "none" for no delegation
	admin    string   // the connector's admin; default admin@example.test
	notAdmin bool     // the admin is a user without admin rights
	apiOff   bool     // the Admin SDK API is disabled in the project
	tokenURL string   // the connector's token_url; default the fake's
	extra    string   // appended to the google section (", key: value")
}

func (gc googleCase) run(t *testing.T) *Report {
	t.Helper()
	fg := fakegoogle.New(t)
	fg.PutUser(fakegoogle.User{ID: "100", PrimaryEmail: "admin@example.test", IsAdmin: !gc.notAdmin})
	fg.PutUser(fakegoogle.User{ID: "101", PrimaryEmail: "ann@example.test", Aliases: []string{"a.smith@example.test"}})
	fg.PutUser(fakegoogle.User{ID: "102", PrimaryEmail: "sue@example.test", Suspended: true})
	fg.PutGroup(fakegoogle.Group{ID: "g1", Email: "staff@example.test", Name: "Staff",
		Members: []fakegoogle.Member{{ID: "101", Type: "USER"}, {ID: "102", Type: "USER"}}})
	fg.DisableAPI(gc.apiOff)
	scopes := gc.scopes
	if scopes == nil {
		scopes = google.Scopes
	} else if slices.Equal(scopes, []string{"none"}) {
		scopes = nil
	}
	key, _ := fg.ServiceAccountKey(t, scopes...)
	keyFile := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	if gc.admin == "" {
		gc.admin = "admin@example.test"
	}
	if gc.tokenURL == "" {
		gc.tokenURL = fg.TokenURL()
	}
	c := parseConnector(t, "type: google", "timeout: 5s", "email_domains: [example.test]",
		fmt.Sprintf("google: {service_account_key_file: %s, admin: %s, token_url: %q, directory_url: %q%s}",
			keyFile, gc.admin, gc.tokenURL, fg.DirectoryURL(), gc.extra))
	return Run(context.Background(), c)
}

// TestGoogleSteps: Test Connection of a Google Workspace connector runs
// the registry's steps; each failure of the token endpoint and of the
// Directory API is decoded with its fix.
func TestGoogleSteps(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String() + "/token"
	closed.Close()

	cases := []struct {
		name   string
		gc     googleCase
		failed string   // the step that fails; "" = all pass
		detail []string // fragments of that step's detail (or, all passing, of the report)
		fix    string   // fragment of its fix
	}{
		{name: "all pass", detail: []string{
			"answers (HTTP 400", "acts as admin@example.test", "admin.directory.user.readonly",
			"3 users, 3 with a primary email, 1 with aliases, 1 suspended or archived",
			"1 group; staff@example.test has 2 direct members",
			"off: google.secure_ldap is not configured", "Sign in with Google"}},
		{name: "token endpoint unreachable", gc: googleCase{tokenURL: closedURL}, failed: StepTokenEndpoint,
			detail: []string{"refused"}, fix: "outbound HTTPS"},
		{name: "no delegation", gc: googleCase{scopes: []string{"none"}}, failed: StepDelegation,
			detail: []string{"unauthorized_client"}, fix: "Domain-wide delegation"},
		{name: "a scope not delegated", gc: googleCase{scopes: google.Scopes[:1]}, failed: StepDelegation,
			detail: []string{"unauthorized_client"}, fix: google.Scopes[1]},
		{name: "wrong admin", gc: googleCase{admin: "nobody@example.test"}, failed: StepDelegation,
			detail: []string{"invalid_grant", "Invalid email or User ID"}, fix: "set google.admin"},
		{name: "admin without rights", gc: googleCase{notAdmin: true}, failed: StepSample,
			detail: []string{"403"}, fix: "super administrator"},
		{name: "Admin SDK API disabled", gc: googleCase{apiOff: true}, failed: StepSample,
			detail: []string{"accessNotConfigured"}, fix: "enable it"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.gc.run(t)
			checkCloudReport(t, r, dirtype.GoogleTestSteps, []string{"PRIVATE KEY"}, tc.failed, tc.fix, tc.detail)
		})
	}
}
