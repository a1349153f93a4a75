package integration

import (
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/dn"
	dirsync "github.com/dirgate/dirgate/sync"
)

// result is a search answer reduced to what must agree between slapd and
// dirgate: DNs (normalised) and attribute values (DN-valued ones
// normalised), independent of order and attribute-name case.
type result map[string]map[string][]string

var dnValued = map[string]bool{"member": true, "memberof": true, "uniquemember": true}

func reduce(t testing.TB, entries []*ldap.Entry) result {
	t.Helper()
	out := result{}
	for _, e := range entries {
		k, err := dn.Key(e.DN)
		if err != nil {
			t.Fatalf("unparseable DN %q: %v", e.DN, err)
		}
		attrs := map[string][]string{}
		for _, a := range e.Attributes {
			name := strings.ToLower(a.Name)
			vals := append([]string(nil), a.Values...)
			if dnValued[name] {
				for i, v := range vals {
					if vk, err := dn.Key(v); err == nil {
						vals[i] = vk
					}
				}
			}
			sort.Strings(vals)
			attrs[name] = vals
		}
		out[k] = attrs
	}
	return out
}

func (r result) diff(other result) string {
	var b strings.Builder
	n := 0
	for k, a := range r {
		o, ok := other[k]
		if !ok {
			if n++; n <= 5 {
				fmt.Fprintf(&b, "  only in slapd: %q\n", k)
			}
			continue
		}
		if fmt.Sprint(a) != fmt.Sprint(o) {
			if n++; n <= 5 {
				fmt.Fprintf(&b, "  %q differs:\n    slapd:   %v\n    dirgate: %v\n", k, a, o)
			}
		}
	}
	for k := range other {
		if _, ok := r[k]; !ok {
			if n++; n <= 5 {
				fmt.Fprintf(&b, "  only in dirgate: %q\n", k)
			}
		}
	}
	if n > 5 {
		fmt.Fprintf(&b, "  ... %d differences in all\n", n)
	}
	return b.String()
}

func search(t testing.TB, c *ldap.Conn, base string, scope int, filter string, attrs []string) ([]*ldap.Entry, error) {
	t.Helper()
	req := ldap.NewSearchRequest(base, scope, ldap.NeverDerefAliases, 0, 0, false, filter, attrs, nil)
	res, err := c.SearchWithPaging(req, 400)
	if err != nil {
		return nil, err
	}
	return res.Entries, nil
}

func TestOpenLDAPEndToEnd(t *testing.T) {
	e := loadEnv(t)
	users, _ := strconv.Atoi(e.Get(t, "DIRGATE_OL_USERS"))
	groups, _ := strconv.Atoi(e.Get(t, "DIRGATE_OL_GROUPS"))
	base := e.Get(t, "DIRGATE_OL_BASE")
	cfg := parseConfig(t, connectorYAML(t, e, "corp", e.Get(t, "DIRGATE_OL_HOST"), "", "acknowledge_disabled_accounts: true"))
	gw := startGateway(t, cfg)

	start := time.Now()
	res, err := gw.sync(t, "corp", dirsync.Options{Trigger: "test"})
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	wantEntries := users + 5 + min(groups, users) + 5
	t.Logf("full sync of %d entries in %v", res.Read, time.Since(start))
	if res.Read != wantEntries || res.Added != wantEntries || res.Deleted != 0 {
		t.Fatalf("first sync: read %d added %d deleted %d, want %d read and added", res.Read, res.Added, res.Deleted, wantEntries)
	}
	res, err = gw.sync(t, "corp", dirsync.Options{Trigger: "test", Mode: dirsync.ModeFull})
	if err != nil || res.Unchanged != wantEntries || res.Added+res.Updated+res.Deleted != 0 {
		t.Fatalf("second full sync must change nothing: %+v, %v", res.Run, err)
	}
	res, err = gw.sync(t, "corp", dirsync.Options{Trigger: "test"})
	if err != nil || res.Mode != dirsync.ModeIncremental || res.Read != 0 || res.Added+res.Updated+res.Deleted != 0 {
		t.Fatalf("an incremental sync with no upstream change must read and change nothing: %+v, %v", res.Run, err)
	}

	up := dialUpstream(t, e)
	gc := gw.dialService(t)
	people := "ou=people," + base
	userAttrs := []string{"cn", "sn", "mail", "uid", "objectClass", "employeeNumber", "memberOf", "entryUUID"}
	cases := []struct {
		name   string
		base   string
		scope  int
		filter string
		attrs  []string
	}{
		{"all users", base, ldap.ScopeWholeSubtree, "(objectClass=inetOrgPerson)", []string{"uid"}},
		{"all groups with members", base, ldap.ScopeWholeSubtree, "(objectClass=groupOfNames)", []string{"cn", "member"}},
		{"uid equality", base, ldap.ScopeWholeSubtree, "(uid=user00042)", userAttrs},
		{"mail, other case", base, ldap.ScopeWholeSubtree, "(mail=USER00042@Example.TEST)", userAttrs},
		{"mail alias substring", base, ldap.ScopeWholeSubtree, "(mail=alias.user001*)", []string{"mail"}},
		{"substring with any parts", base, ldap.ScopeWholeSubtree, "(cn=*User*4*2)", []string{"cn"}},
		{"final substring", people, ldap.ScopeWholeSubtree, "(mail=*@other.test)", []string{"mail"}},
		{"and/or/not", base, ldap.ScopeWholeSubtree, "(&(objectClass=inetOrgPerson)(|(uid=user0001*)(uid=jdoe))(!(uid=user00011)))", []string{"uid"}},
		{"presence", base, ldap.ScopeWholeSubtree, "(&(uid=*)(pwdAccountLockedTime=*))", []string{"uid"}},
		{"approx", base, ldap.ScopeWholeSubtree, "(sn=user00007)", []string{"sn"}}, // dirgate's (sn~=...) is compared below
		{"escaped comma DN in member", base, ldap.ScopeWholeSubtree, `(member=cn=Doe\5c, John,ou=people,` + base + ")", []string{"cn"}},
		{"memberOf computed", base, ldap.ScopeWholeSubtree, "(memberOf=cn=nested-leaf,ou=groups," + base + ")", []string{"uid", "memberOf"}},
		{"special characters in value", base, ldap.ScopeWholeSubtree, `(cn=\23hash "quoted" <x> ; a=b\5c)`, userAttrs},
		{"utf-8 raw", base, ldap.ScopeWholeSubtree, "(cn=Jürgen Müller)", userAttrs},
		{"utf-8 hex-escaped", base, ldap.ScopeWholeSubtree, `(sn=M\c3\bcller)`, userAttrs},
		{"one level excludes sub-OU", people, ldap.ScopeSingleLevel, "(|(uid=kimlee)(uid=jdoe))", []string{"uid"}},
		{"subtree of special OU", `ou=Docs/KB\+Ops\2C EU,` + people, ldap.ScopeWholeSubtree, "(objectClass=inetOrgPerson)", userAttrs},
		{"base of hard DN", `cn=R&D/Ops \+ Sales,` + people, ldap.ScopeBaseObject, "(objectClass=*)", userAttrs},
		{"base of hard DN, other spelling", `CN=R&D/Ops \2B Sales,OU=People,` + base, ldap.ScopeBaseObject, "(objectClass=*)", userAttrs},
		{"all user attributes", people, ldap.ScopeWholeSubtree, "(uid=user0002*)", nil},
		{"operational by name", people, ldap.ScopeWholeSubtree, "(uid=user0002*)",
			[]string{"entryUUID", "entryDN", "createTimestamp", "modifyTimestamp", "creatorsName", "modifiersName", "structuralObjectClass", "entryCSN", "memberOf"}},
		{"no attributes 1.1", people, ldap.ScopeWholeSubtree, "(uid=user0003*)", []string{"1.1"}},
		{"group with special cn", base, ldap.ScopeWholeSubtree, `(cn=Sales, EMEA + APAC)`, []string{"cn", "member"}},
		{"no match", base, ldap.ScopeWholeSubtree, "(uid=nobody)", nil},
	}
	for _, c := range cases {
		t.Run("search/"+c.name, func(t *testing.T) {
			want, err := search(t, up, c.base, c.scope, c.filter, c.attrs)
			if err != nil {
				t.Fatalf("slapd: %v", err)
			}
			filter := c.filter
			if c.name == "approx" {
				// Approximate match is equality in dirgate; slapd's is phonetic.
				filter = strings.Replace(filter, "=", "~=", 1)
			}
			got, err := search(t, gc, c.base, c.scope, filter, c.attrs)
			if err != nil {
				t.Fatalf("dirgate: %v", err)
			}
			w, g := reduce(t, want), reduce(t, got)
			if d := w.diff(g); d != "" {
				t.Errorf("%s: slapd returned %d entries, dirgate %d:\n%s", c.filter, len(want), len(got), d)
			}
			if len(want) == 0 && c.name != "no match" {
				t.Errorf("test case matched nothing on slapd: it proves little")
			}
		})
	}

	t.Run("no such base", func(t *testing.T) {
		_, err := search(t, gc, "ou=nowhere,"+base, ldap.ScopeWholeSubtree, "(objectClass=*)", nil)
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			t.Fatalf("got %v, want noSuchObject", err)
		}
	})
	t.Run("size limit without paging", func(t *testing.T) {
		req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=inetOrgPerson)", []string{"1.1"}, nil)
		res, err := gc.Search(req)
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			t.Fatalf("got %v, want sizeLimitExceeded", err)
		}
		if res == nil || len(res.Entries) != 500 {
			t.Fatalf("got %d entries before the limit, want 500", len(res.Entries))
		}
		req.SizeLimit = 7
		res, err = gc.Search(req)
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) || len(res.Entries) != 7 {
			t.Fatalf("client size limit 7: %v, %d entries", err, len(res.Entries))
		}
	})
	t.Run("paging returns every entry once", func(t *testing.T) {
		req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=inetOrgPerson)", []string{"uid"}, nil)
		res, err := gc.SearchWithPaging(req, 97)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, en := range res.Entries {
			if seen[en.DN] {
				t.Fatalf("%s returned twice", en.DN)
			}
			seen[en.DN] = true
		}
		if len(seen) != users+5 {
			t.Fatalf("paged search returned %d users, want %d", len(seen), users+5)
		}
	})
	t.Run("rootDSE", func(t *testing.T) {
		anon := gw.dial(t)
		req := ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)",
			[]string{"namingContexts", "supportedControl", "supportedLDAPVersion"}, nil)
		res, err := anon.Search(req)
		if err != nil || len(res.Entries) != 1 {
			t.Fatalf("rootDSE: %v", err)
		}
		r := res.Entries[0]
		if r.GetAttributeValue("namingContexts") != base || r.GetAttributeValue("supportedLDAPVersion") != "3" ||
			!contains(r.GetAttributeValues("supportedControl"), ldap.ControlTypePaging) {
			t.Fatalf("rootDSE = %v", r.Attributes)
		}
	})

	pw := e.Get(t, "DIRGATE_OL_USER_PW")
	binds := []struct {
		name, login, password string
		code                  uint16 // 0 = success
	}{
		{"DN", "uid=user00001,ou=people," + base, pw, 0},
		{"DN other spelling", "UID=user00001,OU=People," + strings.ToUpper(base), pw, 0},
		{"email", "user00001@example.test", pw, 0},
		{"email any case with spaces", "  USER00001@Example.Test ", pw, 0},
		{"alias email", "alias.user00010@example.test", pw, 0},
		{"hard DN by DN", `cn=\#hash \"quoted\" \<x\> \; a\=b\\,ou=people,` + base, pw, 0},
		{"hard DN hex-escaped", `cn=Doe\2C John,ou=people,` + base, pw, 0},
		{"hard DN by email", "weird@example.test", pw, 0},
		{"utf-8 DN", "cn=Jürgen Müller,ou=people," + base, pw, 0},
		{"wrong password", "user00001@example.test", "wrong", ldap.LDAPResultInvalidCredentials},
		{"unknown email", "nobody@example.test", pw, ldap.LDAPResultInvalidCredentials},
		{"unknown DN", "uid=nobody,ou=people," + base, pw, ldap.LDAPResultInvalidCredentials},
		{"disabled (ppolicy locked)", "user00050@example.test", pw, ldap.LDAPResultInvalidCredentials},
		{"group cannot bind", "cn=group0001,ou=groups," + base, pw, ldap.LDAPResultInvalidCredentials},
		{"service account", serviceDN, servicePW, 0},
		{"service account wrong password", serviceDN, "nope", ldap.LDAPResultInvalidCredentials},
	}
	for _, b := range binds {
		t.Run("bind/"+b.name, func(t *testing.T) {
			c := gw.dial(t)
			err := c.Bind(b.login, b.password)
			switch {
			case b.code == 0 && err != nil:
				t.Fatalf("bind %q: %v", b.login, err)
			case b.code != 0 && !ldap.IsErrorWithCode(err, b.code):
				t.Fatalf("bind %q: got %v, want code %d", b.login, err, b.code)
			case b.code != 0:
				var le *ldap.Error
				if errors.As(err, &le) && !strings.Contains(le.Err.Error(), "invalid credentials") {
					t.Fatalf("failure message must not tell why: %v", le.Err)
				}
			}
			if b.code == 0 {
				who, err := c.WhoAmI(nil)
				if err != nil || !strings.HasPrefix(who.AuthzID, "dn:") {
					t.Fatalf("WhoAmI after bind: %+v %v", who, err)
				}
			}
		})
	}
	t.Run("bind/anonymous is no identity", func(t *testing.T) {
		// RFC 4513 5.1.1: the anonymous bind succeeds; with allow_anonymous
		// off the session may read the root DSE and nothing else.
		c := gw.dial(t)
		if err := c.UnauthenticatedBind(""); err != nil {
			t.Fatalf("anonymous bind: %v", err)
		}
		if _, err := search(t, c, "", ldap.ScopeBaseObject, "(objectClass=*)", []string{"namingContexts"}); err != nil {
			t.Fatalf("root DSE after anonymous bind: %v", err)
		}
		_, err := search(t, c, base, ldap.ScopeWholeSubtree, "(uid=user00001)", nil)
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights) {
			t.Fatalf("search after anonymous bind: %v", err)
		}
	})
	t.Run("bind/unauthenticated refused", func(t *testing.T) {
		err := gw.dial(t).UnauthenticatedBind("user00001@example.test")
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultUnwillingToPerform) {
			t.Fatalf("unauthenticated bind: %v", err)
		}
	})
	t.Run("search needs a bind", func(t *testing.T) {
		_, err := search(t, gw.dial(t), base, ldap.ScopeWholeSubtree, "(uid=user00001)", nil)
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights) {
			t.Fatalf("anonymous search: %v", err)
		}
	})
	t.Run("ldapsearch and ldapwhoami CLI", func(t *testing.T) {
		if _, err := exec.LookPath("ldapsearch"); err != nil {
			t.Skip("ldap-utils not installed")
		}
		out, err := exec.Command("ldapsearch", "-x", "-LLL", "-H", "ldap://"+gw.addr, "-D", serviceDN, "-w", servicePW,
			"-b", base, "(mail=john.doe@example.test)", "cn", "memberOf").CombinedOutput()
		if err != nil {
			t.Fatalf("ldapsearch: %v\n%s", err, out)
		}
		for _, want := range []string{"dn: cn=Doe\\2C John,ou=people," + base, "cn: Doe, John", "memberOf: cn=nested-leaf,ou=groups," + base} {
			if !strings.Contains(string(out), want) {
				t.Errorf("ldapsearch output lacks %q:\n%s", want, out)
			}
		}
		out, err = exec.Command("ldapwhoami", "-x", "-H", "ldap://"+gw.addr, "-D", "john.doe@example.test", "-w", pw).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "dn:cn=Doe") {
			t.Fatalf("ldapwhoami: %v\n%s", err, out)
		}
	})
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
