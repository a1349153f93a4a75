package proxy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/demodir"
	"github.com/dirgate/dirgate/filter"
)

const (
	aliceDN       = "uid=alice,ou=people,dc=demo,dc=dirgate"
	engineeringDN = "cn=engineering,ou=groups,dc=demo,dc=dirgate"
)

// baseEntry reads one entry with the given attribute list, paged or not.
func baseEntry(t *testing.T, c *ldap.Conn, dn string, attrs []string, paged bool) *ldap.Entry {
	t.Helper()
	req := ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", attrs, nil)
	var res *ldap.SearchResult
	var err error
	if paged {
		res, err = c.SearchWithPaging(req, 10)
	} else {
		res, err = c.Search(req)
	}
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read %s %q (paged %v): %v %+v", dn, attrs, paged, err, res)
	}
	return res.Entries[0]
}

func attrMap(e *ldap.Entry) map[string][]string {
	m := map[string][]string{}
	for _, a := range e.Attributes {
		m[a.Name] = a.Values
	}
	return m
}

// An attribute requested by OID or another name of its type is returned
// under the name it is stored with, as slapd does.
func TestSearchAttributesByOID(t *testing.T) {
	addr := startDemo(t)
	c := bound(t, addr)
	full := attrMap(baseEntry(t, c, aliceDN, []string{"*"}, false))
	tests := []struct {
		attrs []string
		want  []string // stored names expected back
	}{
		{[]string{"2.5.4.3"}, []string{"cn"}},
		{[]string{"commonName"}, []string{"cn"}},
		{[]string{"CN"}, []string{"cn"}},
		{[]string{"0.9.2342.19200300.100.1.3", "2.5.4.3"}, []string{"cn", "mail"}},
		{[]string{"0.9.2342.19200300.100.1.1"}, []string{"uid"}},
		{[]string{"2.5.4.4", "gn", "2.16.840.1.113730.3.1.241"}, []string{"sn", "givenName", "displayName"}},
		{[]string{"2.5.4.0"}, []string{"objectClass"}},
		{[]string{"cn;lang-en"}, nil}, // no such subtype is stored
		{[]string{"2.5.4.3;lang-en", "sn"}, []string{"sn"}},
		{[]string{"cn;", "sn"}, []string{"sn"}},
	}
	for _, tt := range tests {
		for _, paged := range []bool{false, true} {
			got := attrMap(baseEntry(t, c, aliceDN, tt.attrs, paged))
			want := map[string][]string{}
			for _, n := range tt.want {
				want[n] = full[n]
			}
			if !maps.EqualFunc(got, want, slices.Equal) {
				t.Errorf("%q (paged %v) returned %v, want %v", tt.attrs, paged, got, want)
			}
		}
	}
	for _, attr := range []string{"2.5.4.3", "commonName", "CN"} {
		if ok, err := c.Compare(aliceDN, attr, "alice liddell"); err != nil || !ok {
			t.Errorf("compare %s: %v %v", attr, ok, err)
		}
	}
	stillServes(t, addr)
}

// objectClass=X matches entries stored with a subclass of X, in searches
// and compares, and objectClass is returned as stored.
func TestSearchObjectClassSuperclasses(t *testing.T) {
	c := bound(t, startDemo(t))
	count := func(f string) []*ldap.Entry {
		t.Helper()
		res, err := c.SearchWithPaging(ldap.NewSearchRequest(demodir.Base, ldap.ScopeWholeSubtree, 0, 0, 0, false, f, []string{"objectClass"}, nil), 100)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		return res.Entries
	}
	people := count("(objectClass=inetOrgPerson)")
	if len(people) == 0 {
		t.Fatal("the demo has no inetOrgPerson")
	}
	for _, f := range []string{
		"(objectClass=person)",
		"(objectClass=organizationalPerson)",
		"(&(objectClass=inetOrgPerson)(objectClass=organizationalPerson))", // Keycloak
		"(&(objectClass=person)(uid=*))",
		"(|(objectClass=person)(uid=alice))",
	} {
		got := count(f)
		if len(got) != len(people) {
			t.Errorf("%s: %d entries, want the %d inetOrgPersons", f, len(got), len(people))
		}
		for _, e := range got {
			if oc := e.GetAttributeValues("objectClass"); !slices.Equal(oc, []string{"inetOrgPerson"}) {
				t.Errorf("%s: %s objectClass %v, want as stored", f, e.DN, oc)
			}
		}
	}
	if got := count("(&(objectClass=person)(uid=alice))"); len(got) != 1 {
		t.Errorf("indexed uid with a superclass: %d entries", len(got))
	}
	if got := count("(objectClass=groupOfNames)"); len(got) != 2 {
		t.Errorf("(objectClass=groupOfNames): %d entries, want engineering and leads", len(got))
	}
	for _, tt := range []struct {
		class string
		want  bool
	}{{"person", true}, {"organizationalPerson", true}, {"top", true}, {"inetOrgPerson", true}, {"groupOfNames", false}} {
		if ok, err := c.Compare(aliceDN, "objectClass", tt.class); err != nil || ok != tt.want {
			t.Errorf("compare objectClass=%s: %v %v, want %v", tt.class, ok, err, tt.want)
		}
	}
}

// AD range retrieval: member;range=lo-hi returns that slice of the values
// under a name carrying the real upper bound, or * for the last value.
func TestSearchRangeRetrieval(t *testing.T) {
	c := bound(t, startDemo(t))
	members := baseEntry(t, c, engineeringDN, []string{"member"}, false).GetAttributeValues("member")
	if len(members) != 3 {
		t.Fatalf("engineering has %d members, want 3", len(members))
	}
	groups := baseEntry(t, c, aliceDN, []string{"memberOf"}, false).GetAttributeValues("memberOf")
	if len(groups) != 2 {
		t.Fatalf("alice is in %d groups, want 2", len(groups))
	}
	tests := []struct {
		dn    string
		attrs []string
		want  map[string][]string
	}{
		{engineeringDN, []string{"member;range=0-1"}, map[string][]string{"member;range=0-1": members[:2]}},
		{engineeringDN, []string{"member;range=0-*"}, map[string][]string{"member;range=0-*": members}},
		{engineeringDN, []string{"member;range=1-10"}, map[string][]string{"member;range=1-*": members[1:]}},
		{engineeringDN, []string{"member;range=2-2"}, map[string][]string{"member;range=2-*": members[2:]}},
		{engineeringDN, []string{"member;range=1-1"}, map[string][]string{"member;range=1-1": members[1:2]}},
		{engineeringDN, []string{"MEMBER;Range=0-0"}, map[string][]string{"member;range=0-0": members[:1]}},
		// Past the end: the range and no values, as Samba answers.
		{engineeringDN, []string{"member;range=3-*"}, map[string][]string{"member;range=3-*": nil}},
		{engineeringDN, []string{"member;range=5-9"}, map[string][]string{"member;range=5-*": nil}},
		{engineeringDN, []string{"member;range=2-1"}, map[string][]string{}},
		{engineeringDN, []string{"member;range=x-1"}, map[string][]string{}},
		{engineeringDN, []string{"cn", "member;range=0-0"}, map[string][]string{"cn": {"engineering"}, "member;range=0-0": members[:1]}},
		// A range wins over the plain attribute, as in AD and Samba.
		{engineeringDN, []string{"member", "member;range=0-0"}, map[string][]string{"member;range=0-0": members[:1]}},
		{engineeringDN, []string{"member;range=1-*", "member;range=0-0"}, map[string][]string{"member;range=1-*": members[1:]}},
		{aliceDN, []string{"memberOf;range=1-*"}, map[string][]string{"memberOf;range=1-*": groups[1:]}},
		{aliceDN, []string{"memberOf;range=0-0", "uid"}, map[string][]string{"memberOf;range=0-0": groups[:1], "uid": {"alice"}}},
	}
	for _, tt := range tests {
		for _, paged := range []bool{false, true} {
			got := attrMap(baseEntry(t, c, tt.dn, tt.attrs, paged))
			if !maps.EqualFunc(got, tt.want, slices.Equal) {
				t.Errorf("%s %q (paged %v) returned %v, want %v", tt.dn, tt.attrs, paged, got, tt.want)
			}
		}
	}
	all := attrMap(baseEntry(t, c, engineeringDN, []string{"*", "member;range=0-1"}, false))
	if _, plain := all["member"]; plain || len(all["member;range=0-1"]) != 2 || len(all["cn"]) != 1 {
		t.Errorf("* with a member range returned %v", all)
	}
}

// The attribute list is refused beyond maxAttrDescs, with a clear code,
// and the connection keeps serving.
func TestSearchAttributeListCap(t *testing.T) {
	addr := startDemo(t)
	c := bound(t, addr)
	names := make([]string, maxAttrDescs+1)
	for i := range names {
		names[i] = fmt.Sprintf("attr%d", i)
	}
	names[0] = "cn"
	_, err := c.Search(ldap.NewSearchRequest(aliceDN, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", names, nil))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultAdminLimitExceeded) || !strings.Contains(err.Error(), fmt.Sprint(maxAttrDescs)) {
		t.Errorf("%d attributes: %v, want adminLimitExceeded naming the limit", len(names), err)
	}
	_, err = c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", names, nil))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultAdminLimitExceeded) {
		t.Errorf("%d attributes on the root DSE: %v, want adminLimitExceeded", len(names), err)
	}
	// The hostile case: 100,000 names, about 1 MB.
	huge := make([]string, 100000)
	for i := range huge {
		huge[i] = fmt.Sprintf("attribute%d", i)
	}
	start := time.Now()
	_, err = c.Search(ldap.NewSearchRequest(aliceDN, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", huge, nil))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultAdminLimitExceeded) {
		t.Errorf("%d attributes: %v, want adminLimitExceeded", len(huge), err)
	}
	t.Logf("100,000 attribute names refused in %v", time.Since(start))
	if got := attrMap(baseEntry(t, c, aliceDN, names[:maxAttrDescs], false)); len(got) != 1 || len(got["cn"]) != 1 {
		t.Errorf("%d attributes: %v, want cn", maxAttrDescs, got)
	}
	stillServes(t, addr)
}

// The work for an attribute list is linear in its length: twenty times the
// names must cost far less than the 400 times a quadratic step costs.
func TestAttributeListCostIsLinear(t *testing.T) {
	f, err := filter.Parse("(&(objectClass=person)(mail=x))", filter.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	stored := []string{"objectClass", "cn", "sn", "mail", "uid", "givenName", "memberOf", "cn;lang-de", "member"}
	cost := func(n int) time.Duration {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("attribute%d;x-opt", i)
		}
		names[n/2] = "member;range=0-1"
		best := time.Duration(1 << 62)
		for range 5 {
			start := time.Now()
			req, serr := parseAttrRequest(names, n)
			if serr != nil {
				t.Fatal(serr.msg)
			}
			q := &query{filter: f, attrs: req}
			keep := q.projection()
			for range 100 {
				for _, s := range stored {
					keep(s)
					req.pick(s)
				}
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	small, large := cost(2000), cost(40000)
	t.Logf("2,000 names: %v; 40,000: %v", small, large)
	if ratio := float64(large) / float64(small); ratio > 100 {
		t.Errorf("20x the attribute names cost %.0fx the time (%v vs %v): not linear", ratio, large, small)
	}
}

// Deciding whether to decode and return a stored attribute is on the
// per-entry path: it must not allocate.
func TestAttributePickDoesNotAllocate(t *testing.T) {
	f, err := filter.Parse("(mail=x)", filter.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	req, serr := parseAttrRequest([]string{"commonName", "member;range=0-1", "givenName;x-a"}, maxAttrDescs)
	if serr != nil {
		t.Fatal(serr.msg)
	}
	keep := (&query{filter: f, attrs: req}).projection()
	n := testing.AllocsPerRun(100, func() {
		for _, s := range []string{"CN", "givenName;X-A", "member", "modifyTimestamp", "sn"} {
			keep(s)
			req.pick(s)
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per entry", n)
	}
}
