package dn

import (
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// The escaping vectors of the domain reference (RFC 4514 section 2.4 for
// values in DNs, RFC 4515 section 3 for filter assertion values). dirgate
// escapes with go-ldap; these pin the behaviour it relies on.
func TestEscapeDNVectors(t *testing.T) {
	cases := map[string]string{
		"Smith, James K.":   `Smith\, James K.`,
		`Sales\Engineering`: `Sales\\Engineering`,
		"East#Test + Lab":   `East#Test \+ Lab`,
		" Jim Smith ":       `\ Jim Smith\ `,
		"#hash":             `\#hash`,
		"Docs/KB":           "Docs/KB",
		`quote"d`:           `quote\"d`,
		"<angle>":           `\<angle\>`,
		"semi;colon":        `semi\;colon`,
		"nul\x00byte":       `nul\00byte`,
		"trailing ":         `trailing\ `,
		"Müller":            "Müller",
	}
	for in, want := range cases {
		if got := ldap.EscapeDN(in); got != want {
			t.Errorf("EscapeDN(%q) = %q, want %q", in, got, want)
		}
		// Escaped into an RDN, the value parses back to itself.
		d, err := Parse("cn=" + ldap.EscapeDN(in) + ",dc=x")
		if err != nil || d.RDNs[0].Attributes[0].Value != in {
			t.Errorf("round trip of %q: %v %v", in, d, err)
		}
	}
}

func TestEscapeFilterVectors(t *testing.T) {
	cases := map[string]string{
		"Five*Star":            `Five\2aStar`,
		`c:\File`:              `c:\5cFile`,
		"John (2nd)":           `John \282nd\29`,
		`a*b(c)d\e`:            `a\2ab\28c\29d\5ce`,
		"*":                    `\2a`,
		"Müller":               `M\c3\bcller`,
		"alice@example.com":    "alice@example.com",
		"O'Brien":              "O'Brien",
		"user+tag@example.com": "user+tag@example.com",
	}
	for in, want := range cases {
		if got := ldap.EscapeFilter(in); got != want {
			t.Errorf("EscapeFilter(%q) = %q, want %q", in, got, want)
		}
	}
	// A DN inside a filter is DN-escaped first, then filter-escaped.
	member := "CN=" + ldap.EscapeDN("Smith, James K.") + ",OU=West,DC=MyDomain,DC=com"
	if got := ldap.EscapeFilter(member); got != `CN=Smith\5c, James K.,OU=West,DC=MyDomain,DC=com` {
		t.Errorf("DN in a filter: %q", got)
	}
}
