package google

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/cloudapi"
	"github.com/dirgate/dirgate/internal/fakecloud"
	"github.com/dirgate/dirgate/internal/fakegoogle"
)

// TestMapping: users with their addresses (primary, aliases, alias-domain
// aliases within email_domains), names, org unit and state; suspended and
// archived users served disabled; groups with USER and GROUP members as
// DNs (a loop included, a self-membership dropped; Members lists a user
// out of scope, the served member attribute does not), EXTERNAL and
// CUSTOMER members as values, and the etag and time of the member list.
func TestMapping(t *testing.T) {
	a := newAccount(t)
	dan := a.user(fakegoogle.User{PrimaryEmail: "dan@example.test", GivenName: "Dan", FamilyName: "Smith", OrgUnitPath: "/Sales",
		Aliases: []string{"d.smith@example.test"}, NonEditableAliases: []string{"dan@alias.example.test"}})
	eve := a.user(fakegoogle.User{PrimaryEmail: "eve@example.test", Suspended: true})
	old := a.user(fakegoogle.User{PrimaryEmail: "old@example.test", Archived: true})
	outside := a.user(fakegoogle.User{PrimaryEmail: "x@alias.example.test"}) // no address in email_domains
	g1, g2 := "g1", "g2"
	a.group(fakegoogle.Group{ID: g1, Email: "sales@example.test", Name: "Sales", Aliases: []string{"team@example.test"}, Members: []fakegoogle.Member{
		{ID: dan, Type: "USER"}, {ID: g2, Type: "GROUP"}, {ID: g1, Type: "GROUP"}, {ID: outside, Type: "USER"},
		{Email: "Partner@External.test", Type: "EXTERNAL"}, {ID: a.ID(), Type: "CUSTOMER"},
	}})
	a.group(fakegoogle.Group{ID: g2, Email: "sales-eu@example.test", Name: "Sales EU", Members: []fakegoogle.Member{{ID: eve, Type: "USER"}, {ID: g1, Type: "GROUP"}}})

	got, _ := full(t, a.source(t, a.conn), nil, nil)
	if _, ok := got[outside]; ok {
		t.Error("a user without an address in email_domains was synced")
	}
	u := got[dan]
	if u == nil {
		t.Fatalf("dan missing: %v", got)
	}
	if want := []string{"dan@example.test", "d.smith@example.test"}; !slices.Equal(u.Addresses, want) {
		t.Errorf("addresses %v, want %v", u.Addresses, want)
	}
	if u.DN != "cn="+dan+",ou=users,o=my_customer" || u.Disabled ||
		!slices.Equal(attr(u, "cn"), []string{"Dan Smith", dan}) || attr(u, "sn")[0] != "Smith" || attr(u, "orgUnitPath")[0] != "/Sales" ||
		!slices.Equal(attr(u, "nonEditableAliases"), []string{"dan@alias.example.test"}) || len(attr(u, "etag")) != 1 {
		t.Errorf("dan = %+v", u)
	}
	for _, id := range []string{eve, old} {
		if !got[id].Disabled {
			t.Errorf("%s: suspended or archived user not disabled", id)
		}
	}
	s1 := got[g1]
	served := []string{"cn=" + dan + ",ou=users,o=my_customer", "cn=g2,ou=groups,o=my_customer"}
	all := []string{served[0], "cn=" + outside + ",ou=users,o=my_customer", served[1]}
	if !slices.Equal(s1.Members, all) || !slices.Equal(attr(s1, "member"), served) || len(attr(s1, "etag")) != 1 ||
		!slices.Equal(attr(s1, "membersReadAt"), []string{"20300106080000Z"}) || !slices.Equal(attr(s1, "externalMember"), []string{"partner@external.test"}) ||
		!slices.Equal(attr(s1, "customerMember"), []string{a.ID()}) || !slices.Equal(s1.Addresses, []string{"sales@example.test", "team@example.test"}) {
		t.Errorf("sales = %+v", s1)
	}
	if m := got[g2].Members; !slices.Contains(m, "cn=g1,ou=groups,o=my_customer") || !slices.Contains(m, "cn="+eve+",ou=users,o=my_customer") {
		t.Errorf("sales-eu members %v", m)
	}
}

// TestPagingAndOrgUnits: more users, groups and members than one page
// holds are all read, and org_units keeps the users of those units and
// beneath them.
func TestPagingAndOrgUnits(t *testing.T) {
	a := newAccount(t)
	var ids []string
	for i := range 1203 {
		ou := []string{"/Sales", "/Sales/EMEA", "/Salesforce", "/"}[i%4]
		ids = append(ids, a.user(fakegoogle.User{PrimaryEmail: fmt.Sprintf("u%d@example.test", i), OrgUnitPath: ou}))
	}
	members := make([]fakegoogle.Member, 450)
	for i := range members {
		members[i] = fakegoogle.Member{ID: ids[i], Type: "USER"}
	}
	a.group(fakegoogle.Group{ID: "big", Email: "big@example.test", Members: members})
	for i := range 210 {
		a.group(fakegoogle.Group{Email: fmt.Sprintf("g%d@example.test", i)})
	}
	got, _ := full(t, a.source(t, a.conn), nil, nil)
	if len(got) != 1203+211 || len(got["big"].Members) != 450 {
		t.Fatalf("%d entries, big has %d members", len(got), len(got["big"].Members))
	}
	c := *a.conn
	c.Google.OrgUnits = []string{"/Sales"}
	got, _ = full(t, a.source(t, &c), nil, nil)
	users := 0
	for _, e := range got {
		if e.DN[len(e.DN)-len("ou=users,o=my_customer"):] == "ou=users,o=my_customer" {
			users++
			if ou := attr(e, "orgUnitPath")[0]; ou != "/Sales" && ou != "/Sales/EMEA" {
				t.Errorf("user in %s synced", ou)
			}
		}
	}
	if users != 602 {
		t.Errorf("%d users in /Sales and beneath, want 602", users)
	}
}

// TestEtagSparesMemberListings: a second listing does not list the
// members of groups whose etag is unchanged, does list those of a changed
// group, and gives the same entries; a stale list is read again.
func TestEtagSparesMemberListings(t *testing.T) {
	a := newAccount(t)
	dan := a.user(fakegoogle.User{PrimaryEmail: "dan@example.test"})
	eve := a.user(fakegoogle.User{PrimaryEmail: "eve@example.test"})
	for i := range 5 {
		a.group(fakegoogle.Group{ID: fmt.Sprint("g", i), Email: fmt.Sprintf("g%d@example.test", i), Members: []fakegoogle.Member{{ID: dan, Type: "USER"}}})
	}
	s := a.source(t, a.conn)
	first, l := full(t, s, nil, nil)
	before := a.Requests()
	a.AddMember("g3", fakegoogle.Member{ID: eve, Type: "USER"})
	second, l2 := full(t, s, l.Cursor, first)
	// users and groups lists, and the members of g3 only.
	if n := a.Requests() - before; n != 3 {
		t.Errorf("%d requests, want 3 (users, groups, members of the changed group)", n)
	}
	if len(second["g3"].Members) != 2 || !slices.Equal(second["g1"].Members, first["g1"].Members) {
		t.Errorf("g3 %v, g1 %v", second["g3"].Members, second["g1"].Members)
	}
	a.clk.Advance(25 * time.Hour)
	before = a.Requests()
	full(t, s, l2.Cursor, second)
	if n := a.Requests() - before; n != 2+5 {
		t.Errorf("%d requests after a day, want every member list read again", n)
	}
}

// TestMutationBetweenPages: a user deleted and one added while the users
// are paged through yield a listing without duplicates or errors; the
// next listing has the change.
func TestMutationBetweenPages(t *testing.T) {
	a := newAccount(t)
	var ids []string
	for i := range 1200 {
		ids = append(ids, a.user(fakegoogle.User{PrimaryEmail: fmt.Sprintf("u%04d@example.test", i)}))
	}
	a.MutateBetweenPages(func() {
		a.DeleteUser(ids[0])
		a.PutUser(fakegoogle.User{ID: "1", PrimaryEmail: "aaa@example.test"})
	})
	s := a.source(t, a.conn)
	full(t, s, nil, nil) // full fails t on a duplicate
	got, _ := full(t, s, nil, nil)
	if _, ok := got[ids[0]]; ok {
		t.Error("deleted user still listed")
	}
	if _, ok := got["1"]; !ok {
		t.Error("added user not listed")
	}
}

// TestQuotaBackoff: 403 userRateLimitExceeded and quotaExceeded, 429 and
// 503 are retried after a backoff on the clock; more failures than the
// retries allow fail the run.
func TestQuotaBackoff(t *testing.T) {
	for _, tc := range []struct {
		status int
		reason string
	}{{403, "userRateLimitExceeded"}, {403, "quotaExceeded"}, {429, "rateLimitExceeded"}, {503, "backendError"}} {
		a := newAccount(t)
		s := a.source(t, a.conn)
		a.Fail(3, tc.status, tc.reason)
		start := a.clk.Now()
		got, _ := full(t, s, nil, nil)
		if len(got) != 0 || a.clk.Now().Sub(start) < 3*time.Second {
			t.Errorf("%d %s: %d entries after %s of backoff", tc.status, tc.reason, len(got), a.clk.Now().Sub(start))
		}
		a.Fail(cloudapi.DefaultMaxRetries+1, tc.status, tc.reason)
		_, err := s.Full(context.Background(), func(*cache.Entry) error { return nil })
		if !errors.Is(err, cloudapi.ErrRetriesExhausted) || (tc.status == 403 && !strings.Contains(err.Error(), "requests_per_minute")) {
			t.Errorf("%d %s: %v, want retries exhausted", tc.status, tc.reason, err)
		}
	}
	// A 403 that is no quota is not retried, and says what to fix.
	a := newAccount(t)
	a.Fail(1, http.StatusForbidden, "forbidden")
	_, err := a.source(t, a.conn).Full(context.Background(), func(*cache.Entry) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "super administrator") || a.Requests() != 1 {
		t.Errorf("403 forbidden: %v after %d requests", err, a.Requests())
	}
}

// TestBudget: with the fake's quota below the default and the budget
// below the quota, a listing needing several minutes of requests never
// sends more than the budget in any minute, and is never refused.
func TestBudget(t *testing.T) {
	a := newAccount(t)
	for i := range 40 {
		a.group(fakegoogle.Group{Email: fmt.Sprintf("g%d@example.test", i)})
	}
	a.RateLimit(12)
	c := *a.conn
	c.Google.RequestsPerMinute = 10
	full(t, a.source(t, &c), nil, nil)
	times := a.RequestTimes()
	if len(times) != 2+40 {
		t.Fatalf("%d requests, want 42 (none refused)", len(times))
	}
	for i := 10; i < len(times); i++ {
		if d := times[i].Sub(times[i-10]); d < time.Minute {
			t.Fatalf("requests %d and %d are %s apart: 11 requests in one minute", i-10, i, d)
		}
	}
	if span := times[len(times)-1].Sub(times[0]); span > 5*time.Minute {
		t.Errorf("42 requests at 10 a minute took %s", span)
	}
}

// TestTokenRenewedOnTheClock: a run longer than an access token's life
// gets a new token by the fake clock, without failing.
func TestTokenRenewedOnTheClock(t *testing.T) {
	a := newAccount(t)
	for i := range 30 {
		a.group(fakegoogle.Group{Email: fmt.Sprintf("g%d@example.test", i)})
	}
	a.SetAccessTokenLifetime(3 * time.Minute)
	c := *a.conn
	c.Google.RequestsPerMinute = 5 // 32 requests: about six minutes
	full(t, a.source(t, &c), nil, nil)
	if n := a.TokenRequests(); n < 2 {
		t.Errorf("%d token requests in a six-minute run of three-minute tokens", n)
	}
}

// TestDelegationMissing: a key without domain-wide delegation fails with
// the fix.
func TestDelegationMissing(t *testing.T) {
	a := newAccount(t)
	a.SetDelegation(a.clientID)
	_, err := a.source(t, a.conn).Full(context.Background(), func(*cache.Entry) error { return nil })
	var te *TokenError
	if !errors.As(err, &te) || te.Code != "unauthorized_client" || !strings.Contains(err.Error(), "Domain-wide delegation") {
		t.Errorf("err = %v", err)
	}
}

// TestFullEmitsUsersWhileMembersRead: users are emitted as their pages
// come, while the member lists are still pending, so that the engine
// writes them meanwhile; the groups come last, complete.
func TestFullEmitsUsersWhileMembersRead(t *testing.T) {
	a := newAccount(t)
	var users []string
	for i := range 5 {
		users = append(users, a.user(fakegoogle.User{PrimaryEmail: fmt.Sprintf("u%d@example.test", i)}))
	}
	var groups []string
	for i := range 8 {
		groups = append(groups, a.group(fakegoogle.Group{Email: fmt.Sprintf("g%d@example.test", i),
			Members: []fakegoogle.Member{{ID: users[i%5], Type: "USER"}}}))
	}
	hc, hold := fakecloud.NewHold(a.HTTPClient(), "/members", 10*time.Second)
	s, err := New(a.conn, nil, cloudapi.WithHTTPClient(hc), cloudapi.WithClock(a.clk))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*cache.Entry{}
	_, err = s.Full(context.Background(), func(e *cache.Entry) error {
		if e.Kind == cache.KindUser {
			hold.Release() // the member lists may be read
		}
		got[e.ID] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if hold.TimedOut() {
		t.Error("no user was emitted before the member lists were read")
	}
	if len(got) != 13 || len(got[groups[7]].Members) != 1 {
		t.Errorf("%d entries, want 13 with every group's member", len(got))
	}
}
