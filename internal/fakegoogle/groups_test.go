package fakegoogle

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"
)

func TestGroupsAndMembers(t *testing.T) {
	f := newFixture(t)
	bearer := f.bearer(t)
	groups := f.get(t, bearer, "groups", url.Values{"customer": {"my_customer"}})
	// Listed by email: "sales-eu@" sorts before "sales@".
	if got := ids(groups.body, "groups"); !slices.Equal(got, []string{"grp002", "grp001"}) {
		t.Fatalf("groups %v", groups.body)
	}
	sales := groups.body["groups"].([]any)[1].(map[string]any)
	if sales["directMembersCount"] != "4" || fmt.Sprint(sales["aliases"]) != "[team-sales@example.test]" || sales["etag"] == nil {
		t.Fatalf("sales %v", sales)
	}
	for _, key := range []string{"grp001", "sales@example.test", "team-sales@example.test"} {
		r := f.get(t, bearer, "groups/"+key+"/members", nil)
		if r.status != 200 || len(ids(r.body, "members")) != 3 { // the CUSTOMER and GROUP members have IDs; EXTERNAL none
			t.Fatalf("members of %s: %d %v", key, r.status, r.body)
		}
	}
	r := f.get(t, bearer, "groups/grp001/members", nil)
	type m struct{ id, email, role, typ, status string }
	var got []m
	for _, it := range r.body["members"].([]any) {
		o := it.(map[string]any)
		s := func(k string) string { v, _ := o[k].(string); return v }
		got = append(got, m{s("id"), s("email"), s("role"), s("type"), s("status")})
	}
	want := []m{
		{"C0fake01", "", "MEMBER", "CUSTOMER", ""},
		{danID, "dan@example.test", "OWNER", "USER", "ACTIVE"},
		{"", "partner@external.test", "MEMBER", "EXTERNAL", "ACTIVE"},
		{"grp002", "sales-eu@example.test", "MEMBER", "GROUP", ""},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("members\n got %v\nwant %v", got, want)
	}
	eu := f.get(t, bearer, "groups/grp002/members/"+eveID, nil)
	if eu.body["status"] != "SUSPENDED" || eu.body["email"] != "eve@example.test" {
		t.Fatalf("eve as member %v", eu.body)
	}
	// Derived membership follows the loop grp001 -> grp002 -> grp001 once.
	derived := f.get(t, bearer, "groups/grp001/members", url.Values{"includeDerivedMembership": {"true"}})
	if got := ids(derived.body, "members"); len(got) != 5 || !slices.Contains(got, eveID) {
		t.Fatalf("derived %v", got)
	}
	owners := f.get(t, bearer, "groups/grp001/members", url.Values{"roles": {"OWNER"}})
	if got := ids(owners.body, "members"); !slices.Equal(got, []string{danID}) {
		t.Fatalf("owners %v", got)
	}
	byUser := f.get(t, bearer, "groups", url.Values{"userKey": {"eve@example.test"}})
	if got := ids(byUser.body, "groups"); !slices.Equal(got, []string{"grp002"}) {
		t.Fatalf("groups of eve %v", byUser.body)
	}
	byDomain := f.get(t, bearer, "groups", url.Values{"domain": {"alias.example.test"}})
	if _, has := byDomain.body["groups"]; byDomain.status != 200 || has {
		t.Fatalf("groups in alias domain %v", byDomain.body)
	}
	for _, path := range []string{"groups/nope/members", "groups/nope", "groups/grp001/members/nobody@example.test"} {
		if r := f.get(t, bearer, path, nil); r.status != 404 || r.reason() != "notFound" {
			t.Fatalf("%s: %d %v", path, r.status, r.body)
		}
	}
	f.c.RemoveMember("grp001", "partner@external.test")
	f.c.AddMember("grp001", Member{ID: eveID, Type: "USER", Role: "MANAGER"})
	after := ids(f.get(t, bearer, "groups/grp001/members", nil).body, "members")
	if !slices.Contains(after, eveID) || len(f.get(t, bearer, "groups/grp001/members", nil).body["members"].([]any)) != 4 {
		t.Fatalf("after change %v", after)
	}
	f.c.DeleteGroup("grp002")
	if r := f.get(t, bearer, "groups/grp002", nil); r.status != 404 {
		t.Fatalf("deleted group: %d", r.status)
	}
}

func TestMembersPaging(t *testing.T) {
	f := newFixture(t)
	users := addUsers(f, 9)
	for _, id := range users {
		f.c.AddMember("grp002", Member{ID: id, Type: "USER"})
	}
	bearer := f.bearer(t)
	f.c.MutateBetweenPages(func() { f.c.RemoveMember("grp002", users[8]) })
	all, pages := f.listAll(t, bearer, "groups/grp002/members", "members", url.Values{"maxResults": {"4"}})
	if pages != 3 || len(all) != 10 || slices.Contains(all, users[8]) {
		t.Fatalf("%d pages: %v", pages, all)
	}
}

// Quota faults run on the fake clock: the per-minute limit resets with the
// next minute; injected failures come without Retry-After.
func TestQuotaFaults(t *testing.T) {
	f := newFixture(t)
	bearer := f.bearer(t)
	q := url.Values{"customer": {"my_customer"}}
	f.c.RateLimit(3)
	for i := range 3 {
		if r := f.get(t, bearer, "users", q); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := f.get(t, bearer, "users", q)
	if r.status != 403 || r.reason() != "userRateLimitExceeded" || r.errorDomain() != "usageLimits" || r.header.Get("Retry-After") != "" {
		t.Fatalf("over the limit: %d %v %v", r.status, r.body, r.header)
	}
	f.clk.Advance(time.Minute)
	if r := f.get(t, bearer, "users", q); r.status != 200 {
		t.Fatalf("next minute: %d", r.status)
	}
	f.c.RateLimit(0)
	faults := []struct {
		status         int
		reason, domain string
		statusName     string
	}{
		{http.StatusTooManyRequests, "rateLimitExceeded", "usageLimits", "RESOURCE_EXHAUSTED"},
		{http.StatusServiceUnavailable, "backendError", "global", "UNAVAILABLE"},
		{http.StatusForbidden, "quotaExceeded", "usageLimits", "PERMISSION_DENIED"},
	}
	for _, tc := range faults {
		t.Run(tc.reason, func(t *testing.T) {
			f.c.Fail(2, tc.status, tc.reason)
			for range 2 {
				r := f.get(t, bearer, "users", q)
				e := r.body["error"].(map[string]any)
				if r.status != tc.status || r.reason() != tc.reason || r.errorDomain() != tc.domain || e["status"] != tc.statusName ||
					r.header.Get("Retry-After") != "" {
					t.Fatalf("%d %v", r.status, r.body)
				}
			}
			if r := f.get(t, bearer, "users", q); r.status != 200 {
				t.Fatalf("after the faults: %d", r.status)
			}
		})
	}
	before := f.c.Requests()
	f.get(t, bearer, "users", q)
	times := f.c.RequestTimes()
	if f.c.Requests() != before+1 || len(times) != before+1 || !times[len(times)-1].Equal(t0.Add(time.Minute)) {
		t.Fatalf("requests %d, times %v", f.c.Requests(), times[len(times)-1])
	}
}

func TestGenerate(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 5_000
	}
	c := New(t, WithDomains("example.test", "alias.example.test"))
	start := time.Now()
	users, groups := c.Generate(n, 200, 7)
	took := time.Since(start)
	if len(users) != n || len(groups) != 200 {
		t.Fatalf("%d users, %d groups", len(users), len(groups))
	}
	// Generous bound for a loaded 2-core machine: the benchmark must not
	// spend its time on fixtures.
	if took > 30*time.Second {
		t.Fatalf("Generate took %v", took)
	}
	u, ok := c.User(users[49])
	if !ok || !u.Suspended || len(u.NonEditableAliases) != 1 {
		t.Fatalf("user 49: %+v", u)
	}
	again := New(t, WithDomains("example.test"))
	if u2, _ := again.Generate(3, 1, 7); !slices.Equal(u2, users[:3]) {
		t.Fatal("same seed gave other IDs")
	}
}
