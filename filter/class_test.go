package filter

import (
	"slices"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

var (
	// olUser is an OpenLDAP entry: slapd stores the structural class only.
	olUser = plainEntry{"objectclass": {"inetOrgPerson"}, "uid": {"u1"}}
	// adUser is an AD entry: AD stores the whole chain and a category DN.
	adUser = plainEntry{
		"objectclass":    {"top", "person", "organizationalPerson", "user"},
		"objectcategory": {"CN=Person,CN=Schema,CN=Configuration,DC=example,DC=test"},
	}
	adContact = plainEntry{
		"objectclass":    {"top", "person", "organizationalPerson", "contact"},
		"objectcategory": {"CN=Person, CN=Schema, CN=Configuration, DC=example, DC=test"},
	}
	adComputer = plainEntry{
		"objectclass":    {"computer"},
		"objectcategory": {"CN=Computer,CN=Schema,CN=Configuration,DC=example,DC=test"},
	}
	adGroup = plainEntry{
		"objectclass":    {"top", "group"},
		"objectcategory": {"CN=Group,CN=Schema,CN=Configuration,DC=example,DC=test"},
	}
	adOU = plainEntry{
		"objectclass":    {"top", "organizationalUnit"},
		"objectcategory": {"CN=Organizational-Unit,CN=Schema,CN=Configuration,DC=example,DC=test"},
	}
	olGroup   = plainEntry{"objectclass": {"groupOfUniqueNames"}}
	oddClass  = plainEntry{"objectclass": {"fooClass"}}
	noClasses = plainEntry{}
)

var classTests = []struct {
	filter string
	entry  Entry
	want   Result
}{
	// objectClass matches a stored class and every superclass of one.
	{"(objectClass=inetOrgPerson)", olUser, True},
	{"(objectClass=organizationalPerson)", olUser, True},
	{"(objectClass=person)", olUser, True},
	{"(objectClass=PERSON)", olUser, True},
	{"(2.5.4.0=person)", olUser, True},
	{"(objectClass~=person)", olUser, True},
	{"(objectClass:=person)", olUser, True},
	{"(objectClass=top)", olUser, True},
	{"(objectClass=top)", oddClass, True},
	{"(objectClass=top)", noClasses, True},
	{"(!(objectClass=person))", olUser, False},
	{"(objectClass=user)", olUser, False},
	{"(objectClass=groupOfNames)", olUser, False},
	{"(objectClass=posixAccount)", olUser, False},
	{"(&(objectClass=inetOrgPerson)(objectClass=organizationalPerson))", olUser, True}, // Keycloak's default
	{"(objectClass=groupOfUniqueNames)", olGroup, True},
	{"(objectClass=groupOfNames)", olGroup, False},
	{"(objectClass=user)", adComputer, True},
	{"(objectClass=organizationalPerson)", adComputer, True},
	{"(objectClass=computer)", adUser, False},
	{"(objectClass=fooClass)", oddClass, True},
	{"(objectClass=person)", oddClass, False},
	{"(objectClass=top)", adGroup, True},
	{"(objectClass=person)", adGroup, False},
	{"(objectClass=inet*)", olUser, True},

	// objectCategory: a class name stands for its default category DN.
	{"(objectCategory=person)", adUser, True},
	{"(objectCategory=Person)", adUser, True},
	{"(objectCategory=user)", adUser, True},
	{"(objectCategory=organizationalPerson)", adUser, True},
	{"(objectCategory=inetOrgPerson)", adUser, True},
	{"(objectCategory=contact)", adContact, True},
	{"(objectCategory=person)", adContact, True},
	{"(objectCategory=group)", adUser, False},
	{"(objectCategory=computer)", adUser, False},
	{"(objectCategory=group)", adGroup, True},
	{"(objectCategory=computer)", adComputer, True},
	{"(objectCategory=person)", adComputer, False},
	{"(objectCategory=organizationalUnit)", adOU, True},
	{"(objectCategory=Organizational-Unit)", adOU, True},
	{"(objectCategory=person)", olUser, False},
	{"(objectCategory~=person)", adUser, True},
	{"(!(objectCategory=person))", adGroup, True},
	{"(&(objectCategory=person)(objectClass=user))", adUser, True},
	{"(&(objectCategory=person)(objectClass=user))", adContact, False},
	{"(&(objectCategory=person)(objectClass=user))", adComputer, False},
	{"(objectCategory=CN=Person,CN=Schema,CN=Configuration,DC=example,DC=test)", adUser, True},
	{"(objectCategory=cn=person, cn=schema,cn=configuration,dc=EXAMPLE,dc=test)", adUser, True},
	{"(objectCategory=CN=Person,CN=Schema,CN=Configuration,DC=other,DC=test)", adUser, False},
	{"(objectCategory=CN=Person,CN=Schema,CN=Configuration,DC=example,DC=test)", adContact, True},
}

func TestObjectClassAndCategory(t *testing.T) {
	for _, tt := range classTests {
		f := mustParse(t, tt.filter)
		if got := f.Eval(tt.entry); got != tt.want {
			t.Errorf("%s on %v: Eval = %v, want %v", tt.filter, tt.entry, got, tt.want)
		}
	}
}

// hintsMiss reports whether f matches e although the hints of f, with
// every attribute indexed, do not lead to e.
func hintsMiss(f *Filter, e Entry) (miss bool, hints []IndexHint) {
	hints, ok := f.Hints(func(string) bool { return true })
	if !ok || !f.Match(e) {
		return false, hints
	}
	for _, h := range hints {
		for _, v := range e.Values(h.Attr) {
			if k, ok := EqualityKey(nil, h.Attr, v); ok && k == h.Value {
				return false, hints
			}
		}
	}
	return true, hints
}

// The planner must not lose an entry that matches through a superclass or
// a category short name, whichever attributes are indexed.
func TestHintsCoverClassMatches(t *testing.T) {
	all := func(string) bool { return true }
	for _, tt := range classTests {
		if miss, hints := hintsMiss(mustParse(t, tt.filter), tt.entry); miss {
			t.Errorf("%s matches %v but its hints %q miss it", tt.filter, tt.entry, hints)
		}
	}
	got, ok := mustParse(t, "(objectClass=person)").Hints(all)
	for _, want := range []string{"person", "organizationalperson", "inetorgperson", "user", "computer"} {
		if !ok || !slices.Contains(got, IndexHint{Attr: "objectclass", Value: want}) {
			t.Errorf("(objectClass=person): hints %q, %v lack %s", got, ok, want)
		}
	}
	if h, ok := mustParse(t, "(objectClass=top)").Hints(all); ok {
		t.Errorf("(objectClass=top) matches every entry, yet Hints = %q, true", h)
	}
}

func TestObjectClassDoesNotAllocate(t *testing.T) {
	f := mustParse(t, "(&(objectClass=person)(objectCategory=person))")
	if n := testing.AllocsPerRun(100, func() { f.Match(adUser) }); n != 0 {
		t.Errorf("Match allocates %v times", n)
	}
}

// FuzzClassAssertions evaluates objectClass and objectCategory assertions
// with any value: they must not panic, and the planner must not miss a
// match.
func FuzzClassAssertions(f *testing.F) {
	for _, v := range []string{"person", "top", "Organizational-Unit", "cn=x", "CN=Person,CN=Schema,CN=Configuration,DC=x", " user ", ""} {
		f.Add(v)
	}
	entries := []Entry{olUser, adUser, adContact, adComputer, adGroup, adOU, oddClass, noClasses,
		plainEntry{"objectcategory": {"cn=a,cn=b", "x", "CN=\\,CN=Schema,CN=Configuration,DC=x"}}}
	f.Fuzz(func(t *testing.T, v string) {
		for _, attr := range []string{"objectClass", "objectCategory", "2.5.4.0"} {
			flt, err := Parse("("+attr+"="+ldap.EscapeFilter(v)+")", Limits{})
			if err != nil {
				continue
			}
			for _, e := range entries {
				if miss, hints := hintsMiss(flt, e); miss {
					t.Fatalf("%s matches %v but its hints %q miss it", flt, e, hints)
				}
			}
		}
	})
}
