package oidc

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/dirgate/dirgate/cache"
	dgclock "github.com/dirgate/dirgate/clock"
	"github.com/dirgate/dirgate/internal/fakegoogle"
)

const (
	googleClient = "123-dirgate.apps.googleusercontent.com"
	googleSecret = "oauth-s3cret"
	// Directory user IDs of the fake customer.
	gAnn   = "100000000000000000001"
	gBob   = "100000000000000000002"
	gOla   = "100000000000000000003"
	gCarl  = "100000000000000000004"
	gCarl2 = "100000000000000000005"
)

// googleFixture is the provider of newFixture with "Sign in with Google"
// for the domain example.com of a fake customer that also owns
// other.test, and the connector gws in the cache.
type googleFixture struct {
	upstreamUnder
	cust *fakegoogle.Customer
}

func newGoogleFixture(t *testing.T, extra ...Client) *googleFixture {
	t.Helper()
	f := newFixture(t, extra...)
	cust := fakegoogle.New(t, fakegoogle.WithClock(dgclock.NewFake(time.Now())), fakegoogle.WithDomains("example.com", "other.test"))
	cust.AddOAuthClient(googleClient, googleSecret, f.srv.URL+"/upstream/callback")
	for _, u := range []fakegoogle.User{
		{ID: gAnn, PrimaryEmail: "ann@example.com", GivenName: "Ann", FamilyName: "Lee"},
		// Suspended by the sync, active at Google since.
		{ID: gBob, PrimaryEmail: "bob@example.com", GivenName: "Bob"},
		// In the customer's other domain, which does not sign in here.
		{ID: gOla, PrimaryEmail: "ola@other.test", GivenName: "Ola"},
		// Signs in with the address of a synced account, but is another
		// Google account: a name must not join it to that account.
		{ID: gCarl, PrimaryEmail: "carl@example.com", GivenName: "Carl"},
	} {
		cust.PutUser(u)
	}
	cust.SignInAs(gAnn)
	gf := &googleFixture{upstreamUnder: upstreamUnder{fixture: f, name: "gws", label: "Google", base: cust.IssuerURL()}, cust: cust}
	gf.putGWS(t, false)
	f.useUpstreams(t, GoogleUpstream(Upstream{Name: "gws", Connector: "gws", ClientID: googleClient, ClientSecret: googleSecret,
		HTTPClient: cust.HTTPClient()}, cust.IssuerURL(), []string{"example.com"}))
	return gf
}

// putGWS commits the connector gws's generation; annDisabled is what the
// sync saw of ann (suspended).
func (f *googleFixture) putGWS(t *testing.T, annDisabled bool, without ...string) {
	t.Helper()
	var entries []*cache.Entry
	for _, e := range []*cache.Entry{
		{ID: gAnn, DN: "cn=" + gAnn + ",ou=users,o=example.com", Kind: cache.KindUser, Addresses: []string{"ann@example.com"}, Disabled: annDisabled,
			Attrs: []cache.Attr{{Name: "displayName", Values: []string{"Ann Synced"}}}},
		{ID: gBob, DN: "cn=" + gBob + ",ou=users,o=example.com", Kind: cache.KindUser, Addresses: []string{"bob@example.com"}, Disabled: true},
		{ID: gOla, DN: "cn=" + gOla + ",ou=users,o=example.com", Kind: cache.KindUser, Addresses: []string{"ola@other.test"}},
		{ID: gCarl2, DN: "cn=" + gCarl2 + ",ou=users,o=example.com", Kind: cache.KindUser, Addresses: []string{"carl@example.com"}},
		{ID: "g-staff", DN: "cn=g-staff,ou=groups,o=example.com", Kind: cache.KindGroup, Members: []string{"cn=" + gAnn + ",ou=users,o=example.com"},
			Attrs: []cache.Attr{{Name: "cn", Values: []string{"staff"}}}},
	} {
		if !slices.Contains(without, e.ID) {
			entries = append(entries, e)
		}
	}
	f.putGeneration(t, "gws", entries...)
}

func TestGoogleSignInJoinsBySub(t *testing.T) {
	f := newGoogleFixture(t)
	for i, rotate := range []bool{false, true} {
		if rotate {
			// A new signing key at Google: its JWKS is fetched again.
			f.cust.RotateSigningKey()
		}
		c, _ := f.signIn(t, "rp-nonce")
		// dirgate's claims, from its cache: the synced name and groups.
		if c["sub"] != gAnn || c["name"] != "Ann Synced" || c["nonce"] != "rp-nonce" || !slices.Equal(toStrings(c["groups"]), []string{"staff"}) {
			t.Fatalf("sign-in %d: id token %v", i, c)
		}
	}
	if hints := f.cust.HDHints(); len(hints) != 2 || hints[0] != "example.com" {
		t.Errorf("hd hints %q", hints)
	}
}

// TestGoogleSignInRefusals: Google signs each in, and dirgate refuses
// them on its login page, saying why.
func TestGoogleSignInRefusals(t *testing.T) {
	f := newGoogleFixture(t)
	authURL := f.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	for _, tc := range []struct {
		name  string
		setup func()
		want  string
	}{
		{"personal account", func() { f.cust.SignInConsumer("ann@example.com") },
			"You signed in to Google with a personal account. Sign in with your account of example.com."},
		{"another Workspace domain of the customer", func() { f.cust.SignInAs(gOla) },
			"Your Google account belongs to other.test, which does not sign in here."},
		{"email not verified", func() {
			f.cust.TamperIDTokens(func(c map[string]any) { c["email_verified"] = false })
		}, "Google has not verified the email address of your account."},
		{"suspended by the sync", func() { f.cust.SignInAs(gBob) },
			"Google signed you in, but your account is disabled or not available here."},
		{"never synced, though named like a synced account", func() { f.cust.SignInAs(gCarl) },
			"Google signed you in, but your account is disabled or not available here."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.cust.SignInAs(gAnn)
			tc.setup()
			defer f.cust.TamperIDTokens(nil)
			resp, body, _ := f.via(t, browser(), authURL)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, tc.want) || !strings.Contains(body, `name="password"`) {
				t.Fatalf("%s: %s", resp.Status, body)
			}
		})
	}
}

func TestGoogleIDTokenChecks(t *testing.T) {
	f := newGoogleFixture(t)
	authURL := f.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	for _, tc := range []struct {
		name   string
		tamper func(c map[string]any)
		forge  bool
	}{
		{"wrong issuer", func(c map[string]any) { c["iss"] = "https://accounts.google.com" }, false},
		{"wrong audience", func(c map[string]any) { c["aud"] = "another.apps.googleusercontent.com" }, false},
		{"wrong nonce", func(c map[string]any) { c["nonce"] = "replayed" }, false},
		{"expired", func(c map[string]any) {
			c["iat"], c["exp"] = time.Now().Add(-3*time.Hour).Unix(), time.Now().Add(-2*time.Hour).Unix()
		}, false},
		{"no sub", func(c map[string]any) { delete(c, "sub") }, false},
		{"unknown kid", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.cust.TamperIDTokens(tc.tamper)
			f.cust.SignWithUnpublishedKey(tc.forge)
			defer f.cust.TamperIDTokens(nil)
			defer f.cust.SignWithUnpublishedKey(false)
			resp, body, _ := f.via(t, browser(), authURL)
			if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "Sign-in with Google failed") {
				t.Fatalf("%s: %s", resp.Status, body)
			}
		})
	}
	// The same flow untampered signs in, so each refusal above is the
	// check's.
	if resp, body, _ := f.via(t, browser(), authURL); resp.StatusCode != http.StatusFound {
		t.Fatalf("untampered: %s %s", resp.Status, body)
	}
}

func TestGoogleRefreshStopsWhenSyncSuspends(t *testing.T) {
	for _, tc := range []struct {
		name     string
		disabled bool
		without  []string
	}{{"suspended", true, nil}, {"deleted", false, []string{gAnn}}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newGoogleFixture(t)
			_, refresh := f.signIn(t, "")
			tok, err := f.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: refresh}).Token()
			if err != nil {
				t.Fatalf("refresh before the sync: %v", err)
			}
			f.putGWS(t, tc.disabled, tc.without...)
			_, err = f.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			if err == nil || !strings.Contains(err.Error(), "no longer active") {
				t.Fatalf("refresh after the sync: %v", err)
			}
		})
	}
}

func TestGoogleErrorShownOnLoginPage(t *testing.T) {
	f := newGoogleFixture(t)
	f.cust.FailSignIn("admin_policy_enforced")
	resp, body, _ := f.via(t, browser(), f.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Google did not sign you in: your organisation&#39;s Google administrator does not allow") {
		t.Fatalf("%s: %s", resp.Status, body)
	}
}
