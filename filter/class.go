package filter

import (
	"strings"
	"unicode/utf8"
)

// superior maps a structural or auxiliary object class (lower case) to its
// direct superclass in the standard schemas (RFC 4519, RFC 2798, RFC 2307,
// the Active Directory schema, Domino's LDAP schema). slapd stores only the
// classes an entry was written with, yet (objectClass=person) matches an
// inetOrgPerson (objectSubClassMatch); AD stores the whole chain. Where the
// schemas disagree (AD derives inetOrgPerson from user) RFC 2798 wins: AD
// entries carry their chain anyway.
var superior = map[string]string{
	"person":               "top",
	"organizationalperson": "person",
	"inetorgperson":        "organizationalperson",
	"residentialperson":    "person",
	"user":                 "organizationalperson",
	"computer":             "user",
	"contact":              "organizationalperson",
	"group":                "top",
	"groupofnames":         "top",
	"groupofuniquenames":   "top",
	"posixaccount":         "top",
	"posixgroup":           "top",
	"shadowaccount":        "top",
	"account":              "top",
	"organizationalunit":   "top",
	"organization":         "top",
	"organizationalrole":   "top",
	"dominoperson":         "inetorgperson",
	"dominogroup":          "groupofnames",
}

// subclasses maps a class to the classes derived from it, directly or not.
var subclasses = func() map[string][]string {
	m := map[string][]string{}
	for c := range superior {
		for s, ok := superior[c]; ok && s != "top"; s, ok = superior[s] {
			m[s] = append(m[s], c)
		}
	}
	return m
}()

// classValues returns the stored objectClass values, normalised, that make
// (objectClass=asserted) TRUE: the class and its subclasses. all is true
// for top, which every entry is.
func classValues(asserted string) (vals []string, all bool) {
	norm := string(appendNorm(nil, asserted, true, useEquality))
	if norm == "top" {
		return nil, true
	}
	return append([]string{norm}, subclasses[norm]...), false
}

// categories maps the lDAPDisplayName of an AD class to the RDN value of
// its defaultObjectCategory, which AD substitutes for a class name written
// where objectCategory expects a DN.
var categories = map[string]string{
	"person":                          "person",
	"organizationalperson":            "person",
	"user":                            "person",
	"inetorgperson":                   "person",
	"contact":                         "person",
	"computer":                        "computer",
	"group":                           "group",
	"organizationalunit":              "organizational-unit",
	"container":                       "container",
	"domaindns":                       "domain-dns",
	"builtindomain":                   "builtin-domain",
	"foreignsecurityprincipal":        "foreign-security-principal",
	"msds-managedserviceaccount":      "ms-ds-managed-service-account",
	"msds-groupmanagedserviceaccount": "ms-ds-group-managed-service-account",
	"grouppolicycontainer":            "group-policy-container",
}

// categoryTest matches objectCategory values (DNs) that name one category
// of the schema: CN=<category>,CN=Schema,CN=Configuration,<forest root>.
// The forest root is not known here, so any root is accepted.
type categoryTest struct {
	prefix string // "cn=<category>,cn=schema,cn=configuration,"
	rdns   [3]assertion
}

// newCategoryTest is the test of (objectCategory=name) for a name that is
// not a DN: a class's lDAPDisplayName, else (as AD's own short forms)
// the category's RDN value.
func newCategoryTest(schema Schema, name string) *categoryTest {
	cat := string(appendNorm(nil, name, true, useEquality))
	if c, ok := categories[cat]; ok {
		cat = c
	}
	t := &categoryTest{prefix: "cn=" + cat + ",cn=schema,cn=configuration,"}
	for i, v := range []string{cat, "schema", "configuration"} {
		t.rdns[i] = newAssertion(schema, CaseIgnore, v)
	}
	return t
}

func (t *categoryTest) test(v string) Result {
	// AD writes category DNs without spaces or escapes: decide those
	// without parsing.
	if len(v) > len(t.prefix) && strings.EqualFold(v[:len(t.prefix)], t.prefix) {
		return True
	}
	d, err := parseDN(v)
	if err != nil {
		return Undefined
	}
	if len(d.RDNs) <= len(t.rdns) {
		return False
	}
	for i := range t.rdns {
		rdn := d.RDNs[i].Attributes
		if len(rdn) != 1 || !sameType(rdn[0].Type, "cn") || t.rdns[i].test(rdn[0].Value) != True {
			return False
		}
	}
	return True
}

// isCategoryName reports whether an objectCategory assertion value is a
// class or category name rather than a DN.
func isCategoryName(value string) bool { return !strings.Contains(value, "=") }

// classTest matches objectClass values equal to one of names (normalised).
type classTest []string

func (t classTest) test(v string) Result {
	for _, n := range t {
		if cmpNorm(v, n, true) == 0 {
			return True
		}
	}
	return False
}

// schemaKind classifies the equality assertions whose meaning comes from
// the schema rather than from a syntax: objectClass, which its subclasses
// satisfy too (vals, every class that satisfies it; all for top, which
// every entry satisfies), and objectCategory written with a class name
// (category). Every other assertion gets zero values.
func schemaKind(base, value string) (vals []string, all, category bool) {
	switch {
	case base == "objectclass" && value != "" && utf8.ValidString(value):
		vals, all = classValues(value)
		return vals, all, false
	case base == "objectcategory" && isCategoryName(value):
		return nil, false, true
	}
	return nil, false, false
}

// compileSchemaEquality compiles the assertions schemaKind classifies; ok
// is false for every other assertion.
func compileSchemaEquality(full, base, value string, schema Schema) (m matcher, ok bool) {
	vals, all, category := schemaKind(base, value)
	switch {
	case all:
		// As for (objectClass=*): every entry has a class, whether or
		// not the cache keeps the attribute.
		return constM(True), true
	case category:
		return &testM{attr: full, t: newCategoryTest(schema, value)}, true
	case vals != nil:
		return &testM{attr: full, t: classTest(vals)}, true
	}
	return nil, false
}
