package dn

import (
	"errors"
	"testing"
)

// Vectors from the RFC 4514 section of the domain reference: every pair must
// normalise to the same key.
func TestKeyEquivalence(t *testing.T) {
	cases := []struct{ a, b string }{
		{`CN=Documents,OU=Docs/KB,DC=Mimecast,DC=COM`, `CN=Documents,OU=Docs\2FKB,DC=Mimecast,DC=COM`},
		{`CN=Documents,OU=Docs/KB,DC=Mimecast,DC=COM`, `CN=Documents,OU=Docs\/KB,DC=Mimecast,DC=COM`},
		{`cn=documents,ou=Docs\2fKB,dc=mimecast,dc=com`, `CN=Documents,OU=Docs/KB,DC=Mimecast,DC=COM`},
		{`CN=John Smith\, III,DC=example,DC=net`, `CN=John Smith\2C III,DC=example,DC=net`},
		{`OU=Sales\; Data\+Algorithms,DC=example,DC=net`, `OU=Sales\3B Data\2BAlgorithms,DC=example,DC=net`},
		{`CN=\23John Smith\20,DC=example,DC=net`, `CN=\#John Smith\ ,DC=example,DC=net`},
		{`OU=Sales+CN=J. Smith,DC=example,DC=net`, `cn=J. Smith+ou=Sales,dc=example,dc=net`},
		{`CN=Lu\C4\8Di\C4\87`, `CN=Lučić`},
		{`CN=Alice , OU=Users,DC=x`, `CN=Alice,OU=Users,DC=x`},
		{`cn=Jürgen Müller,ou=people,dc=example,dc=test`, `CN=J\C3\BCrgen M\C3\BCller,OU=People,DC=Example,DC=Test`},
		{`cn=a   b,dc=x`, `cn=A B,dc=x`},
	}
	for _, c := range cases {
		ka, err := Key(c.a)
		if err != nil {
			t.Fatalf("Key(%q): %v", c.a, err)
		}
		kb, err := Key(c.b)
		if err != nil {
			t.Fatalf("Key(%q): %v", c.b, err)
		}
		if ka != kb {
			t.Errorf("keys differ:\n %q -> %q\n %q -> %q", c.a, ka, c.b, kb)
		}
		if !Equal(c.a, c.b) {
			t.Errorf("Equal(%q, %q) = false", c.a, c.b)
		}
	}
}

func TestKeyDistinct(t *testing.T) {
	cases := []struct{ a, b string }{
		{`cn=a\,b,dc=x`, `cn=a,cn=b,dc=x`},
		{`cn=a\\,dc=x`, `cn=a,dc=x`},
		{`cn=Alice,dc=x`, `cn=Alice2,dc=x`},
	}
	for _, c := range cases {
		if Equal(c.a, c.b) {
			t.Errorf("Equal(%q, %q) = true", c.a, c.b)
		}
	}
}

func TestInvalid(t *testing.T) {
	for _, s := range []string{`CN=Alice\`, `CN=Alice\4`, `CN=Alice\zz`, `=Alice`, `CN=Alice+`, `CN=#start,DC=x`, `CN=foo;bar,DC=x`} {
		if _, err := Key(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("Key(%q) err = %v, want ErrInvalid", s, err)
		}
	}
}

func TestTree(t *testing.T) {
	base, _ := Key("dc=example,dc=test")
	people, _ := Key("ou=people,dc=example,dc=test")
	user, _ := Key(`cn=Doe\, John,ou=people,dc=example,dc=test`)
	other, _ := Key("dc=examplex,dc=test")
	if !Under(user, base) || !Under(user, people) || !Under(people, people) {
		t.Error("Under: subtree not recognised")
	}
	if Under(other, base) {
		t.Error("Under: sibling with common string prefix counted as descendant")
	}
	if Parent(user) != people || Depth(user) != 4 || Depth("") != 0 {
		t.Errorf("Parent/Depth wrong: %q %d", Parent(user), Depth(user))
	}
	if !Under(user, "") {
		t.Error("everything is under the root DSE")
	}
}

// slowKey is Key without the plainKey shortcut.
func slowKey(s string) (string, error) {
	d, err := Parse(s)
	if err != nil {
		return "", err
	}
	return KeyOf(d), nil
}

func TestPlainKeyMatchesParser(t *testing.T) {
	plain := []string{"uid=user00001,ou=people,dc=example,dc=test", "CN=John Smith,OU=Sales Dept,DC=Corp,DC=Example",
		"cn=a.b_c@d-e,o=x", "2.5.4.3=x,dc=y", "cn=x", "CN=Test User 00009,DC=example"}
	for _, s := range plain {
		k, ok := plainKey(s)
		want, err := slowKey(s)
		if !ok || err != nil || k != want {
			t.Errorf("plainKey(%q) = %q, %v; parser gives %q, %v", s, k, ok, want, err)
		}
	}
	// Everything needing the parser is left to it.
	for _, s := range []string{"", "cn=a+sn=b,dc=x", `cn=Doe\, John,dc=x`, "cn= x,dc=y", "cn=x ,dc=y", "cn=a  b,dc=y",
		"cn=x, dc=y", ",cn=x", "cn=x,", "cn=,dc=x", "=x", "cn=#41", "cn=Jürgen", `cn=a\/b`, "cn=a=b", "-cn=x", "cn=x,,dc=y"} {
		if k, ok := plainKey(s); ok {
			t.Errorf("plainKey(%q) = %q, want it left to the parser", s, k)
		}
	}
}

func FuzzPlainKey(f *testing.F) {
	for _, s := range []string{"uid=u1,ou=people,dc=example,dc=test", "CN=A b,DC=x", "cn=x", "a.b=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, ok := plainKey(s)
		if !ok {
			return
		}
		want, err := slowKey(s)
		if err != nil || k != want {
			t.Fatalf("plainKey(%q) = %q; parser gives %q, %v", s, k, want, err)
		}
	})
}
