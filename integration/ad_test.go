package integration

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/cache"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/ldapsource"
)

// adConnector describes the Samba AD DC as a connector (LDAPS, strict),
// syncing as the account given by prefix (SYNC or NODIRSYNC).
func adConnector(t *testing.T, e env, name, account string, extra ...string) string {
	t.Helper()
	t.Setenv("DIRGATE_IT_AD_"+account, e.Get(t, "DIRGATE_AD_"+account+"_PW"))
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n    type: ad\n    host: %s\n    port: %s\n    encryption: strict\n    ca_file: %s\n",
		name, e.Get(t, "DIRGATE_AD_HOST"), e.Get(t, "DIRGATE_AD_LDAPS_PORT"), e.Get(t, "DIRGATE_AD_CA"))
	fmt.Fprintf(&b, "    bind_dn: %q\n    bind_password_env: DIRGATE_IT_AD_%s\n    root_dn: %q\n    page_size: 500\n",
		e.Get(t, "DIRGATE_AD_"+account+"_DN"), account, e.Get(t, "DIRGATE_AD_BASE"))
	b.WriteString("    safety: {max_deletes: 100, max_delete_percent: 50}\n")
	for _, x := range extra {
		fmt.Fprintf(&b, "    %s\n", x)
	}
	return b.String()
}

func adAdmin(t *testing.T, e env) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(e.Get(t, "DIRGATE_AD_URL"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Bind(e.Get(t, "DIRGATE_AD_ADMIN_DN"), e.Get(t, "DIRGATE_AD_ADMIN_PW")); err != nil {
		t.Fatal(err)
	}
	return c
}

func loadAD(t *testing.T) env {
	e := loadEnv(t)
	if _, ok := e["DIRGATE_AD_URL"]; !ok {
		t.Skip("no Samba AD DC in the test environment (DIRGATE_SKIP_SAMBA=1)")
	}
	return e
}

func TestADFullSync(t *testing.T) {
	e := loadAD(t)
	base := e.Get(t, "DIRGATE_AD_BASE")
	admin := adAdmin(t, e)
	wantUsers := upstreamCount(t, admin, base, "(&(objectCategory=person)(objectClass=user))")
	wantGroups := upstreamCount(t, admin, base, "(objectClass=group)")

	gw := startGateway(t, parseConfig(t, adConnector(t, e, "corp", "SYNC")))
	res, err := gw.sync(t, "corp", dirsync.Options{}, ldapsource.WithMemberRangeStep(500))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("AD full sync: %d entries in %v", res.Read, res.Duration)
	var users, groups int
	_ = gw.store.View(t.Context(), func(v *cache.View) error { users, groups, _ = v.Counts("corp"); return nil })
	if users != wantUsers || groups != wantGroups {
		t.Fatalf("synced %d users and %d groups, want %d and %d", users, groups, wantUsers, wantGroups)
	}
	err = gw.store.View(t.Context(), func(v *cache.View) error {
		big, err := v.ByDN(e.Get(t, "DIRGATE_AD_G_BIG_DN"))
		if err != nil {
			return err
		}
		ids, _ := v.MemberIDs(big)
		if len(big.Members) != 1600 || len(ids) != 1600 {
			return fmt.Errorf("G-Big read in ranges of 500: %d member values, %d resolved; want 1600", len(big.Members), len(ids))
		}
		if len(big.ID) != 36 || strings.Count(big.ID, "-") != 4 {
			return fmt.Errorf("objectGUID ID %q is not in GUID form", big.ID)
		}
		for _, a := range big.Attrs {
			if strings.Contains(a.Name, ";range=") {
				return fmt.Errorf("ranged attribute %q cached", a.Name)
			}
		}
		u, err := v.ByDN(e.Get(t, "DIRGATE_AD_DISABLED_DN"))
		if err != nil || !u.Disabled {
			return fmt.Errorf("UAC-disabled user: %v disabled=%v", err, u != nil && u.Disabled)
		}
		got, _ := v.ByAddress("alias.user00001@example.test")
		if len(got) != 1 || got[0].First("sAMAccountName") != "user00001" {
			return fmt.Errorf("proxyAddresses alias: %v", got)
		}
		if got[0].Addresses[0] != "user00001@example.test" {
			return fmt.Errorf("primary address (SMTP:) must come first: %v", got[0].Addresses)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	pw := e.Get(t, "DIRGATE_AD_USER_PW")
	binds := []struct {
		login, password, wantMsg string
		ok                       bool
	}{
		{"user00001@example.test", pw, "", true},
		{"alias.user00001@example.test", pw, "", true},
		{`EXAMPLE\user00002`, pw, "", true},
		{"user00003", pw, "", true},
		{e.Get(t, "DIRGATE_AD_JDOE_DN"), pw, "", true},
		{e.Get(t, "DIRGATE_AD_HASHUSER_DN"), pw, "", true},
		{e.Get(t, "DIRGATE_AD_KBUSER_UPN"), pw, "", true},
		{e.Get(t, "DIRGATE_AD_JMUELLER_UPN"), pw, "", true},
		{"user00001@example.test", "wrong", "invalid credentials", false},
		{e.Get(t, "DIRGATE_AD_MUSTCHANGE_UPN"), pw, "must be changed", false},
		{e.Get(t, "DIRGATE_AD_EXPIRED_UPN"), pw, "account has expired", false},
		{e.Get(t, "DIRGATE_AD_DISABLED_UPN"), pw, "invalid credentials", false},
		{"shared@example.test", pw, "invalid credentials", false}, // held by two accounts
	}
	for _, b := range binds {
		err := gw.dial(t).Bind(b.login, b.password)
		if b.ok {
			if err != nil {
				t.Errorf("bind %q: %v", b.login, err)
			}
			continue
		}
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) || !strings.Contains(err.Error(), b.wantMsg) {
			t.Errorf("bind %q: %v, want 49 with %q", b.login, err, b.wantMsg)
		}
	}

	// Entries with special characters in their DNs answer searches like AD.
	sc := gw.dialService(t)
	for _, who := range []string{"JDOE", "RDSALES", "HASHUSER", "JMUELLER", "KBUSER"} {
		dnStr := e.Get(t, "DIRGATE_AD_"+who+"_DN")
		for _, q := range []struct {
			base   string
			scope  int
			filter string
		}{
			{dnStr, ldap.ScopeBaseObject, "(objectClass=*)"},
			{base, ldap.ScopeWholeSubtree, "(userPrincipalName=" + ldap.EscapeFilter(e.Get(t, "DIRGATE_AD_"+who+"_UPN")) + ")"},
			{base, ldap.ScopeWholeSubtree, "(distinguishedName=" + ldap.EscapeFilter(dnStr) + ")"},
		} {
			attrs := []string{"cn", "sAMAccountName", "mail", "proxyAddresses", "memberOf", "distinguishedName"}
			want, err := search(t, admin, q.base, q.scope, q.filter, attrs)
			if err != nil {
				t.Fatalf("AD %s: %v", q.filter, err)
			}
			got, err := search(t, sc, q.base, q.scope, q.filter, attrs)
			if err != nil {
				t.Fatalf("dirgate %s: %v", q.filter, err)
			}
			if d := reduce(t, want).diff(reduce(t, got)); d != "" || len(want) != 1 {
				t.Errorf("%s base %q: AD %d entries, dirgate %d:\n%s", q.filter, q.base, len(want), len(got), d)
			}
		}
	}

	// memberOf from AD is served as AD computed it; IN_CHAIN gives the
	// transitive groups.
	got, err := search(t, sc, base, ldap.ScopeWholeSubtree,
		"(memberOf:1.2.840.113556.1.4.1941:="+e.Get(t, "DIRGATE_AD_G_TOP_DN")+")", []string{"sAMAccountName"})
	if err != nil {
		t.Fatal(err)
	}
	want, err := search(t, admin, base, ldap.ScopeWholeSubtree,
		"(memberOf:1.2.840.113556.1.4.1941:="+e.Get(t, "DIRGATE_AD_G_TOP_DN")+")", []string{"sAMAccountName"})
	if err != nil {
		t.Fatal(err)
	}
	if d := reduce(t, want).diff(reduce(t, got)); d != "" || len(want) < 4 {
		t.Fatalf("transitive members of G-Top differ from AD (%d entries):\n%s", len(want), d)
	}
}

// TestADIncremental changes the directory between two runs and checks that
// the incremental run (DirSync, and uSNChanged polling for an account
// without the replication right) reads only the changes.
func TestADIncremental(t *testing.T) {
	e := loadAD(t)
	base := e.Get(t, "DIRGATE_AD_BASE")
	people := e.Get(t, "DIRGATE_AD_PEOPLE_DN")
	for _, m := range []struct {
		account, method string
		opts            []ldapsource.Option
	}{{"SYNC", "dirsync", nil}, {"NODIRSYNC", "usn", []ldapsource.Option{ldapsource.WithoutDirSync()}}} {
		t.Run(m.method, func(t *testing.T) {
			admin := adAdmin(t, e)
			name := "it-" + m.method
			cleanup := func() {
				for _, d := range []string{"CN=" + name + "-new", "CN=" + name + "-gone", "CN=" + name + "-moved", "CN=" + name + "-renamed"} {
					_ = admin.Del(ldap.NewDelRequest(d+","+people, nil))
				}
			}
			cleanup()
			t.Cleanup(cleanup)
			addUser := func(cn string) {
				req := ldap.NewAddRequest("CN="+cn+","+people, nil)
				req.Attribute("objectClass", []string{"user"})
				req.Attribute("sAMAccountName", []string{cn})
				req.Attribute("userPrincipalName", []string{cn + "@example.test"})
				req.Attribute("mail", []string{cn + "@example.test"})
				req.Attribute("userAccountControl", []string{"544"})
				if err := admin.Add(req); err != nil {
					t.Fatalf("add %s: %v", cn, err)
				}
			}
			addUser(name + "-gone")
			addUser(name + "-moved")
			addUser(name + "-relocated")
			t.Cleanup(func() {
				_ = admin.Del(ldap.NewDelRequest("CN="+name+"-relocated,"+e.Get(t, "DIRGATE_AD_SPECIAL_OU_DN"), nil))
				_ = admin.Del(ldap.NewDelRequest("CN="+name+"-relocated,"+people, nil))
			})

			gw := startGateway(t, parseConfig(t, adConnector(t, e, "corp", m.account)))
			full, err := gw.sync(t, "corp", dirsync.Options{}, m.opts...)
			if err != nil {
				t.Fatal(err)
			}
			idOf := func(dnStr string) (string, bool) {
				var id string
				var disabled bool
				_ = gw.store.View(t.Context(), func(v *cache.View) error {
					if en, err := v.ByDN(dnStr); err == nil {
						id, disabled = en.ID, en.Disabled
					}
					return nil
				})
				return id, disabled
			}
			movedID, _ := idOf("CN=" + name + "-moved," + people)
			relocatedID, _ := idOf("CN=" + name + "-relocated," + people)

			addUser(name + "-new")
			if err := admin.Del(ldap.NewDelRequest("CN="+name+"-gone,"+people, nil)); err != nil {
				t.Fatal(err)
			}
			if err := admin.ModifyDN(ldap.NewModifyDNRequest("CN="+name+"-moved,"+people, "CN="+name+"-renamed", true, "")); err != nil {
				t.Fatal(err)
			}
			// A move into the OU whose name has special characters.
			if err := admin.ModifyDN(ldap.NewModifyDNRequest("CN="+name+"-relocated,"+people, "CN="+name+"-relocated", true,
				e.Get(t, "DIRGATE_AD_SPECIAL_OU_DN"))); err != nil {
				t.Fatal(err)
			}
			u7 := "CN=Test User 00007," + people
			mod := ldap.NewModifyRequest(u7, nil)
			mod.Replace("userAccountControl", []string{"514"})
			mod.Replace("description", []string{"changed by " + name})
			if err := admin.Modify(mod); err != nil {
				t.Fatal(err)
			}
			grp := ldap.NewModifyRequest(e.Get(t, "DIRGATE_AD_G_LEAF_DN"), nil)
			grp.Add("member", []string{"CN=" + name + "-new," + people})
			if err := admin.Modify(grp); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				m := ldap.NewModifyRequest(u7, nil)
				m.Replace("userAccountControl", []string{"512"})
				m.Delete("description", nil)
				_ = admin.Modify(m)
			})

			res, err := gw.sync(t, "corp", dirsync.Options{}, m.opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: full run read %d entries in %v; incremental read %d in %v (%d added, %d updated, %d deleted)",
				m.method, full.Read, full.Duration, res.Read, res.Duration, res.Added, res.Updated, res.Deleted)
			if res.Mode != dirsync.ModeIncremental || res.Method != m.method {
				t.Fatalf("second run: mode %q via %q", res.Mode, res.Method)
			}
			if res.Read > 20 || res.Read*20 > full.Read {
				t.Errorf("the incremental run read %d entries (full: %d): not proportional to the changes", res.Read, full.Read)
			}
			if res.Added != 1 || res.Deleted != 1 || res.Updated < 4 {
				t.Errorf("counts: %d added, %d updated, %d deleted; want 1, >=4 (renamed, moved, disabled, group), 1", res.Added, res.Updated, res.Deleted)
			}
			if id, _ := idOf("CN=" + name + "-relocated," + e.Get(t, "DIRGATE_AD_SPECIAL_OU_DN")); id != relocatedID || id == "" {
				t.Errorf("the moved user has ID %q, want %q", id, relocatedID)
			}
			if id, _ := idOf("CN=" + name + "-renamed," + people); id != movedID || id == "" {
				t.Errorf("the renamed user has ID %q, want %q", id, movedID)
			}
			if id, _ := idOf("CN=" + name + "-gone," + people); id != "" {
				t.Error("the deleted user is still served")
			}
			if _, disabled := idOf(u7); !disabled {
				t.Error("the disabled user is not marked disabled")
			}
			got, err := search(t, gw.dialService(t), base, ldap.ScopeWholeSubtree, "(sAMAccountName="+name+"-new)", []string{"memberOf"})
			if err != nil || len(got) != 1 || !strings.Contains(strings.ToLower(strings.Join(got[0].GetAttributeValues("memberOf"), ";")), "g-leaf") {
				t.Errorf("the new member's memberOf: %v %v", got, err)
			}
		})
	}
}

// TestADLockout: after the lockout threshold, AD answers 775 even to the
// right password; dirgate reports it as a lockout in its log and as invalid
// credentials to the client.
func TestADLockout(t *testing.T) {
	e := loadAD(t)
	threshold, _ := strconv.Atoi(e.Get(t, "DIRGATE_AD_LOCKOUT_THRESHOLD"))
	if threshold == 0 {
		t.Skip("the test DC has no lockout threshold")
	}
	// dirgate's own throttle would lock the account first (that is its
	// job); raise it to reach AD's lockout.
	cfg := parseConfig(t, adConnector(t, e, "corp", "SYNC"), "auth: {throttle: {account_failures: 100, base_delay: 0s}}")
	gw := startGateway(t, cfg)
	if _, err := gw.sync(t, "corp", dirsync.Options{}); err != nil {
		t.Fatal(err)
	}
	auth, err := authn.New(cfg, gw.store, gw.store.States(), gw.log)
	if err != nil {
		t.Fatal(err)
	}
	defer auth.Close()
	upn := e.Get(t, "DIRGATE_AD_LOCKME_UPN")
	login := func(password string) error {
		_, err := auth.Login(t.Context(), authn.Attempt{Login: upn, Password: password, Protocol: "ldap"})
		return err
	}
	for range threshold {
		err := login("wrong-password")
		if r := authn.ReasonOf(err); r == authn.ReasonLocked {
			break // still locked from a run less than a lockout duration ago
		} else if r != authn.ReasonInvalidCredentials {
			t.Fatalf("wrong password: %v", err)
		}
	}
	err = login(e.Get(t, "DIRGATE_AD_USER_PW"))
	if authn.ReasonOf(err) != authn.ReasonLocked {
		t.Fatalf("after %d failures: %v, want account_locked (data 775)", threshold, err)
	}
	if err := gw.dial(t).Bind(upn, e.Get(t, "DIRGATE_AD_USER_PW")); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) ||
		strings.Contains(err.Error(), "lock") {
		t.Fatalf("a client must see plain invalid credentials: %v", err)
	}
}
