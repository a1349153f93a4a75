package authn

import (
	"context"
	"errors"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
)

func fixture(t *testing.T) *Authenticator {
	t.Helper()
	s, err := cache.Open(t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	put := func(conn string, entries ...*cache.Entry) {
		g, err := s.NewGeneration(conn)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if err := g.Put(e); err != nil {
				t.Fatal(err)
			}
		}
		if err := g.Commit(context.Background(), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	put("a",
		&cache.Entry{ID: "1", DN: "uid=alice,dc=a", Kind: cache.KindUser, Addresses: []string{"alice@example.com", "shared@example.com"},
			Attrs: []cache.Attr{{Name: "uid", Values: []string{"alice"}}}},
		&cache.Entry{ID: "2", DN: "uid=carol,dc=a", Kind: cache.KindUser, Disabled: true, Addresses: []string{"carol@example.com"}},
		&cache.Entry{ID: "3", DN: "cn=staff,dc=a", Kind: cache.KindGroup, Addresses: []string{"staff@example.com"}})
	put("b", &cache.Entry{ID: "9", DN: "uid=bob,dc=b", Kind: cache.KindUser, Addresses: []string{"shared@example.com"}})
	// Connector "a" points at a port nothing listens on: any upstream bind
	// attempt is an unavailable error, which these tests must never reach.
	cfg := &config.Config{Connectors: []config.Connector{
		{Name: "a", Host: "127.0.0.1", Port: 1, Encryption: "none"},
		{Name: "b", Host: "127.0.0.1", Port: 1, Encryption: "none"},
	}}
	a, err := New(cfg, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestFailuresBeforeUpstream(t *testing.T) {
	a := fixture(t)
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
	}
	for _, c := range cases {
		_, err := a.Authenticate(context.Background(), c.login, c.password)
		if got := ReasonOf(err); got != c.want {
			t.Errorf("Authenticate(%q): %v (%v), want %v", c.login, got, err, c.want)
		}
		var ae *Error
		if !errors.As(err, &ae) {
			t.Errorf("Authenticate(%q) error is not an *Error: %v", c.login, err)
		}
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
