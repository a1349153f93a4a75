package fakegoogle

import "testing"

// FuzzParsers feeds what a client may send to the query, fields and
// projection parsers: they refuse it or parse it, never panic, and a
// selection that parses applies to a user object.
func FuzzParsers(f *testing.F) {
	f.Add("isSuspended=false orgUnitPath='/Sales dept'", "nextPageToken,users(id,name/givenName)")
	f.Add("email:dan*", "*")
	f.Add("'", "users(")
	c := &Customer{id: "C0fake01"}
	u := &User{ID: "1", PrimaryEmail: "a@example.test", Aliases: []string{"b@example.test"}}
	f.Fuzz(func(t *testing.T, query, fields string) {
		_, _ = parseUserQuery(query)
		_, _ = parseGroupQuery(query)
		_, _, _ = parseProjection(map[string][]string{"projection": {query}, "customFieldMask": {fields}})
		_, _ = selectFields(c.userObject(u, "basic", nil, t0), fields)
	})
}
