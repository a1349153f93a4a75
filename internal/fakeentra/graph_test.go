package fakeentra

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	userSelect  = "id,userPrincipalName,mail,proxyAddresses,otherMails,accountEnabled,displayName,givenName,surname,userType,onPremisesSyncEnabled,onPremisesImmutableId"
	groupSelect = "id,displayName,mail,mailEnabled,securityEnabled,groupTypes,proxyAddresses,members"
)

// roundResult is what one delta round served.
type roundResult struct {
	pages     int
	objects   []map[string]any // every object as served, in order (repeats kept)
	deltaLink string
}

// ids returns the id of every served object, repeats kept.
func (r roundResult) ids() []string {
	var out []string
	for _, o := range r.objects {
		out = append(out, o["id"].(string))
	}
	return out
}

// byID returns the last served version of each object.
func (r roundResult) byID() map[string]map[string]any {
	m := map[string]map[string]any{}
	for _, o := range r.objects {
		m[o["id"].(string)] = o
	}
	return m
}

// members merges members@delta of group id across all its repeats:
// member -> removed.
func (r roundResult) members(id string) map[string]bool {
	m := map[string]bool{}
	for _, o := range r.objects {
		if o["id"] != id {
			continue
		}
		ms, _ := o["members@delta"].([]any)
		for _, x := range ms {
			e := x.(map[string]any)
			_, removed := e["@removed"]
			m[e["id"].(string)] = removed
		}
	}
	return m
}

// runRound follows nextLinks verbatim from u to the deltaLink.
func runRound(t testing.TB, tn *Tenant, token, u string) roundResult {
	t.Helper()
	var r roundResult
	for range 10000 {
		status, body, _ := graphGet(t, tn, token, u)
		if status != 200 {
			t.Fatalf("GET %s: %d %v", u, status, body)
		}
		r.pages++
		for _, v := range body["value"].([]any) {
			r.objects = append(r.objects, v.(map[string]any))
		}
		next, hasNext := body["@odata.nextLink"].(string)
		delta, hasDelta := body["@odata.deltaLink"].(string)
		if hasNext == hasDelta {
			t.Fatalf("page must carry exactly one of nextLink/deltaLink: %v", body)
		}
		if hasDelta {
			r.deltaLink = delta
			return r
		}
		u = next
	}
	t.Fatal("round did not end")
	return r
}

func usersDelta(tn *Tenant) string {
	return tn.GraphURL() + "/v1.0/users/delta?$select=" + url.QueryEscape(userSelect)
}

func groupsDelta(tn *Tenant) string {
	return tn.GraphURL() + "/v1.0/groups/delta?$select=" + url.QueryEscape(groupSelect)
}

func seedUsers(tn *Tenant, n int) {
	for i := range n {
		tn.PutUser(User{ID: fmt.Sprintf("u-%02d", i), UserPrincipalName: fmt.Sprintf("user%02d@contoso.example", i),
			DisplayName: fmt.Sprintf("User %d", i), AccountEnabled: true})
	}
}

func TestUsersDeltaRounds(t *testing.T) {
	tn, _ := newTestTenant(t)
	tok := appToken(t, tn)
	seedUsers(tn, 8)
	tn.PutUser(User{ID: "u-ann", UserPrincipalName: "ann@contoso.example", Mail: "ann@contoso.example",
		ProxyAddresses: []string{"SMTP:ann@contoso.example", "smtp:a@contoso.example"}, AccountEnabled: true, GivenName: "Ann"})
	tn.PutUser(User{ID: "u-bin", UserPrincipalName: "bin@contoso.example", AccountEnabled: true})
	tn.SoftDelete("u-bin")

	full := runRound(t, tn, tok, usersDelta(tn))
	if full.pages < 4 {
		t.Errorf("10 users at page size 3 came in %d pages", full.pages)
	}
	ids := full.ids()
	if len(ids) != 10 || len(full.byID()) != 10 {
		t.Fatalf("full round served %v", ids)
	}
	ann := full.byID()["u-ann"]
	if ann["mail"] != "ann@contoso.example" || ann["accountEnabled"] != true || ann["givenName"] != "Ann" {
		t.Errorf("ann = %v", ann)
	}
	if _, ok := ann["surname"]; ok {
		t.Errorf("never-set surname is served: %v", ann)
	}
	if rm := full.byID()["u-bin"]["@removed"]; rm == nil || rm.(map[string]any)["reason"] != "changed" || len(full.byID()["u-bin"]) != 2 {
		t.Errorf("soft-deleted user in the initial round: %v", full.byID()["u-bin"])
	}

	// No changes: an empty round.
	same := runRound(t, tn, tok, full.deltaLink)
	if len(same.objects) != 0 || same.pages != 1 {
		t.Fatalf("unchanged tenant served %v", same.ids())
	}

	// Changes, several per object, collapse to one entry each.
	tn.PutUser(User{ID: "u-new", UserPrincipalName: "new@contoso.example", AccountEnabled: true})
	tn.PutUser(User{ID: "u-ann", UserPrincipalName: "ann.smith@contoso.example", Mail: "", ProxyAddresses: nil, AccountEnabled: false, GivenName: "Ann"})
	tn.PutUser(User{ID: "u-ann", UserPrincipalName: "ann.smith@contoso.example", AccountEnabled: false, GivenName: "Ann", Surname: "Smith"})
	tn.SoftDelete("u-01")
	tn.Restore("u-bin")
	tn.HardDelete("u-02")
	tn.PutUser(User{ID: "u-tmp", UserPrincipalName: "tmp@contoso.example"})
	tn.HardDelete("u-tmp") // created and deleted between rounds: never served
	tn.PutUser(User{ID: "u-03", UserPrincipalName: "user03@contoso.example", DisplayName: "User 3", AccountEnabled: true, MailNickname: "u3"})

	inc := runRound(t, tn, tok, same.deltaLink)
	got := inc.byID()
	if len(inc.objects) != len(got) {
		t.Errorf("changes not collapsed per object: %v", inc.ids())
	}
	wantIDs := []string{"u-ann", "u-bin", "u-01", "u-02", "u-new"}
	for _, id := range wantIDs {
		if got[id] == nil {
			t.Errorf("incremental round lacks %s: %v", id, inc.ids())
		}
	}
	if len(got) != len(wantIDs) {
		t.Errorf("incremental round served %v, want %v (u-03's change is to an unselected property)", inc.ids(), wantIDs)
	}
	a := got["u-ann"]
	if a["userPrincipalName"] != "ann.smith@contoso.example" || a["accountEnabled"] != false || a["surname"] != "Smith" {
		t.Errorf("ann after changes = %v", a)
	}
	if v, ok := a["mail"]; !ok || v != nil {
		t.Errorf("cleared mail must be null, got %v (present %v)", v, ok)
	}
	if v, ok := a["proxyAddresses"].([]any); !ok || len(v) != 0 {
		t.Errorf("cleared proxyAddresses must be [], got %v", a["proxyAddresses"])
	}
	if got["u-01"]["@removed"].(map[string]any)["reason"] != "changed" || got["u-02"]["@removed"].(map[string]any)["reason"] != "deleted" {
		t.Errorf("removals: %v / %v", got["u-01"], got["u-02"])
	}
	if got["u-bin"]["@removed"] != nil || got["u-bin"]["userPrincipalName"] != "bin@contoso.example" {
		t.Errorf("restored user must reappear in full: %v", got["u-bin"])
	}
}

func TestGroupsDeltaMembers(t *testing.T) {
	tn, _ := newTestTenant(t, WithMemberChunk(4))
	tok := appToken(t, tn)
	seedUsers(tn, 11)
	var all []string
	for i := range 10 {
		all = append(all, fmt.Sprintf("u-%02d", i))
	}
	tn.PutGroup(Group{ID: "g-eu", DisplayName: "Sales EU", SecurityEnabled: true, Members: []string{"u-00"}})
	tn.PutGroup(Group{ID: "g-big", DisplayName: "Big", Mail: "big@contoso.example", MailEnabled: true, GroupTypes: []string{"Unified"},
		Members: append(slices.Clone(all), "g-eu")})
	tn.PutGroup(Group{ID: "g-empty", DisplayName: "Empty"})

	full := runRound(t, tn, tok, groupsDelta(tn))
	repeats := 0
	for _, id := range full.ids() {
		if id == "g-big" {
			repeats++
		}
	}
	if repeats != 3 {
		t.Errorf("11 members in chunks of 4 should repeat the group 3 times, got %d", repeats)
	}
	big := full.members("g-big")
	if len(big) != 11 || big["u-05"] || !slices.Contains(full.ids(), "g-empty") {
		t.Fatalf("merged membership %v", big)
	}
	if _, has := full.byID()["g-empty"]["members@delta"]; has {
		t.Errorf("a group without members has no members@delta key")
	}
	for _, o := range full.objects {
		for _, x := range asSlice(o["members@delta"]) {
			e := x.(map[string]any)
			want := "#microsoft.graph.user"
			if strings.HasPrefix(e["id"].(string), "g-") {
				want = "#microsoft.graph.group"
			}
			if e["@odata.type"] != want {
				t.Errorf("member %v has type %v", e["id"], e["@odata.type"])
			}
		}
	}

	tn.RemoveMember("g-big", "u-03")
	tn.AddMember("g-big", "u-10")
	tn.AddMember("g-eu", "u-09")
	tn.RemoveMember("g-eu", "u-09") // added and removed: the last change wins
	tn.DeleteGroup("g-empty")
	tn.SoftDelete("u-04") // soft delete keeps memberships and is not a member change
	inc := runRound(t, tn, tok, full.deltaLink)
	if m := inc.members("g-big"); len(m) != 2 || !m["u-03"] || m["u-10"] {
		t.Errorf("g-big member changes %v", m)
	}
	if m := inc.members("g-eu"); len(m) != 1 || !m["u-09"] {
		t.Errorf("g-eu member changes %v", m)
	}
	if rm, _ := inc.byID()["g-empty"]["@removed"].(map[string]any); rm["reason"] != "deleted" {
		t.Errorf("deleted group: %v", inc.byID()["g-empty"])
	}
	if g := inc.byID()["g-big"]; g["displayName"] != "Big" || g["mail"] != "big@contoso.example" {
		t.Errorf("a group with member changes carries its selected properties: %v", g)
	}

	// A full round leaves soft-deleted users out of memberships.
	again := runRound(t, tn, tok, groupsDelta(tn))
	if m := again.members("g-big"); len(m) != 10 || m["u-04"] || m["u-03"] {
		t.Errorf("second full round membership %v", m)
	}
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func TestDeltaInjections(t *testing.T) {
	tn, _ := newTestTenant(t)
	tok := appToken(t, tn)
	seedUsers(tn, 2)
	tn.InjectEmptyPage()
	tn.InjectReplay()
	r := runRound(t, tn, tok, usersDelta(tn))
	if r.pages != 2 {
		t.Errorf("one page of data plus an injected empty page: %d pages", r.pages)
	}
	if ids := r.ids(); len(ids) != 3 || ids[0] != ids[2] {
		t.Errorf("replay should serve the first object again last: %v", ids)
	}
	// One-shot: the next round is clean.
	if r2 := runRound(t, tn, tok, usersDelta(tn)); r2.pages != 1 || len(r2.objects) != 2 {
		t.Errorf("injections must be one-shot: %d pages, %v", r2.pages, r2.ids())
	}
}

func TestDeltaLatestAndDefaultSelect(t *testing.T) {
	tn, _ := newTestTenant(t)
	tok := appToken(t, tn)
	seedUsers(tn, 4)
	r := runRound(t, tn, tok, tn.GraphURL()+"/v1.0/users/microsoft.graph.delta?$deltatoken=latest")
	if len(r.objects) != 0 || !strings.Contains(r.deltaLink, "/v1.0/users/microsoft.graph.delta?$deltatoken=") {
		t.Fatalf("latest: %v %s", r.ids(), r.deltaLink)
	}
	tn.PutUser(User{ID: "u-00", UserPrincipalName: "renamed@contoso.example", AccountEnabled: true})
	inc := runRound(t, tn, tok, r.deltaLink)
	o := inc.byID()["u-00"]
	if len(inc.objects) != 1 || o["userPrincipalName"] != "renamed@contoso.example" {
		t.Fatalf("after latest: %v", inc.objects)
	}
	if _, has := o["accountEnabled"]; has {
		t.Errorf("accountEnabled is not in the default property set: %v", o)
	}
}

func TestDeltaFilter(t *testing.T) {
	tn, _ := newTestTenant(t)
	tok := appToken(t, tn)
	seedUsers(tn, 6)
	r := runRound(t, tn, tok, usersDelta(tn)+"&$filter="+url.QueryEscape("id eq 'u-01' or id eq 'u-04'"))
	if ids := r.ids(); !slices.Equal(ids, []string{"u-01", "u-04"}) {
		t.Fatalf("filtered round %v", ids)
	}
	tn.PutUser(User{ID: "u-02", UserPrincipalName: "x@contoso.example", AccountEnabled: true})
	tn.PutUser(User{ID: "u-04", UserPrincipalName: "y@contoso.example", AccountEnabled: true})
	if ids := runRound(t, tn, tok, r.deltaLink).ids(); !slices.Equal(ids, []string{"u-04"}) {
		t.Fatalf("the filter is kept in the delta token: %v", ids)
	}
}

func TestGraphRefusals(t *testing.T) {
	tn, _ := newTestTenant(t)
	tok := appToken(t, tn)
	seedUsers(tn, 5)
	first, body, _ := graphGet(t, tn, tok, usersDelta(tn))
	if first != 200 {
		t.Fatal(body)
	}
	next := body["@odata.nextLink"].(string)
	tamper := func(link string) string {
		i := strings.Index(link, "token=") + len("token=") + 5
		c := link[i]
		if c == 'A' {
			c = 'B'
		} else {
			c = 'A'
		}
		return link[:i] + string(c) + link[i+1:]
	}
	// forge edits a token's payload into other valid JSON, keeping the
	// signature: only the HMAC can tell.
	forge := func(link string) string {
		i := strings.Index(link, "token=") + len("token=")
		payload, sig, _ := strings.Cut(link[i:], ".")
		js, err := base64.RawURLEncoding.DecodeString(payload)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(js, &m); err != nil {
			t.Fatal(err)
		}
		m["q"], m["p"] = 0, 0
		js, _ = json.Marshal(m)
		return link[:i] + base64.RawURLEncoding.EncodeToString(js) + "." + sig
	}
	last := runRound(t, tn, tok, usersDelta(tn)).deltaLink
	groupsLink := strings.Replace(last, "/users/", "/groups/", 1)
	cases := []struct {
		name   string
		url    string
		status int
		code   string
	}{
		{"$top", usersDelta(tn) + "&$top=5", 400, "Request_UnsupportedQuery"},
		{"$expand", tn.GraphURL() + "/v1.0/groups/delta?$expand=members", 400, "Request_UnsupportedQuery"},
		{"$orderby", usersDelta(tn) + "&$orderby=displayName", 400, "Request_UnsupportedQuery"},
		{"unknown parameter", usersDelta(tn) + "&foo=1", 400, "Request_UnsupportedQuery"},
		{"unknown property", tn.GraphURL() + "/v1.0/users/delta?$select=id,favouriteColour", 400, "BadRequest"},
		{"members on users", tn.GraphURL() + "/v1.0/users/delta?$select=id,members", 400, "BadRequest"},
		{"filter not by id", usersDelta(tn) + "&$filter=" + url.QueryEscape("displayName eq 'x'"), 400, "Request_UnsupportedQuery"},
		{"tampered skiptoken", tamper(next), 400, "BadRequest"},
		{"tampered deltatoken", tamper(last), 400, "BadRequest"},
		{"forged skiptoken", forge(next), 400, "BadRequest"},
		{"forged deltatoken", forge(last), 400, "BadRequest"},
		{"parameter added to nextLink", next + "&$select=id", 400, "BadRequest"},
		{"parameter added to deltaLink", last + "&$top=10", 400, "BadRequest"},
		{"users token on groups", groupsLink, 400, "BadRequest"},
		{"unknown resource", tn.GraphURL() + "/v1.0/devices/delta", 400, "BadRequest"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body, _ := graphGet(t, tn, tok, c.url)
			if status != c.status || graphCode(body) != c.code {
				t.Fatalf("got %d %v, want %d %s", status, body, c.status, c.code)
			}
			inner, _ := body["error"].(map[string]any)["innerError"].(map[string]any)
			if inner["request-id"] == "" || inner["date"] == "" {
				t.Errorf("error body lacks innerError: %v", body)
			}
		})
	}
}

func TestGraphBearer(t *testing.T) {
	tn, clk := newTestTenant(t)
	tn.AddApp(App{ClientID: "app-users", Secret: "s", Roles: []string{"User.Read.All"}})
	tn.SetAccessTokenLifetime(10 * time.Minute)
	tok := appToken(t, tn)
	usersOnly := postForm(t, tn, tn.tokenURL(), formType, form("grant_type", "client_credentials", "client_id", "app-users",
		"client_secret", "s", "scope", graphScope)).body["access_token"].(string)
	other := New(t, WithClock(clk), WithTenantID("00000000-0000-4000-8000-0000000000bb"))
	other.AddApp(App{ClientID: "app-1", Secret: "s3cret", Roles: allGraphs})
	foreign := postForm(t, other, other.tokenURL(), formType, form("grant_type", "client_credentials", "client_id", "app-1",
		"client_secret", "s3cret", "scope", graphScope)).body["access_token"].(string)
	cases := []struct {
		name, token, url string
		advance          time.Duration
		status           int
		code             string
	}{
		{"no token", "", usersDelta(tn), 0, 401, "InvalidAuthenticationToken"},
		{"garbage token", "not-a-jwt", usersDelta(tn), 0, 401, "InvalidAuthenticationToken"},
		{"other tenant's token", foreign, usersDelta(tn), 0, 401, "InvalidAuthenticationToken"},
		{"users role reads users", usersOnly, usersDelta(tn), 0, 200, ""},
		{"users role cannot read groups", usersOnly, groupsDelta(tn), 0, 403, "Authorization_RequestDenied"},
		{"no organization role", tok, tn.GraphURL() + "/v1.0/organization", 0, 403, "Authorization_RequestDenied"},
		{"valid until expiry", tok, usersDelta(tn), 9 * time.Minute, 200, ""},
		{"expired", tok, usersDelta(tn), time.Minute, 401, "InvalidAuthenticationToken"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk.Advance(c.advance)
			status, body, hdr := graphGet(t, tn, c.token, c.url)
			if status != c.status || graphCode(body) != c.code {
				t.Fatalf("got %d %v, want %d %s", status, body, c.status, c.code)
			}
			if status == 401 && hdr.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		})
	}
}

func TestDeltaExpiryAndReset(t *testing.T) {
	tn, clk := newTestTenant(t)
	tn.SetAccessTokenLifetime(30 * 24 * time.Hour)
	tok := appToken(t, tn)
	seedUsers(tn, 4)
	link := runRound(t, tn, tok, usersDelta(tn)).deltaLink

	clk.Advance(6 * 24 * time.Hour)
	link = runRound(t, tn, tok, link).deltaLink // six days: still fine, and renewed
	clk.Advance(7*24*time.Hour + time.Second)
	status, body, _ := graphGet(t, tn, tok, link)
	if status != 400 || graphCode(body) != "syncStateNotFound" {
		t.Fatalf("after 7 days: %d %v", status, body)
	}

	link = runRound(t, tn, tok, usersDelta(tn)).deltaLink
	tn.ExpireDeltaTokens()
	if status, body, _ := graphGet(t, tn, tok, link); status != 400 || graphCode(body) != "syncStateNotFound" {
		t.Fatalf("after ExpireDeltaTokens: %d %v", status, body)
	}
	link = runRound(t, tn, tok, usersDelta(tn)).deltaLink
	if status, _, _ := graphGet(t, tn, tok, link); status != 200 {
		t.Fatalf("a token issued after ExpireDeltaTokens must work: %d", status)
	}

	_, page1, _ := graphGet(t, tn, tok, usersDelta(tn))
	next := page1["@odata.nextLink"].(string)
	tn.ResetSyncState()
	for _, u := range []string{link, next} {
		status, body, hdr := graphGet(t, tn, tok, u)
		if status != 410 {
			t.Fatalf("after ResetSyncState: %d %v", status, body)
		}
		loc := hdr.Get("Location")
		if !strings.Contains(loc, "/v1.0/users/delta?") || !strings.Contains(loc, "%24deltatoken=&") && !strings.HasSuffix(loc, "%24deltatoken=") {
			t.Fatalf("Location %q", loc)
		}
		r := runRound(t, tn, tok, loc)
		if len(r.byID()) != 4 || r.byID()["u-00"]["accountEnabled"] != true {
			t.Fatalf("following Location restarts the full round with the same $select: %v", r.objects)
		}
	}
}

func TestThrottle(t *testing.T) {
	tn, _ := newTestTenant(t)
	tok := appToken(t, tn)
	seedUsers(tn, 2)
	cases := []struct {
		status     int
		retryAfter time.Duration
		header     string
		code       string
	}{
		{429, 3 * time.Second, "3", "TooManyRequests"},
		{429, 0, "", "TooManyRequests"},
		{503, 1500 * time.Millisecond, "2", "serviceNotAvailable"},
		{503, 0, "", "serviceNotAvailable"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.status, c.retryAfter), func(t *testing.T) {
			before := tn.Requests()
			tn.Throttle(2, c.status, c.retryAfter)
			for range 2 {
				status, body, hdr := graphGet(t, tn, tok, usersDelta(tn))
				if status != c.status || graphCode(body) != c.code || hdr.Get("Retry-After") != c.header {
					t.Fatalf("got %d %v Retry-After %q", status, body, hdr.Get("Retry-After"))
				}
			}
			if status, _, _ := graphGet(t, tn, tok, usersDelta(tn)); status != 200 {
				t.Fatalf("after n throttled requests: %d", status)
			}
			if got := tn.Requests() - before; got != 3 {
				t.Errorf("Requests counted %d, want 3", got)
			}
		})
	}
}

func TestUsersListAndOrganization(t *testing.T) {
	tn, _ := newTestTenant(t)
	tn.AddApp(App{ClientID: "app-dir", Secret: "d", Roles: []string{"Directory.Read.All"}})
	tok := postForm(t, tn, tn.tokenURL(), formType, form("grant_type", "client_credentials", "client_id", "app-dir",
		"client_secret", "d", "scope", graphScope)).body["access_token"].(string)
	seedUsers(tn, 3)
	tn.SoftDelete("u-00")
	status, body, hdr := graphGet(t, tn, tok, tn.GraphURL()+"/v1.0/users?$top=1&$select=id,mail,proxyAddresses")
	if status != 200 || len(body["value"].([]any)) != 1 || hdr.Get("x-ms-resource-unit") != "1" {
		t.Fatalf("users page: %d %v", status, body)
	}
	if v := body["value"].([]any)[0].(map[string]any); v["id"] != "u-01" {
		t.Errorf("the soft-deleted user is not listed: %v", v)
	}
	next := body["@odata.nextLink"].(string)
	status, body, _ = graphGet(t, tn, tok, next)
	if status != 200 || body["value"].([]any)[0].(map[string]any)["id"] != "u-02" || body["@odata.nextLink"] != nil {
		t.Fatalf("second users page: %d %v", status, body)
	}
	for _, bad := range []string{"$top=0", "$top=1000", "$filter=x"} {
		if status, _, _ := graphGet(t, tn, tok, tn.GraphURL()+"/v1.0/users?"+bad); status != 400 {
			t.Errorf("%s: %d", bad, status)
		}
	}
	status, body, _ = graphGet(t, tn, tok, tn.GraphURL()+"/v1.0/organization")
	org := body["value"].([]any)[0].(map[string]any)
	if status != 200 || org["id"] != tn.ID() {
		t.Fatalf("organization: %d %v", status, body)
	}
}

func TestGenerate(t *testing.T) {
	tn, _ := newTestTenant(t, WithPageSize(500))
	tok := appToken(t, tn)
	users, groups := tn.Generate(2000, 20, 7)
	users2, _ := New(t).Generate(2000, 20, 7)
	if !slices.Equal(users, users2) {
		t.Fatal("the same seed must give the same directory")
	}
	r := runRound(t, tn, tok, usersDelta(tn))
	if len(r.byID()) != 2000 || len(r.objects) != 2000 {
		t.Fatalf("full round of generated users: %d", len(r.objects))
	}
	g := runRound(t, tn, tok, groupsDelta(tn))
	total := 0
	for _, id := range groups {
		total += len(g.members(id))
	}
	if total != 2000+2 { // every user once, plus two nested groups
		t.Fatalf("generated memberships %d", total)
	}
	before := tn.Requests()
	for _, id := range users[:100] {
		u, _ := tn.User(id)
		u.DisplayName += " (changed)"
		tn.PutUser(u)
	}
	inc := runRound(t, tn, tok, r.deltaLink)
	if len(inc.objects) != 100 || tn.Requests()-before != 1 {
		t.Fatalf("100 changes: %d objects in %d requests", len(inc.objects), tn.Requests()-before)
	}
}

// BenchmarkGenerate fills the benchmark's tenant: 100k users, 1k groups.
func BenchmarkGenerate(b *testing.B) {
	for b.Loop() {
		New(b).Generate(100_000, 1_000, 1)
	}
}

// BenchmarkFullUsersRound pages through 100k generated users at Graph's
// usual page size: the fake's share of the sync benchmark.
func BenchmarkFullUsersRound(b *testing.B) {
	tn := New(b, WithPageSize(999))
	tn.AddApp(App{ClientID: "app-1", Secret: "s3cret", Roles: allGraphs})
	tn.Generate(100_000, 1_000, 1)
	tok := appToken(b, tn)
	for b.Loop() {
		runRound(b, tn, tok, usersDelta(tn))
	}
}
