package integration

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/ldapsource"
)

// syncCorp syncs the gateway's connector "corp" and returns a filter for
// what it keeps: its user filter or its group filter.
func syncCorp(t *testing.T, gw *gateway, opts ...ldapsource.Option) string {
	t.Helper()
	if _, err := gw.sync(t, "corp", dirsync.Options{}, opts...); err != nil {
		t.Fatal(err)
	}
	c, _ := gw.cfg.Connector("corp")
	return "(|" + c.UserFilter + c.GroupFilter + ")"
}

// sameAnswers runs each filter on dirgate and, restricted to what the
// connector syncs (scope), on the upstream, and reports any difference in
// entries and attributes.
func sameAnswers(t *testing.T, up, gw *ldap.Conn, base, scope string, attrs []string, filters ...string) {
	for _, f := range filters {
		t.Run(f+" "+strings.Join(attrs, " "), func(t *testing.T) {
			want, err := search(t, up, base, ldap.ScopeWholeSubtree, "(&"+f+scope+")", attrs)
			if err != nil {
				t.Fatalf("upstream: %v", err)
			}
			got, err := search(t, gw, base, ldap.ScopeWholeSubtree, f, attrs)
			if err != nil {
				t.Fatalf("dirgate: %v", err)
			}
			if len(want) == 0 {
				t.Errorf("matched nothing upstream: it proves little")
			}
			if d := reduce(t, want).diff(reduce(t, got)); d != "" {
				t.Errorf("upstream returned %d entries, dirgate %d:\n%s", len(want), len(got), d)
			}
		})
	}
}

// objectClass assertions match superclasses of the stored classes as
// slapd does (Keycloak's default user filter among them), and attributes
// requested by OID come back as slapd returns them.
func TestOpenLDAPObjectClassSemantics(t *testing.T) {
	e := loadEnv(t)
	base := e.Get(t, "DIRGATE_OL_BASE")
	gw := startGateway(t, parseConfig(t, connectorYAML(t, e, "corp", e.Get(t, "DIRGATE_OL_HOST"), "", "acknowledge_disabled_accounts: true")))
	scope := syncCorp(t, gw)
	up, gc := dialUpstream(t, e), gw.dialService(t)
	sameAnswers(t, up, gc, base, scope, []string{"objectClass"},
		"(objectClass=person)",
		"(objectClass=organizationalPerson)",
		"(&(objectClass=inetOrgPerson)(objectClass=organizationalPerson))",
		"(&(uid=user00042)(objectClass=inetOrgPerson)(objectClass=organizationalPerson))",
		"(objectClass=top)",
		"(!(objectClass=person))",
		"(objectClass:=person)",
	)
	for _, attrs := range [][]string{{"2.5.4.3"}, {"commonName", "0.9.2342.19200300.100.1.3"}, {"2.5.4.4", "2.5.4.0"}} {
		sameAnswers(t, up, gc, base, scope, attrs, "(uid=user0004*)")
	}
	dnStr := "uid=user00042,ou=people," + base
	for _, class := range []string{"person", "organizationalPerson", "inetOrgPerson", "groupOfNames"} {
		want, err := up.Compare(dnStr, "objectClass", class)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := gc.Compare(dnStr, "objectClass", class); err != nil || got != want {
			t.Errorf("compare objectClass=%s: dirgate %v (%v), slapd %v", class, got, err, want)
		}
	}
}

// AD's objectCategory short names and range retrieval answer as the Samba
// AD DC does.
func TestADCategoryAndRange(t *testing.T) {
	e := loadAD(t)
	base := e.Get(t, "DIRGATE_AD_BASE")
	gw := startGateway(t, parseConfig(t, adConnector(t, e, "corp", "SYNC")))
	scope := syncCorp(t, gw, ldapsource.WithMemberRangeStep(500))
	up, gc := adAdmin(t, e), gw.dialService(t)
	sameAnswers(t, up, gc, base, scope, []string{"1.1"},
		"(&(objectCategory=person)(objectClass=user))",
		"(objectCategory=group)",
		"(objectCategory=Person)",
		"(objectCategory=user)",
		"(objectCategory=CN=Person,CN=Schema,CN=Configuration,"+base+")",
		"(&(objectCategory=person)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))",
		"(&(objectCategory=group)(cn=G-*))",
		"(!(objectCategory=group))",
	)

	big := e.Get(t, "DIRGATE_AD_G_BIG_DN")
	read := func(c *ldap.Conn, attr string) map[string][]string {
		t.Helper()
		res, err := c.Search(ldap.NewSearchRequest(big, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{attr}, nil))
		if err != nil || len(res.Entries) != 1 {
			t.Fatalf("read %s: %v", attr, err)
		}
		m := map[string][]string{}
		for _, a := range res.Entries[0].Attributes {
			m[a.Name] = a.Values
		}
		return m
	}
	for _, attr := range []string{"member;range=0-*", "member;range=0-1", "member;range=1500-*", "member;range=1599-2000",
		"member;range=10-19", "member;range=1600-*", "MEMBER;range=0-0"} {
		want, got := read(up, attr), read(gc, attr)
		for name, w := range want {
			g, ok := got[name]
			if !ok || len(g) != len(w) {
				t.Errorf("%s: Samba returns %s with %d values, dirgate %v", attr, name, len(w), keys(got))
				continue
			}
			// Both list the values in the order they were added; compare
			// as sets in case they do not.
			w, g = slices.Sorted(slices.Values(w)), slices.Sorted(slices.Values(g))
			if !slices.Equal(w, g) {
				t.Errorf("%s: dirgate returns other values than Samba", attr)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: Samba returns %v, dirgate %v", attr, keys(want), keys(got))
		}
	}
}

func keys(m map[string][]string) []string { return slices.Sorted(maps.Keys(m)) }
