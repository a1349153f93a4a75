package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-ldap/ldap/v3"
	"golang.org/x/oauth2"

	"github.com/dirgate/dirgate/clock"
	"github.com/dirgate/dirgate/internal/fakeentra"
)

// The fake tenant of the end-to-end test: its app, users and groups.
const (
	e2eDomain     = "contoso.example"
	e2eClientID   = "0d5e0f00-0000-4000-8000-0000000000e2"
	e2eSecret     = "e2e-app-s3cret"
	e2eSvcDN      = "cn=svc,ou=services,dc=dirgate"
	e2eSvcPW      = "svc-passw0rd-e2e"
	e2eRPSecret   = "wiki-s3cret-e2e"
	e2eAdminToken = "e2e-admin-token-0123456789"
	// The relying party's redirect URI: the test's browser stops there and
	// never contacts it.
	e2eRPRedirect = "http://127.0.0.1:9/wiki/callback"
)

func e2eUsers() []fakeentra.User {
	mail := func(local string) string { return local + "@" + e2eDomain }
	return []fakeentra.User{
		{ID: "u-ann", UserPrincipalName: mail("ann"), Mail: mail("ann"), DisplayName: "Ann Smith", AccountEnabled: true, Password: "Ann-Passw0rd",
			ProxyAddresses: []string{"SMTP:" + mail("ann"), "smtp:" + mail("a.smith")}},
		{ID: "u-bob", UserPrincipalName: mail("bob"), Mail: mail("bob"), DisplayName: "Bob Jones", AccountEnabled: true, Password: "Bob-Passw0rd"},
		{ID: "u-carl", UserPrincipalName: mail("carl"), Mail: mail("carl"), DisplayName: "Carl Off", AccountEnabled: false, Password: "Carl-Passw0rd"},
		{ID: "u-mfa", UserPrincipalName: mail("mia"), Mail: mail("mia"), DisplayName: "Mia Factor", AccountEnabled: true, Password: "Mia-Passw0rd", MFARequired: true},
		{ID: "u-dan", UserPrincipalName: mail("dan"), Mail: mail("dan"), DisplayName: "Dan Old", AccountEnabled: true,
			ProxyAddresses: []string{"SMTP:" + mail("dan")}},
		{ID: "u-eve", UserPrincipalName: mail("eve"), Mail: mail("eve"), DisplayName: "Eve Temp", AccountEnabled: true},
		// In the tenant, but outside the connector's email_domains: never
		// synced, although Microsoft signs it in.
		{ID: "u-out", UserPrincipalName: "ann@elsewhere.example", Mail: "ann@elsewhere.example", DisplayName: "Ann Elsewhere", AccountEnabled: true},
	}
}

// e2eServer is a dirgate configuration against a fake tenant, and the
// server running it.
type e2eServer struct {
	tb                            testing.TB // the test that made it, which outlives its subtests
	ft                            *fakeentra.Tenant
	path                          string // the configuration file
	ldapAddr, oidcAddr, adminAddr string
	issuer, base                  string
	stop                          func() // stops the running server; a no-op when none runs
}

// newE2EServer writes the configuration and fills the fake tenant; start
// runs the server.
func newE2EServer(t *testing.T) *e2eServer {
	t.Helper()
	// ID tokens are checked against the real time.
	ft := fakeentra.New(t, fakeentra.WithClock(clock.NewFake(time.Now())), fakeentra.WithDomain(e2eDomain))
	s := newE2EBase(t, "o="+ft.ID())
	s.ft = ft
	ft.AddApp(fakeentra.App{ClientID: e2eClientID, Secret: e2eSecret, Roles: []string{"User.Read.All", "GroupMember.Read.All"},
		RedirectURIs: []string{s.issuer + "/upstream/callback", "http://" + s.adminAddr + "/connectors/m365/consent/callback"}})
	for _, u := range e2eUsers() {
		ft.PutUser(u)
	}
	ft.PutGroup(fakeentra.Group{ID: "g-staff", DisplayName: "Staff", SecurityEnabled: true, Members: []string{"u-ann", "u-bob", "u-carl", "u-eve"}})
	ft.PutGroup(fakeentra.Group{ID: "g-eng", DisplayName: "Engineering", SecurityEnabled: true, Members: []string{"u-dan"}})

	t.Setenv("DIRGATE_TEST_E2E_ENTRA_SECRET", e2eSecret)
	s.writeConfig(t, "m365", "entra", e2eDomain, fmt.Sprintf(`    entra:
      tenant: %s
      client_id: %s
      client_secret_env: DIRGATE_TEST_E2E_ENTRA_SECRET
      authority_url: %s
      graph_url: %s
      password_check: true
`, ft.ID(), e2eClientID, ft.AuthorityURL(), ft.GraphURL()))
	return s
}

// start runs `dirgate serve` until stop (or the end of the test that
// made s), and waits until the connector is synced.
func (s *e2eServer) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := execute(ctx, "serve", "-c", s.path); done <- err }()
	s.stop = func() {
		s.stop = func() {}
		cancel()
		if err := <-done; err != nil {
			s.tb.Errorf("serve: %v", err)
		}
	}
	waitReady(t, s.adminAddr)
}

// cli runs a dirgate command against the configuration.
func (s *e2eServer) cli(t *testing.T, args ...string) string {
	t.Helper()
	out, err := execute(context.Background(), append(args, "-c", s.path)...)
	if err != nil {
		t.Fatalf("dirgate %v: %v\n%s", args, err, out)
	}
	return out
}

// syncResult is the line `dirgate sync` prints for the (only) connector.
var syncResult = regexp.MustCompile(`(?m)^[\w-]+: (\w+)(?: via [^:]+)? sync read \d+ .*: (\d+) added, (\d+) updated, (\d+) deleted`)

// sync runs `dirgate sync` with args and returns its mode and its added,
// updated and deleted counts.
func (s *e2eServer) sync(t *testing.T, args ...string) (string, [3]int) {
	t.Helper()
	out := s.cli(t, append([]string{"sync"}, args...)...)
	if !strings.Contains(out, "asking the running server") {
		t.Errorf("dirgate sync %v did not go through the server's admin API:\n%s", args, out)
	}
	m := syncResult.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("dirgate sync %v printed no result:\n%s", args, out)
	}
	var n [3]int
	for i := range n {
		n[i], _ = strconv.Atoi(m[2+i])
	}
	return m[1], n
}

// search runs filter as the service account and returns the entries by
// their lower-cased DN.
func (s *e2eServer) search(t *testing.T, filter string, attrs ...string) map[string]*ldap.Entry {
	t.Helper()
	c, err := ldap.DialURL("ldap://" + s.ldapAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(e2eSvcDN, e2eSvcPW); err != nil {
		t.Fatalf("service account bind: %v", err)
	}
	res, err := c.Search(ldap.NewSearchRequest(s.base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, filter, attrs, nil))
	if err != nil {
		t.Fatalf("search %s: %v", filter, err)
	}
	out := map[string]*ldap.Entry{}
	for _, e := range res.Entries {
		out[strings.ToLower(e.DN)] = e
	}
	return out
}

// user is the DN (lower-cased) the connector serves an Entra user under.
func (s *e2eServer) user(id string) string {
	return strings.ToLower("cn=" + id + ",ou=users," + s.base)
}

// group is the DN (lower-cased) the connector serves an Entra group under.
func (s *e2eServer) group(id string) string {
	return strings.ToLower("cn=" + id + ",ou=groups," + s.base)
}

// lower lower-cases values (DNs) for comparison.
func lower(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strings.ToLower(v)
	}
	slices.Sort(out)
	return out
}

// TestEntraEndToEnd runs the real `dirgate serve` with an entra connector
// against a fake Microsoft tenant: the start-up sync, LDAP searches and
// binds (password grant), "Sign in with Microsoft" for a relying party,
// incremental syncs through the CLI, a restart that resumes from the
// stored delta link, and Test Connection.
func TestEntraEndToEnd(t *testing.T) {
	log := captureLog(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", log())
		}
	})
	s := newE2EServer(t)
	ft := s.ft
	s.start(t)

	t.Run("start-up sync served over LDAP", func(t *testing.T) {
		users := s.search(t, "(objectClass=person)", "mail", "proxyAddresses", "memberOf", "accountEnabled")
		want := []string{s.user("u-ann"), s.user("u-bob"), s.user("u-carl"), s.user("u-mfa"), s.user("u-dan"), s.user("u-eve")}
		if got := slices.Sorted(maps.Keys(users)); !slices.Equal(got, lower(want)) {
			t.Fatalf("users %q, want %q (u-out is outside email_domains)", got, lower(want))
		}
		ann := users[s.user("u-ann")]
		if got := ann.GetAttributeValues("proxyAddresses"); !slices.Contains(got, "smtp:a.smith@"+e2eDomain) || ann.GetAttributeValue("mail") != "ann@"+e2eDomain {
			t.Errorf("ann: mail %q, proxyAddresses %q", ann.GetAttributeValue("mail"), got)
		}
		if got := lower(ann.GetAttributeValues("memberOf")); !slices.Equal(got, []string{s.group("g-staff")}) {
			t.Errorf("ann memberOf %q", got)
		}
		if byAlias := s.search(t, "(proxyAddresses=smtp:a.smith@"+e2eDomain+")"); len(byAlias) != 1 || byAlias[s.user("u-ann")] == nil {
			t.Errorf("search by alias: %v", slices.Collect(maps.Keys(byAlias)))
		}
		if v := users[s.user("u-carl")].GetAttributeValue("accountEnabled"); !strings.EqualFold(v, "FALSE") {
			t.Errorf("disabled carl: accountEnabled %q", v)
		}
		if v := users[s.user("u-bob")].GetAttributeValue("accountEnabled"); !strings.EqualFold(v, "TRUE") {
			t.Errorf("bob: accountEnabled %q", v)
		}
		staff := s.search(t, "(cn=Staff)", "member")[s.group("g-staff")]
		if staff == nil {
			t.Fatal("group Staff not found")
		}
		if got, want := lower(staff.GetAttributeValues("member")), lower([]string{s.user("u-ann"), s.user("u-bob"), s.user("u-carl"), s.user("u-eve")}); !slices.Equal(got, want) {
			t.Errorf("Staff members %q, want %q", got, want)
		}
		// status through the admin API: the connector with its counts.
		out := s.cli(t, "status")
		if !regexp.MustCompile(`(?m)^m365 +entra +ok .* ` + strconv.Itoa(len(want)) + ` +2$`).MatchString(out) {
			t.Errorf("status:\n%s", out)
		}
	})

	t.Run("LDAP binds checked with the password grant", func(t *testing.T) {
		if err := tryBind(s.ldapAddr, "a.smith@"+e2eDomain, "Ann-Passw0rd"); err != nil {
			t.Errorf("bind as ann by alias: %v", err)
		}
		before := ft.PasswordFailures("u-ann")
		if err := tryBind(s.ldapAddr, "ann@"+e2eDomain, "wrong-password"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			t.Errorf("wrong password: %v", err)
		}
		if n := ft.PasswordFailures("u-ann"); n != before+1 {
			t.Errorf("the tenant saw %d wrong passwords for ann, want %d: the bind was not checked there", n, before+1)
		}
		if err := tryBind(s.ldapAddr, "mia@"+e2eDomain, "Mia-Passw0rd"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) ||
			!strings.Contains(err.Error(), "not allowed") {
			t.Errorf("MFA user: %v", err)
		}
		// Refused by the cache, which serves carl as disabled, without
		// asking Microsoft.
		tokens := ft.TokenRequests()
		if err := tryBind(s.ldapAddr, "carl@"+e2eDomain, "Carl-Passw0rd"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			t.Errorf("disabled user: %v", err)
		}
		if n := ft.TokenRequests() - tokens; n != 0 {
			t.Errorf("the disabled user's bind asked the tenant %d times", n)
		}
	})

	rp := newE2ERP(t, s)
	var bobRefresh, annRefresh string
	t.Run("Sign in with Microsoft", func(t *testing.T) {
		ann := rp.signIn(t, "u-ann")
		if ann.err != "" {
			t.Fatalf("ann: %s", ann.err)
		}
		if ann.sub != "u-ann" || ann.claims.Email != "ann@"+e2eDomain || !slices.Equal(ann.claims.Groups, []string{"Staff"}) || ann.claims.Name != "Ann Smith" {
			t.Errorf("ann's ID token: sub %q %+v", ann.sub, ann.claims)
		}
		annRefresh = ann.refresh
		bob := rp.signIn(t, "u-bob")
		if bob.err != "" {
			t.Fatalf("bob: %s", bob.err)
		}
		bobRefresh = bob.refresh
		// Microsoft signs u-out in; dirgate never synced it, and does not
		// join it to ann by its name.
		if out := rp.signIn(t, "u-out"); out.err == "" || !strings.Contains(out.err, "not available here") {
			t.Errorf("u-out: signed in as %q (%s)", out.sub, out.err)
		}
	})

	t.Run("disabled by a sync: refused, refresh tokens stop", func(t *testing.T) {
		if bobRefresh == "" {
			t.Skip("bob did not sign in")
		}
		bob, _ := ft.User("u-bob")
		bob.AccountEnabled = false
		ft.PutUser(bob)
		if mode, n := s.sync(t); mode != "incremental" || n[1] == 0 {
			t.Errorf("sync after disabling bob: %s %v", mode, n)
		}
		if _, err := rp.refresh(t, bobRefresh); !isInvalidGrant(err) {
			t.Errorf("bob's refresh token after the sync: %v", err)
		}
		// Microsoft refuses bob itself, and says why.
		if got := rp.signIn(t, "u-bob"); got.err == "" || !strings.Contains(got.err, "AADSTS50057") {
			t.Errorf("bob disabled at Microsoft: %+v", got)
		}
		// Enabled again at Microsoft but not synced since: Microsoft signs
		// bob in, dirgate's cache still says disabled.
		bob.AccountEnabled = true
		ft.PutUser(bob)
		if got := rp.signIn(t, "u-bob"); got.err == "" || !strings.Contains(got.err, "disabled or not available here") {
			t.Errorf("bob, disabled by the sync: %+v", got)
		}
		if annRefresh == "" {
			return
		}
		if tok, err := rp.refresh(t, annRefresh); err != nil {
			t.Errorf("ann's refresh token: %v", err)
		} else {
			annRefresh = tok.RefreshToken
		}
	})

	t.Run("incremental changes", func(t *testing.T) {
		dan, _ := ft.User("u-dan")
		dan.UserPrincipalName, dan.Mail, dan.DisplayName = "daniel@"+e2eDomain, "daniel@"+e2eDomain, "Daniel New"
		dan.ProxyAddresses = []string{"SMTP:daniel@" + e2eDomain, "smtp:dan@" + e2eDomain}
		ft.PutUser(dan)
		ft.SoftDelete("u-eve")
		ft.AddMember("g-eng", "u-ann")
		mode, n := s.sync(t, "--incremental")
		if mode != "incremental" || n[2] != 1 {
			t.Errorf("sync: %s %v, want incremental with 1 deleted", mode, n)
		}
		dn := s.search(t, "(mail=daniel@"+e2eDomain+")", "userPrincipalName", "displayName", "proxyAddresses")[s.user("u-dan")]
		if dn == nil || dn.GetAttributeValue("userPrincipalName") != "daniel@"+e2eDomain || dn.GetAttributeValue("displayName") != "Daniel New" {
			t.Errorf("renamed dan: %v", dn)
		}
		if got := s.search(t, "(mail=eve@"+e2eDomain+")"); len(got) != 0 {
			t.Errorf("soft-deleted eve still served: %v", slices.Collect(maps.Keys(got)))
		}
		staff := s.search(t, "(cn=Staff)", "member")[s.group("g-staff")]
		if staff == nil || slices.Contains(lower(staff.GetAttributeValues("member")), s.user("u-eve")) {
			t.Errorf("Staff after eve's deletion: %v", staff)
		}
		ann := s.search(t, "(mail=ann@"+e2eDomain+")", "memberOf")[s.user("u-ann")]
		if ann == nil || !slices.Equal(lower(ann.GetAttributeValues("memberOf")), lower([]string{s.group("g-eng"), s.group("g-staff")})) {
			t.Errorf("ann after joining Engineering: %v", ann)
		}
		// The ID token's groups are the cache's.
		if annRefresh != "" {
			if tok, err := rp.refresh(t, annRefresh); err != nil {
				t.Errorf("ann's refresh: %v", err)
			} else if _, c := rp.verify(t, tok); !slices.Equal(c.Groups, []string{"Engineering", "Staff"}) {
				t.Errorf("ann's groups after the sync: %q", c.Groups)
			}
		}

		ft.Restore("u-eve")
		if mode, n := s.sync(t); mode != "incremental" || n[0] != 1 {
			t.Errorf("sync after the restore: %s %v, want incremental with 1 added", mode, n)
		}
		// Restored with her memberships, which Graph does not report again.
		eve := s.search(t, "(mail=eve@"+e2eDomain+")", "memberOf")[s.user("u-eve")]
		if eve == nil || !slices.Equal(lower(eve.GetAttributeValues("memberOf")), []string{s.group("g-staff")}) {
			t.Errorf("restored eve: %v", eve)
		}
		staff = s.search(t, "(cn=Staff)", "member")[s.group("g-staff")]
		if staff == nil || !slices.Contains(lower(staff.GetAttributeValues("member")), s.user("u-eve")) {
			t.Errorf("Staff after eve's restore: %v", staff)
		}
	})

	t.Run("restart resumes from the stored delta link", func(t *testing.T) {
		s.stop()
		// A change made while dirgate is down.
		mia, _ := ft.User("u-mfa")
		mia.DisplayName = "Mia Renamed"
		ft.PutUser(mia)
		s.start(t)
		before := ft.Requests()
		mode, n := s.sync(t)
		inc := ft.Requests() - before
		if mode != "incremental" || n != [3]int{0, 1, 0} {
			t.Errorf("first sync after the restart: %s %v, want incremental with 1 updated", mode, n)
		}
		if got := s.search(t, "(displayName=Mia Renamed)"); got[s.user("u-mfa")] == nil {
			t.Errorf("the change made while down is not served: %v", slices.Collect(maps.Keys(got)))
		}
		// A full round finds the cache as the incremental rounds left it.
		before = ft.Requests()
		if mode, n := s.sync(t, "--full"); mode != "full" || n != [3]int{} {
			t.Errorf("sync --full: %s %v, want full with no changes", mode, n)
		}
		full := ft.Requests() - before
		if inc == 0 || inc >= full {
			t.Errorf("the incremental run made %d Graph requests, a full round %d", inc, full)
		}
	})

	t.Run("Connect Entra ID from the console", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		b := &http.Client{Jar: jar, Timeout: 20 * time.Second}
		console := "http://" + s.adminAddr
		csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
		post := func(path, page string, form url.Values) string {
			t.Helper()
			m := csrf.FindStringSubmatch(page)
			if m == nil {
				t.Fatalf("no form on the page before %s:\n%s", path, page)
			}
			form.Set("csrf", m[1])
			resp, err := b.PostForm(console+path, form)
			if err != nil {
				t.Fatal(err)
			}
			return readBody(t, resp)
		}
		resp, err := b.Get(console + "/login")
		if err != nil {
			t.Fatal(err)
		}
		page := post("/login", readBody(t, resp), url.Values{"token": {e2eAdminToken}, "next": {"/connectors/m365"}})
		if !strings.Contains(page, "Connect Entra ID") {
			t.Fatalf("the connector's page offers no Connect Entra ID:\n%s", page)
		}
		before := ft.AdminConsents()
		// The console → Microsoft's admin consent → the console's callback,
		// which tests the connection.
		page = post("/connectors/m365/consent", page, url.Values{})
		if ft.AdminConsents() != before+1 || !strings.Contains(page, "An administrator granted admin consent to the app for tenant "+ft.ID()) ||
			!strings.Contains(page, "Connection test passed") {
			t.Errorf("consent: %d granted; page:\n%s", ft.AdminConsents()-before, page)
		}
	})

	t.Run("test-connection", func(t *testing.T) {
		out := s.cli(t, "test-connection", "m365")
		for _, step := range []string{"authority", "credentials", "permissions", "sample", "delta", "password_check"} {
			if !regexp.MustCompile(`(?m)^PASS +` + regexp.QuoteMeta(ft.ID()) + ` +` + step + ` `).MatchString(out) {
				t.Errorf("no passed step %s", step)
			}
		}
		if strings.Contains(out, "FAIL") || strings.Contains(out, "SKIP") {
			t.Errorf("a step did not pass")
		}
		if t.Failed() {
			t.Logf("test-connection:\n%s", out)
		}
	})

	s.stop()
	l := log()
	for _, secret := range []string{e2eSecret, e2eRPSecret, e2eSvcPW, "Ann-Passw0rd", "Mia-Passw0rd", "Carl-Passw0rd", "wrong-password", annRefresh} {
		if secret != "" && strings.Contains(l, secret) {
			t.Errorf("the server's log shows the secret %q", secret)
		}
	}
}

func isInvalidGrant(err error) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == "invalid_grant"
}

// e2eRP is a relying party of dirgate's OIDC provider (go-oidc and
// x/oauth2), and the browser of its users.
type e2eRP struct {
	s        *e2eServer
	conf     *oauth2.Config
	verifier *gooidc.IDTokenVerifier
	// upstream names the connector whose button "Sign in with <label>"
	// the browser presses; signInAs picks the user the fake signs in.
	upstream, label string
	signInAs        func(userID string)
}

type e2eClaims struct {
	Email  string   `json:"email"`
	Name   string   `json:"name"`
	Groups []string `json:"groups"`
	Nonce  string   `json:"nonce"`
}

// e2eSignIn is how a sign-in ended: the ID token's subject, claims and
// the refresh token, or err, what stopped it (dirgate's page).
type e2eSignIn struct {
	sub, refresh string
	claims       e2eClaims
	err          string
}

func newE2ERP(t *testing.T, s *e2eServer) *e2eRP {
	t.Helper()
	return newRP(t, s, "m365", "Microsoft", s.ft.SignInAs)
}

// newRP is the relying party of s's provider, whose users sign in with
// the upstream of connector upstream.
func newRP(t *testing.T, s *e2eServer, upstream, label string, signInAs func(string)) *e2eRP {
	t.Helper()
	p, err := gooidc.NewProvider(context.Background(), s.issuer)
	if err != nil {
		t.Fatal(err)
	}
	return &e2eRP{s: s, verifier: p.Verifier(&gooidc.Config{ClientID: "wiki"}), conf: &oauth2.Config{ClientID: "wiki", ClientSecret: e2eRPSecret,
		Endpoint: p.Endpoint(), RedirectURL: e2eRPRedirect, Scopes: []string{gooidc.ScopeOpenID, "email", "profile", "groups"}},
		upstream: upstream, label: label, signInAs: signInAs}
}

// signIn signs the upstream's user in to the relying party with "Sign in
// with <label>", in a new browser.
func (rp *e2eRP) signIn(t *testing.T, userID string) e2eSignIn {
	t.Helper()
	rp.signInAs(userID)
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), e2eRPRedirect) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	verifier, state, nonce := oauth2.GenerateVerifier(), oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	resp, err := b.Get(rp.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), gooidc.Nonce(nonce)))
	if err != nil {
		t.Fatal(err)
	}
	page := readBody(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Sign in with "+rp.label) || !strings.Contains(page, `name="upstream" value="`+rp.upstream+`"`) {
		t.Fatalf("login page %d without Sign in with %s:\n%s", resp.StatusCode, rp.label, page)
	}
	form := url.Values{"upstream": {rp.upstream}}
	for _, m := range regexp.MustCompile(`name="(request|csrf)" value="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		form.Set(m[1], m[2])
	}
	// dirgate → the upstream → dirgate's callback → the relying party.
	if resp, err = b.PostForm(rp.s.issuer+"/upstream", form); err != nil {
		t.Fatal(err)
	}
	page = readBody(t, resp)
	loc, _ := resp.Location()
	if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), e2eRPRedirect) {
		return e2eSignIn{err: fmt.Sprintf("%d %s", resp.StatusCode, page)}
	}
	if q := loc.Query(); q.Get("state") != state || q.Get("code") == "" {
		return e2eSignIn{err: "back at the relying party with " + loc.RawQuery}
	}
	tok, err := rp.conf.Exchange(context.Background(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	sub, c := rp.verify(t, tok)
	if c.Nonce != nonce {
		t.Errorf("nonce %q, want %q", c.Nonce, nonce)
	}
	return e2eSignIn{sub: sub, refresh: tok.RefreshToken, claims: c}
}

// verify checks the ID token of tok and returns its subject and claims.
func (rp *e2eRP) verify(t *testing.T, tok *oauth2.Token) (string, e2eClaims) {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var c e2eClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return idt.Subject, c
}

// refresh redeems a refresh token.
func (rp *e2eRP) refresh(t *testing.T, rt string) (*oauth2.Token, error) {
	t.Helper()
	return rp.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt}).Token()
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
