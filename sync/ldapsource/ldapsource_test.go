package ldapsource

import (
	"reflect"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/config"
)

func TestParseProxyAddress(t *testing.T) {
	cases := []struct {
		in      string
		addr    string
		primary bool
		ok      bool
	}{
		{"SMTP:Alice@Example.com", "Alice@Example.com", true, true},
		{"smtp:a.l@example.com", "a.l@example.com", false, true},
		{"X500:/o=Org/ou=x/cn=alice", "", false, false},
		{"sip:alice@example.com", "", false, false},
		{"alice@example.com", "alice@example.com", false, true},
	}
	for _, c := range cases {
		addr, primary, ok := parseProxyAddress(c.in)
		if addr != c.addr || primary != c.primary || ok != c.ok {
			t.Errorf("parseProxyAddress(%q) = %q %v %v", c.in, addr, primary, ok)
		}
	}
}

func TestAddresses(t *testing.T) {
	entry := ldap.NewEntry("uid=a,dc=x", map[string][]string{
		"mail":           {"A@Example.com", "a2@other.org", "not-an-address"},
		"proxyAddresses": {"smtp:alias@example.com", "SMTP:Primary@Example.com", "X500:/o=x", "smtp:a@example.com"},
	})
	cases := []struct {
		domains []string
		want    []string
	}{
		{nil, []string{"primary@example.com", "a@example.com", "a2@other.org", "alias@example.com"}},
		{[]string{"example.com"}, []string{"primary@example.com", "a@example.com", "alias@example.com"}},
		{[]string{"nowhere.test"}, nil},
	}
	for _, c := range cases {
		s := &Source{conn: &config.Connector{MailAttribute: "mail", AliasAttributes: []string{"proxyAddresses"}}}
		if c.domains != nil {
			s.domains = map[string]bool{}
			for _, d := range c.domains {
				s.domains[d] = true
			}
		}
		if got := s.addresses(entry); !reflect.DeepEqual(got, c.want) {
			t.Errorf("domains %v: addresses = %v, want %v", c.domains, got, c.want)
		}
	}
}
