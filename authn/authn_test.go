package authn

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
)

// fixture is a cache with two connectors whose upstreams are unreachable:
// an attempt that passes resolution ends as ReasonUnavailable, one refused
// before the upstream ends with its own reason.
func fixture(t *testing.T, edit func(cfg *config.Config)) *Authenticator {
	t.Helper()
	s, err := cache.Open(t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	put := func(conn string, entries ...*cache.Entry) { putGeneration(t, s, conn, entries...) }
	put("a",
		&cache.Entry{ID: "1", DN: "uid=alice,dc=a", Kind: cache.KindUser, Addresses: []string{"alice@example.com", "shared@example.com"},
			Attrs: []cache.Attr{{Name: "uid", Values: []string{"alice"}}}},
		&cache.Entry{ID: "2", DN: "uid=carol,dc=a", Kind: cache.KindUser, Disabled: true, Addresses: []string{"carol@example.com"}},
		&cache.Entry{ID: "3", DN: "cn=staff,dc=a", Kind: cache.KindGroup, Addresses: []string{"staff@example.com"}})
	put("b",
		&cache.Entry{ID: "9", DN: "uid=bob,dc=b", Kind: cache.KindUser, Addresses: []string{"shared@example.com"}},
		&cache.Entry{ID: "8", DN: "uid=carl,dc=b", Kind: cache.KindUser, Addresses: []string{"carl@other.org"},
			Attrs: []cache.Attr{{Name: "userPrincipalName", Values: []string{"carl@corp.local"}}}})
	// Port 1: nothing listens, so any upstream bind attempt is unavailable.
	cfg := &config.Config{Connectors: []config.Connector{
		{Name: "a", Type: config.TypeOpenLDAP, Host: "127.0.0.1", Port: 1, Encryption: "none"},
		{Name: "b", Type: config.TypeOpenLDAP, Host: "127.0.0.1", Port: 1, Encryption: "none"},
	}}
	if edit != nil {
		edit(cfg)
	}
	a, err := New(cfg, s, s.States(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func TestFailuresBeforeUpstream(t *testing.T) {
	a := fixture(t, nil)
	cases := []struct {
		login, password string
		want            Reason
	}{
		{"shared@example.com", "pw", ReasonAmbiguous},
		{"SHARED@example.com ", "pw", ReasonAmbiguous},
		{"nobody@example.com", "pw", ReasonUnknownUser},
		{"uid=nobody,dc=a", "pw", ReasonUnknownUser},
		{"not a login", "pw", ReasonUnknownUser},
		{"alice", "pw", ReasonUnavailable}, // bare uid resolves
		{"cn=bad;dn", "pw", ReasonUnknownUser},
		{"staff@example.com", "pw", ReasonUnknownUser}, // groups cannot sign in
		{"carol@example.com", "pw", ReasonDisabled},
		{"alice@example.com", "", ReasonInvalidCredentials},
		{"alice@example.com", "pw", ReasonUnavailable}, // resolved; the upstream is down
		{"UID=Alice,DC=A", "pw", ReasonUnavailable},
		{"carl@corp.local", "pw", ReasonUnavailable}, // a UPN that is no mail address
	}
	for _, c := range cases {
		_, err := a.Login(context.Background(), Attempt{Login: c.login, Password: c.password})
		if got := ReasonOf(err); got != c.want {
			t.Errorf("Login(%q): %v (%v), want %v", c.login, got, err, c.want)
		}
		var ae *Error
		if !errors.As(err, &ae) {
			t.Errorf("Login(%q) error is not an *Error: %v", c.login, err)
		}
	}
}

func TestProfiles(t *testing.T) {
	profiles := func(ps ...config.AuthProfile) func(*config.Config) {
		return func(cfg *config.Config) { cfg.Auth.Profiles = ps }
	}
	domains := func(a, b []string) func(*config.Config) {
		return func(cfg *config.Config) { cfg.Connectors[0].EmailDomains, cfg.Connectors[1].EmailDomains = a, b }
	}
	type attempt struct {
		login      string
		want       Reason // ReasonUnavailable: resolved, then the upstream was asked
		wantDetail string
	}
	cases := []struct {
		name     string
		cfg      func(*config.Config)
		attempts []attempt
	}{
		{"explicit", profiles(config.AuthProfile{Domains: []string{"example.com"}, Connector: "a"}), []attempt{
			{"alice@example.com", ReasonUnavailable, ""},
			{" Alice@Example.COM", ReasonUnavailable, ""},
			// The profile settles which of the two holders is meant.
			{"shared@example.com", ReasonUnavailable, ""},
			{"carl@other.org", ReasonUnknownUser, "no authentication profile for domain other.org"},
			{"carl@corp.local", ReasonUnknownUser, "no authentication profile for domain corp.local"},
			{"nobody@nowhere.test", ReasonUnknownUser, "no authentication profile for domain nowhere.test"},
			// Logins that are not addresses skip the domain check.
			{"uid=carl,dc=b", ReasonUnavailable, ""},
			{"alice", ReasonUnavailable, ""},
		}},
		{"wrong connector", profiles(config.AuthProfile{Domains: []string{"example.com"}, Connector: "b"}), []attempt{
			{"alice@example.com", ReasonUnknownUser, "not in the connector the authentication profile for domain example.com names"},
			{"shared@example.com", ReasonUnavailable, ""}, // bob, in b
		}},
		{"any domain", profiles(
			config.AuthProfile{Domains: []string{"example.com"}, Connector: "a"},
			config.AuthProfile{Domains: []string{"*"}, Connector: "b"}), []attempt{
			{"carl@other.org", ReasonUnavailable, ""},
			{"carl@corp.local", ReasonUnavailable, ""},
			{"alice@example.com", ReasonUnavailable, ""}, // exact beats "*"
		}},
		{"any domain, wrong connector", profiles(config.AuthProfile{Domains: []string{"*"}, Connector: "a"}), []attempt{
			{"carl@other.org", ReasonUnknownUser, "not in the connector"},
			{"alice@example.com", ReasonUnavailable, ""},
		}},
		{"implicit, all domains", nil, []attempt{
			{"carl@other.org", ReasonUnavailable, ""},
			{"shared@example.com", ReasonAmbiguous, ""},
		}},
		{"implicit from email_domains", domains([]string{"example.com"}, nil), []attempt{
			{"carl@other.org", ReasonUnavailable, ""}, // b takes every domain
			{"shared@example.com", ReasonAmbiguous, ""},
		}},
		{"implicit, no connector takes the domain", domains([]string{"example.com"}, []string{"other.org"}), []attempt{
			{"carl@other.org", ReasonUnavailable, ""},
			{"carl@corp.local", ReasonUnknownUser, "no authentication profile for domain corp.local"},
			{"shared@example.com", ReasonUnavailable, ""}, // only a takes example.com
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := fixture(t, c.cfg)
			for _, at := range c.attempts {
				_, err := a.Login(context.Background(), Attempt{Login: at.login, Password: "pw"})
				if got := ReasonOf(err); got != at.want {
					t.Errorf("%s: %v (%v), want %v", at.login, got, err, at.want)
				}
				if at.wantDetail != "" && (err == nil || !strings.Contains(err.Error(), at.wantDetail)) {
					t.Errorf("%s: %v, want detail %q", at.login, err, at.wantDetail)
				}
			}
		})
	}
}

func TestADBindCodes(t *testing.T) {
	cases := []struct {
		text     string
		want     Reason
		verified bool
	}{
		{"80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 52e, v1db1", ReasonInvalidCredentials, false},
		{"80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 525, v1db1", ReasonUnknownUser, false},
		{"... data 530, v1db1", ReasonRestricted, true},
		{"... data 531, v1db1", ReasonRestricted, true},
		{"... data 532, v1db1", ReasonPasswordExpired, true},
		{"... data 533, v1db1", ReasonDisabled, true},
		{"... data 701, v1db1", ReasonAccountExpired, true},
		{"... data 773, v1db1", ReasonMustChangePassword, true},
		{"... data 775, v1db1", ReasonLocked, false},
		{"Invalid credentials", ReasonInvalidCredentials, false},
	}
	for _, c := range cases {
		err := classify("ad", ldap.NewError(ldap.LDAPResultInvalidCredentials, errors.New(c.text)))
		var ae *Error
		if !errors.As(err, &ae) || ae.Reason != c.want || ae.PasswordVerified != c.verified {
			t.Errorf("%q: %v (verified %v), want %v (%v)", c.text, ae.Reason, ae.PasswordVerified, c.want, c.verified)
		}
	}
}

func TestOutcomes(t *testing.T) {
	cases := []struct {
		err  error
		want outcome
	}{
		{&Error{Reason: ReasonInvalidCredentials}, outcomeFailure},
		{&Error{Reason: ReasonUnknownUser}, outcomeFailure},
		{&Error{Reason: ReasonAmbiguous}, outcomeFailure},
		{&Error{Reason: ReasonDisabled}, outcomeFailure},
		{&Error{Reason: ReasonLocked}, outcomeFailure},
		{&Error{Reason: ReasonDisabled, PasswordVerified: true}, outcomeNeutral},
		{&Error{Reason: ReasonPasswordExpired, PasswordVerified: true}, outcomeNeutral},
		{&Error{Reason: ReasonInvalidCredentials, Err: errEmptyPassword}, outcomeNeutral},
		{&Error{Reason: ReasonUnavailable}, outcomeNeutral},
		{&Error{Reason: ReasonThrottled}, outcomeNeutral},
		{errors.New("other"), outcomeNeutral},
	}
	for _, c := range cases {
		if got := outcomeOf(c.err); got != c.want {
			t.Errorf("outcomeOf(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	if ReasonThrottled.String() != "throttled" {
		t.Errorf("ReasonThrottled.String() = %q", ReasonThrottled.String())
	}
}
