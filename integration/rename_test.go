package integration

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	dirsync "github.com/dirgate/dirgate/sync"
)

const (
	// inChainRule is LDAP_MATCHING_RULE_IN_CHAIN.
	inChainRule = "1.2.840.113556.1.4.1941"
	// renamePW is the password of the users TestMembershipFollowsRename adds.
	renamePW = "It-Passw0rd!"
)

// TestMembershipFollowsRename renames a group member away from the DN its
// groups list (the test slapd has no referential integrity, so the groups
// keep the old DN), then adds a new entry at the old DN. After every step
// and every kind of sync, dirgate must answer memberOf, member= and
// in-chain filters and the OIDC groups claim as slapd answers them: the
// member value names whichever entry holds the DN now. Last the two entries
// swap DNs between syncs: syncrepl lists changed entries in the order they
// were created, so the incremental run sees the older entry take its DN
// back before it sees the newer one leave it.
//
// Everything happens in a subtree of its own, synced by connectors rooted
// there, so the tests sharing this slapd see none of it.
func TestMembershipFollowsRename(t *testing.T) {
	e := loadEnv(t)
	base := e.Get(t, "DIRGATE_OL_BASE")
	root := fmt.Sprintf("ou=it-rename-%d,%s", time.Now().UnixNano(), base)
	var (
		oldDN   = "uid=ren-alice,ou=people," + root
		movedDN = "uid=ren-alice,ou=moved," + root
		swapDN  = "uid=ren-swap,ou=moved," + root
		team    = "cn=ren-team,ou=groups," + root
		outer   = "cn=ren-outer,ou=groups," + root
	)
	admin := adminConn(t, e)
	ous := []string{root, "ou=people," + root, "ou=moved," + root, "ou=groups," + root}
	t.Cleanup(func() {
		for _, d := range []string{outer, team, oldDN, movedDN, swapDN, ous[3], ous[2], ous[1], ous[0]} {
			del(admin, d)
		}
	})
	for _, ou := range ous {
		req := ldap.NewAddRequest(ou, nil)
		req.Attribute("objectClass", []string{"organizationalUnit"})
		req.Attribute("ou", []string{strings.TrimPrefix(strings.SplitN(ou, ",", 2)[0], "ou=")})
		if err := admin.Add(req); err != nil {
			t.Fatalf("add %s: %v", ou, err)
		}
	}
	addUser(t, admin, oldDN, "ren-alice", "ren-alice@example.test", renamePW)
	for _, g := range [][2]string{{team, oldDN}, {outer, team}} {
		req := ldap.NewAddRequest(g[0], nil)
		req.Attribute("objectClass", []string{"groupOfNames"})
		req.Attribute("cn", []string{strings.TrimPrefix(strings.SplitN(g[0], ",", 2)[0], "cn=")})
		req.Attribute("member", []string{g[1]})
		if err := admin.Add(req); err != nil {
			t.Fatalf("add %s: %v", g[0], err)
		}
	}

	// One gateway syncs as scheduled (incremental after the first run), the
	// other only ever runs full syncs.
	conn := replaceLine(connectorYAML(t, e, "ren", e.Get(t, "DIRGATE_OL_HOST"), ""), "root_dn", "root_dn: "+root)
	gateways := []struct {
		mode string
		gw   *gateway
	}{
		{dirsync.ModeIncremental, startGateway(t, parseConfig(t, conn))},
		{dirsync.ModeFull, startGateway(t, parseConfig(t, conn))},
	}
	upstream := dialUpstream(t, e)
	syncAll := func(step string, first bool) {
		t.Helper()
		for _, g := range gateways {
			mode := g.mode
			if first {
				mode = dirsync.ModeFull
			}
			res, err := g.gw.sync(t, "ren", dirsync.Options{Mode: mode})
			if err != nil {
				t.Fatalf("%s: %s sync: %v", step, mode, err)
			}
			t.Logf("%s: %s sync: read %d, %d added, %d updated, %d deleted, %d unchanged",
				step, res.Mode, res.Read, res.Added, res.Updated, res.Deleted, res.Unchanged)
		}
	}
	check := func(step string, users map[string]string) {
		t.Helper()
		want := answers(t, upstream, root, users, nil)
		for _, g := range gateways {
			c := g.gw.dialService(t)
			got := answers(t, c, root, users, g.gw)
			if d := want.diff(got); d != "" {
				t.Errorf("%s, after %s syncs: dirgate and slapd disagree:\n%s", step, g.mode, d)
			}
		}
		if len(want.memberOf[strings.ToLower(oldDN)]) == 0 && users[oldDN] != "" {
			t.Fatalf("%s: slapd lists no groups for %s: the test's premise is wrong", step, oldDN)
		}
	}

	syncAll("initial", true)
	check("initial", map[string]string{oldDN: "ren-alice@example.test"})

	if err := admin.ModifyDN(ldap.NewModifyDNRequest(oldDN, "uid=ren-alice", true, "ou=moved,"+root)); err != nil {
		t.Fatal(err)
	}
	syncAll("renamed", false)
	check("renamed", map[string]string{movedDN: "ren-alice@example.test"})

	addUser(t, admin, oldDN, "ren-alice", "ren-new@example.test", renamePW)
	syncAll("new entry at the old DN", false)
	check("new entry at the old DN", map[string]string{movedDN: "ren-alice@example.test", oldDN: "ren-new@example.test"})

	for _, r := range [][2]string{{oldDN, swapDN}, {movedDN, oldDN}, {swapDN, movedDN}} {
		rdn, parent, _ := strings.Cut(r[1], ",")
		if err := admin.ModifyDN(ldap.NewModifyDNRequest(r[0], rdn, true, parent)); err != nil {
			t.Fatalf("rename %s to %s: %v", r[0], r[1], err)
		}
	}
	syncAll("swapped", false)
	swapped := map[string]string{oldDN: "ren-alice@example.test", movedDN: "ren-new@example.test"}
	check("swapped", swapped)
	// A full sync after all that finds no entry changed: membership follows
	// from the entries, so "unchanged" is true of what dirgate answers too.
	for _, g := range gateways {
		res, err := g.gw.sync(t, "ren", dirsync.Options{Mode: dirsync.ModeFull})
		if err != nil || res.Added+res.Updated+res.Deleted != 0 {
			t.Fatalf("full sync at the end, after %s syncs: %+v %v", g.mode, res.Run, err)
		}
	}
	check("full sync at the end", swapped)
}

// membershipAnswers is what one server answers about the test subtree.
type membershipAnswers struct {
	memberOf map[string][]string // entry DN -> memberOf values (read)
	filters  map[string][]string // filter -> matching DNs
	groups   map[string][]string // login -> OIDC groups claim (dirgate only)
}

// answers asks c (slapd, or dirgate when gw is set) about the entries in
// users (DN -> login address).
//
// The test slapd computes memberOf with dynlist, which gives it to users
// but not to groups; so memberOf is compared on the users, and slapd's
// in-chain answer, a rule it does not evaluate, is the closure of the
// member values its groups hold, each naming the entry that has the DN.
// Its groups claim is the common names of the user's memberOf groups.
func answers(t *testing.T, c *ldap.Conn, root string, users map[string]string, gw *gateway) membershipAnswers {
	t.Helper()
	a := membershipAnswers{memberOf: map[string][]string{}, filters: map[string][]string{}, groups: map[string][]string{}}
	all, err := search(t, c, root, ldap.ScopeWholeSubtree, "(objectClass=*)", []string{"memberOf", "member", "cn"})
	if err != nil {
		t.Fatalf("read the subtree: %v", err)
	}
	cn, members := map[string]string{}, map[string][]string{}
	var groups []string
	for _, en := range all {
		d := strings.ToLower(en.DN)
		cn[d] = en.GetAttributeValue("cn")
		if _, ok := users[en.DN]; ok {
			a.memberOf[d] = lowerSorted(en.GetAttributeValues("memberOf"))
		}
		if en.GetAttributeValues("member") != nil {
			groups = append(groups, en.DN)
			members[d] = lowerSorted(en.GetAttributeValues("member"))
		}
	}
	for _, g := range groups {
		for _, f := range []string{"(&(objectClass=inetOrgPerson)(memberOf=%s))", "(member=%s)"} {
			f = fmt.Sprintf(f, ldap.EscapeFilter(g))
			a.filters[f] = dnsOf(t, c, root, f)
		}
		f := fmt.Sprintf("(memberOf:%s:=%s)", inChainRule, ldap.EscapeFilter(g))
		if gw != nil {
			a.filters[f] = dnsOf(t, c, root, f)
			continue
		}
		var in []string
		for _, en := range all {
			if d := strings.ToLower(en.DN); d != strings.ToLower(g) && reaches(members, strings.ToLower(g), d) {
				in = append(in, d)
			}
		}
		slices.Sort(in)
		a.filters[f] = in
	}
	for d, login := range users {
		f := fmt.Sprintf("(member=%s)", ldap.EscapeFilter(d))
		a.filters[f] = dnsOf(t, c, root, f)
		if gw != nil {
			a.groups[login] = groupsClaim(t, gw, login)
			continue
		}
		var names []string
		for _, g := range a.memberOf[strings.ToLower(d)] {
			names = append(names, cn[g])
		}
		slices.Sort(names)
		a.groups[login] = names
	}
	return a
}

// reaches reports whether to is reachable from group through the member
// values of groups (edges), so a member is in a group's chain.
func reaches(edges map[string][]string, group, to string) bool {
	seen := map[string]bool{group: true}
	queue := []string{group}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, m := range edges[cur] {
			if m == to {
				return true
			}
			if !seen[m] {
				seen[m] = true
				queue = append(queue, m)
			}
		}
	}
	return false
}

func dnsOf(t *testing.T, c *ldap.Conn, root, filter string) []string {
	t.Helper()
	res, err := search(t, c, root, ldap.ScopeWholeSubtree, filter, []string{"1.1"})
	if err != nil {
		t.Fatalf("search %s: %v", filter, err)
	}
	var dns []string
	for _, en := range res {
		dns = append(dns, en.DN)
	}
	return lowerSorted(dns)
}

func lowerSorted(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	slices.Sort(out)
	return out
}

func (a membershipAnswers) diff(b membershipAnswers) string {
	var out []string
	cmp := func(what string, x, y map[string][]string) {
		keys := map[string]bool{}
		for k := range x {
			keys[k] = true
		}
		for k := range y {
			keys[k] = true
		}
		for k := range keys {
			if !slices.Equal(x[k], y[k]) {
				out = append(out, fmt.Sprintf("  %s %s: slapd %v, dirgate %v", what, k, x[k], y[k]))
			}
		}
	}
	cmp("memberOf of", a.memberOf, b.memberOf)
	cmp("filter", a.filters, b.filters)
	cmp("groups claim of", a.groups, b.groups)
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// loginForm matches the hidden fields and the action of the login page.
var (
	loginAction = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	loginField  = regexp.MustCompile(`<input type="hidden" name="(request|csrf)" value="([^"]*)"`)
	rpGroups    = regexp.MustCompile(`groups ([^<]*)</p>`)
)

// groupsClaim signs login in through dirgate's OIDC provider, posting its
// login page as a browser would, and returns the groups claim of the ID
// token the relying party received.
func groupsClaim(t *testing.T, gw *gateway, login string) []string {
	t.Helper()
	rp := startRelyingParty(t)
	rp.issuer, rp.secret = startProvider(t, gw, rp.srv.URL+"/callback")
	rp.clientID = "rp"
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	page, pageURL := fetchPage(t, client.Get, rp.srv.URL+"/start")
	action := loginAction.FindStringSubmatch(page)
	if action == nil {
		t.Fatalf("no login form at %s:\n%s", pageURL, page)
	}
	form := url.Values{"email": {login}, "password": {renamePW}}
	for _, m := range loginField.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	target, err := pageURL.Parse(html.UnescapeString(action[1]))
	if err != nil {
		t.Fatal(err)
	}
	page, _ = fetchPage(t, func(u string) (*http.Response, error) { return client.PostForm(u, form) }, target.String())
	m := rpGroups.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("sign-in of %s did not reach the relying party:\n%s", login, page)
	}
	var names []string
	for _, g := range strings.Split(html.UnescapeString(m[1]), ",") {
		if g != "" {
			names = append(names, g)
		}
	}
	slices.Sort(names)
	return names
}

func fetchPage(t *testing.T, do func(string) (*http.Response, error), u string) (string, *url.URL) {
	t.Helper()
	resp, err := do(u)
	if err != nil {
		t.Fatalf("%s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), resp.Request.URL
}
