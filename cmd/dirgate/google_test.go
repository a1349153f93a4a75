package main

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/clock"
	"github.com/dirgate/dirgate/internal/fakegoogle"
)

// The fake customer of the Google end-to-end test.
const (
	gwsDomain      = "example.com"
	gwsOAuthClient = "123-e2e.apps.googleusercontent.com"
	gwsOAuthSecret = "e2e-oauth-s3cret"
	gwsAdmin       = "100000000000000000000"
	gwsAnn         = "100000000000000000001"
	gwsBob         = "100000000000000000002"
	gwsSue         = "100000000000000000003"
	gwsStaff       = "0staff0000000001"
)

// newGoogleE2EServer fills a fake customer and writes the configuration
// of a google connector with Sign in with Google against it.
func newGoogleE2EServer(t *testing.T) (*e2eServer, *fakegoogle.Customer) {
	t.Helper()
	// ID tokens are checked against the real time.
	cust := fakegoogle.New(t, fakegoogle.WithClock(clock.NewFake(time.Now())), fakegoogle.WithDomains(gwsDomain))
	s := newE2EBase(t, "o="+gwsDomain)
	cust.AddOAuthClient(gwsOAuthClient, gwsOAuthSecret, s.issuer+"/upstream/callback")
	mail := func(local string) string { return local + "@" + gwsDomain }
	for _, u := range []fakegoogle.User{
		{ID: gwsAdmin, PrimaryEmail: mail("admin"), GivenName: "Ada", FamilyName: "Admin", IsAdmin: true},
		{ID: gwsAnn, PrimaryEmail: mail("ann"), GivenName: "Ann", FamilyName: "Lee", Aliases: []string{mail("a.lee")}},
		{ID: gwsBob, PrimaryEmail: mail("bob"), GivenName: "Bob", FamilyName: "Jones"},
		{ID: gwsSue, PrimaryEmail: mail("sue"), GivenName: "Sue", FamilyName: "Old", Suspended: true},
	} {
		cust.PutUser(u)
	}
	cust.PutGroup(fakegoogle.Group{ID: gwsStaff, Email: mail("staff"), Name: "Staff", Members: []fakegoogle.Member{
		{ID: gwsAnn, Email: mail("ann"), Role: "MEMBER", Type: "USER", Status: "ACTIVE"},
		{ID: gwsBob, Email: mail("bob"), Role: "MEMBER", Type: "USER", Status: "ACTIVE"},
	}})
	key, _ := cust.ServiceAccountKey(t, "https://www.googleapis.com/auth/admin.directory.user.readonly",
		"https://www.googleapis.com/auth/admin.directory.group.readonly")
	keyFile := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DIRGATE_TEST_E2E_GOOGLE_OAUTH", gwsOAuthSecret)
	s.writeConfig(t, "gws", "google", gwsDomain, fmt.Sprintf(`    google:
      service_account_key_file: %s
      admin: %s
      domain: %s
      token_url: %s
      directory_url: %s
      issuer_url: %s
      oauth_client_id: %s
      oauth_client_secret_env: DIRGATE_TEST_E2E_GOOGLE_OAUTH
`, keyFile, mail("admin"), gwsDomain, cust.TokenURL(), cust.DirectoryURL(), cust.IssuerURL(), gwsOAuthClient))
	return s, cust
}

// TestGoogleEndToEnd runs the real `dirgate serve` with a google
// connector against a fake Google customer: the start-up sync served over
// LDAP (aliases, groups, a suspended user served disabled), "Sign in with
// Google" for a go-oidc relying party (joined by sub; personal accounts
// and users the sync suspended refused, refresh tokens stopped), a
// deletion by absence, and Test Connection.
func TestGoogleEndToEnd(t *testing.T) {
	log := captureLog(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", log())
		}
	})
	s, cust := newGoogleE2EServer(t)
	s.start(t)

	t.Run("start-up sync served over LDAP", func(t *testing.T) {
		users := s.search(t, "(objectClass=person)", "mail", "aliases", "memberOf", "suspended")
		want := []string{s.user(gwsAdmin), s.user(gwsAnn), s.user(gwsBob), s.user(gwsSue)}
		if got := slices.Sorted(maps.Keys(users)); !slices.Equal(got, lower(want)) {
			t.Fatalf("users %q, want %q", got, lower(want))
		}
		ann := users[s.user(gwsAnn)]
		if ann.GetAttributeValue("mail") != "ann@"+gwsDomain || !slices.Equal(ann.GetAttributeValues("aliases"), []string{"a.lee@" + gwsDomain}) {
			t.Errorf("ann: mail %q, aliases %q", ann.GetAttributeValue("mail"), ann.GetAttributeValues("aliases"))
		}
		if got := lower(ann.GetAttributeValues("memberOf")); !slices.Equal(got, []string{s.group(gwsStaff)}) {
			t.Errorf("ann memberOf %q", got)
		}
		if byAlias := s.search(t, "(aliases=a.lee@"+gwsDomain+")"); len(byAlias) != 1 || byAlias[s.user(gwsAnn)] == nil {
			t.Errorf("search by alias: %v", slices.Collect(maps.Keys(byAlias)))
		}
		if v := users[s.user(gwsSue)].GetAttributeValue("suspended"); v != "TRUE" {
			t.Errorf("suspended sue: suspended %q", v)
		}
		if out := s.cli(t, "status"); !regexp.MustCompile(`(?m)^gws +google +ok `).MatchString(out) {
			t.Errorf("status:\n%s", out)
		}
	})

	rp := newRP(t, s, "gws", "Google", func(id string) {
		if strings.Contains(id, "@") {
			cust.SignInConsumer(id)
		} else {
			cust.SignInAs(id)
		}
	})
	var bobRefresh string
	t.Run("Sign in with Google", func(t *testing.T) {
		ann := rp.signIn(t, gwsAnn)
		if ann.err != "" {
			t.Fatalf("ann: %s", ann.err)
		}
		if ann.sub != gwsAnn || ann.claims.Email != "ann@"+gwsDomain || !slices.Equal(ann.claims.Groups, []string{"Staff"}) || ann.claims.Name != "Ann Lee" {
			t.Errorf("ann's ID token: sub %q %+v", ann.sub, ann.claims)
		}
		bob := rp.signIn(t, gwsBob)
		if bob.err != "" {
			t.Fatalf("bob: %s", bob.err)
		}
		bobRefresh = bob.refresh
		// A personal Google account with ann's address is not ann.
		if got := rp.signIn(t, "ann@"+gwsDomain); got.err == "" || !strings.Contains(got.err, "personal account") {
			t.Errorf("personal account: signed in as %q (%s)", got.sub, got.err)
		}
		// Google refuses sue itself, and dirgate says so.
		if got := rp.signIn(t, gwsSue); got.err == "" || !strings.Contains(got.err, "Google did not sign you in") {
			t.Errorf("suspended sue: signed in as %q (%s)", got.sub, got.err)
		}
	})

	t.Run("suspended by a sync: refused, refresh tokens stop", func(t *testing.T) {
		if bobRefresh == "" {
			t.Skip("bob did not sign in")
		}
		bob, _ := cust.User(gwsBob)
		bob.Suspended = true
		cust.PutUser(bob)
		if mode, n := s.sync(t); mode != "full" || n[1] == 0 {
			t.Errorf("sync after suspending bob: %s %v", mode, n)
		}
		if _, err := rp.refresh(t, bobRefresh); !isInvalidGrant(err) {
			t.Errorf("bob's refresh token after the sync: %v", err)
		}
		// Active again at Google but not synced since: Google signs bob
		// in, dirgate's cache still says suspended.
		bob.Suspended = false
		cust.PutUser(bob)
		if got := rp.signIn(t, gwsBob); got.err == "" || !strings.Contains(got.err, "Google signed you in, but your account is disabled or not available here") {
			t.Errorf("bob, suspended by the sync: %+v", got)
		}
		// Deleted at Google: absent from the next run, no longer served.
		cust.DeleteUser(gwsBob)
		if mode, n := s.sync(t); mode != "full" || n[2] != 1 {
			t.Errorf("sync after deleting bob: %s %v, want 1 deleted", mode, n)
		}
		if got := s.search(t, "(mail=bob@"+gwsDomain+")"); len(got) != 0 {
			t.Errorf("deleted bob still served: %v", slices.Collect(maps.Keys(got)))
		}
	})

	t.Run("test-connection", func(t *testing.T) {
		out := s.cli(t, "test-connection", "gws")
		for _, step := range []string{"token_endpoint", "delegation", "sample", "groups"} {
			if !regexp.MustCompile(`(?m)^PASS +\S+ +` + step + ` `).MatchString(out) {
				t.Errorf("no passed step %s", step)
			}
		}
		if strings.Contains(out, "FAIL") {
			t.Errorf("a step failed")
		}
		if t.Failed() {
			t.Logf("test-connection:\n%s", out)
		}
	})

	if l := log(); strings.Contains(l, gwsOAuthSecret) {
		t.Errorf("the OAuth client's secret is in the log")
	}
}
