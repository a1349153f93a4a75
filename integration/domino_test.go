package integration

import (
	"fmt"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/cache"
	dirsync "github.com/dirgate/dirgate/sync"
)

// dominoConnector describes a Domino emulator instance (prefix P, e.g.
// DIRGATE_DOM) as a connector, over LDAPS with strict verification.
func dominoConnector(t *testing.T, e env, p, name string, extra ...string) string {
	t.Helper()
	t.Setenv("DIRGATE_IT_"+name+"_PW", e.Get(t, p+"_SYNC_PW"))
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n    type: domino\n    host: %s\n    port: %s\n    encryption: strict\n    ca_file: %s\n",
		name, e.Get(t, p+"_HOST"), e.Get(t, p+"_LDAPS_PORT"), e.Get(t, p+"_CA"))
	fmt.Fprintf(&b, "    bind_dn: %q\n    bind_password_env: DIRGATE_IT_%s_PW\n    root_dn: \"\"\n    page_size: 100\n", e.Get(t, p+"_SYNC_DN"), name)
	for _, x := range extra {
		fmt.Fprintf(&b, "    %s\n", x)
	}
	return b.String()
}

func upstreamCount(t *testing.T, c *ldap.Conn, base, filter string) int {
	t.Helper()
	res, err := c.SearchWithPaging(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, filter, []string{"1.1"}, nil), 200)
	if err != nil {
		t.Fatalf("upstream count %s: %v", filter, err)
	}
	return len(res.Entries)
}

func TestDomino(t *testing.T) {
	e := loadEnv(t)
	if _, ok := e["DIRGATE_DOM_URL"]; !ok {
		t.Fatal("the test environment has no Domino emulator (scripts/testenv/up.sh)")
	}
	admin, err := ldap.DialURL(e.Get(t, "DIRGATE_DOM_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.Bind(e.Get(t, "DIRGATE_DOM_ADMIN_DN"), e.Get(t, "DIRGATE_DOM_ADMIN_PW")); err != nil {
		t.Fatal(err)
	}
	eligiblePeople := upstreamCount(t, admin, "", "(&(objectClass=dominoPerson)(!(availableForDirSync=0)))")
	eligibleGroups := upstreamCount(t, admin, "", "(&(objectClass=dominoGroup)(!(availableForDirSync=0)))")
	allPeople := upstreamCount(t, admin, "", "(objectClass=dominoPerson)")

	gw := startGateway(t, parseConfig(t, dominoConnector(t, e, "DIRGATE_DOM", "notes",
		"domino:", "  honor_available_for_dirsync: true", "  deny_groups: [Terminated Users]")))
	res, err := gw.sync(t, "notes", dirsync.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var users, groups int
	_ = gw.store.View(t.Context(), func(v *cache.View) error { users, groups, _ = v.Counts("notes"); return nil })
	if users != eligiblePeople || groups != eligibleGroups {
		t.Fatalf("synced %d people and %d groups, want %d and %d (availableForDirSync=0 excluded); run %+v",
			users, groups, eligiblePeople, eligibleGroups, res.Run)
	}
	if eligiblePeople == allPeople {
		t.Fatal("the emulator has no availableForDirSync=0 person: the test proves nothing")
	}

	pw := e.Get(t, "DIRGATE_DOM_USER_PW")
	c := gw.dial(t)
	for _, login := range []string{e.Get(t, "DIRGATE_DOM_SPECIAL_USER_DN"), e.Get(t, "DIRGATE_DOM_PLUS_USER_DN"), e.Get(t, "DIRGATE_DOM_UTF8_USER_DN"), e.Get(t, "DIRGATE_DOM_USER_DN")} {
		if err := c.Bind(login, pw); err != nil {
			t.Errorf("bind %q: %v", login, err)
		}
	}
	// The same user by mail and by short name (uid).
	var mail, uid string
	_ = gw.store.View(t.Context(), func(v *cache.View) error {
		en, err := v.ByDN(e.Get(t, "DIRGATE_DOM_USER_DN"))
		if err == nil {
			mail, uid = en.First("mail"), en.First("uid")
		}
		return err
	})
	for _, login := range []string{mail, strings.ToUpper(mail), uid} {
		if err := gw.dial(t).Bind(login, pw); err != nil {
			t.Errorf("bind by %q: %v", login, err)
		}
	}
	// A deny-list member is disabled; a person excluded from sync is unknown.
	for _, dnStr := range []string{e.Get(t, "DIRGATE_DOM_DENIED_USER_DN"), e.Get(t, "DIRGATE_DOM_NOSYNC_USER_DN")} {
		if err := gw.dial(t).Bind(dnStr, pw); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			t.Errorf("bind %q: %v, want invalidCredentials", dnStr, err)
		}
	}
	_ = gw.store.View(t.Context(), func(v *cache.View) error {
		en, err := v.ByDN(e.Get(t, "DIRGATE_DOM_DENIED_USER_DN"))
		if err != nil || !en.Disabled {
			t.Errorf("deny-list member: %v disabled=%v", err, en != nil && en.Disabled)
		}
		if _, err := v.ByDN(e.Get(t, "DIRGATE_DOM_NOSYNC_USER_DN")); err == nil {
			t.Error("an availableForDirSync=0 person was synced")
		}
		return nil
	})

	// Searches from the null base see people and the root-level groups.
	sc := gw.dialService(t)
	got, err := search(t, sc, "", ldap.ScopeWholeSubtree, "(objectClass=dominoGroup)", []string{"cn"})
	if err != nil || len(got) != eligibleGroups {
		t.Fatalf("groups from the null base: %d, %v", len(got), err)
	}
	got, err = search(t, sc, "O=Acme", ldap.ScopeWholeSubtree, "(objectClass=dominoGroup)", nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("groups under O=Acme: %d, %v (Domino groups are flat, at the root)", len(got), err)
	}
	got, err = search(t, sc, "", ldap.ScopeWholeSubtree, "(memberOf="+e.Get(t, "DIRGATE_DOM_NESTED_GROUP_DN")+")", []string{"cn", "memberOf"})
	if err != nil || len(got) == 0 {
		t.Fatalf("members of the nested group: %d, %v", len(got), err)
	}
	want, err := search(t, admin, "", ldap.ScopeWholeSubtree,
		"(&(objectClass=dominoPerson)(!(availableForDirSync=0))(cn=*ü*))", []string{"cn", "mail", "uid"})
	if err != nil {
		t.Fatal(err)
	}
	got, err = search(t, sc, "", ldap.ScopeWholeSubtree, "(&(objectClass=dominoPerson)(cn=*ü*))", []string{"cn", "mail", "uid"})
	if err != nil || reduce(t, want).diff(reduce(t, got)) != "" {
		t.Fatalf("UTF-8 substring search differs from the upstream: %v\n%s", err, reduce(t, want).diff(reduce(t, got)))
	}

	// Not honouring the flag syncs everyone.
	gw2 := startGateway(t, parseConfig(t, dominoConnector(t, e, "DIRGATE_DOM", "notes")))
	if _, err := gw2.sync(t, "notes", dirsync.Options{}); err != nil {
		t.Fatal(err)
	}
	_ = gw2.store.View(t.Context(), func(v *cache.View) error { users, _, _ = v.Counts("notes"); return nil })
	if users != allPeople {
		t.Fatalf("without honor_available_for_dirsync: %d people, want %d", users, allPeople)
	}
}

// TestDominoWithoutPaging reads a server that refuses the paged results
// control unpaged, and fails clearly (changing nothing) when its size limit
// cuts the listing short.
func TestDominoWithoutPaging(t *testing.T) {
	e := loadEnv(t)
	gw := startGateway(t, parseConfig(t, dominoConnector(t, e, "DIRGATE_DOM2", "nopaging")+dominoConnector(t, e, "DIRGATE_DOM3", "limited")))
	res, err := gw.sync(t, "nopaging", dirsync.Options{})
	if err != nil || res.Added < 50 {
		t.Fatalf("unpaged read: %+v %v", res.Run, err)
	}
	_, err = gw.sync(t, "limited", dirsync.Options{})
	if err == nil || !strings.Contains(err.Error(), "supports no paging") || !strings.Contains(err.Error(), "size limit") {
		t.Fatalf("size-limited server without paging: %v", err)
	}
	var n int
	_ = gw.store.View(t.Context(), func(v *cache.View) error { n, _, _ = v.Counts("limited"); return nil })
	if n != 0 {
		t.Fatalf("a failed listing was applied: %d entries", n)
	}
}
