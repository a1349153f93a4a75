package fakegoogle

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// addUsers adds n plain users u00..; it returns their IDs in email order.
func addUsers(f *fixture, n int) []string {
	var out []string
	for i := range n {
		id := fmt.Sprintf("2%020d", i)
		f.c.PutUser(User{ID: id, PrimaryEmail: fmt.Sprintf("u%02d@example.test", i), GivenName: "U", FamilyName: fmt.Sprint(i)})
		out = append(out, id)
	}
	return out
}

func TestUsersPagingCompleteAndTamperProof(t *testing.T) {
	f := newFixture(t)
	addUsers(f, 6)
	bearer := f.bearer(t)
	q := url.Values{"customer": {"my_customer"}, "maxResults": {"2"}}
	all, pages := f.listAll(t, bearer, "users", "users", q)
	if len(all) != 9 || pages != 5 {
		t.Fatalf("%d users over %d pages, want 9 over 5", len(all), pages)
	}
	seen := map[string]bool{}
	for _, id := range all {
		if seen[id] {
			t.Fatalf("user %s listed twice", id)
		}
		seen[id] = true
	}
	first := f.get(t, bearer, "users", q)
	next := first.body["nextPageToken"].(string)
	if first.body["kind"] != "admin#directory#users" || first.body["etag"] == nil {
		t.Fatalf("page %v", first.body)
	}
	tampered := []byte(next)
	tampered[3] ^= 1
	bad := []struct {
		name  string
		query url.Values
	}{
		{"tampered", url.Values{"customer": {"my_customer"}, "pageToken": {string(tampered)}}},
		{"truncated", url.Values{"customer": {"my_customer"}, "pageToken": {next[:len(next)-2]}}},
		{"garbage", url.Values{"customer": {"my_customer"}, "pageToken": {"abc"}}},
		{"other query", url.Values{"customer": {"my_customer"}, "query": {"isSuspended=false"}, "pageToken": {next}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if r := f.get(t, bearer, "users", tc.query); r.status != 400 || r.reason() != "badRequest" {
				t.Fatalf("%d %v", r.status, r.body)
			}
		})
	}
	if r := f.get(t, bearer, "groups", url.Values{"customer": {"my_customer"}, "pageToken": {next}}); r.status != 400 {
		t.Fatalf("users token on groups: %d %v", r.status, r.body)
	}
	// Another page size on a later page is allowed.
	r := f.get(t, bearer, "users", url.Values{"customer": {"my_customer"}, "pageToken": {next}, "maxResults": {"500"}})
	if r.status != 200 || len(ids(r.body, "users")) != 7 || r.body["nextPageToken"] != nil {
		t.Fatalf("rest in one page: %d %v", r.status, r.body)
	}
	// An empty result has neither users nor nextPageToken.
	r = f.get(t, bearer, "users", url.Values{"customer": {"my_customer"}, "query": {"email:nobody*"}})
	if _, has := r.body["users"]; r.status != 200 || has || r.body["nextPageToken"] != nil {
		t.Fatalf("empty result: %v", r.body)
	}
}

func TestUsersParameters(t *testing.T) {
	f := newFixture(t)
	bearer := f.bearer(t)
	tests := []struct {
		name   string
		path   string
		query  url.Values
		status int
		reason string
	}{
		{"no customer or domain", "users", url.Values{}, 400, "badRequest"},
		{"other customer", "users", url.Values{"customer": {"C0other"}}, 400, "badRequest"},
		{"customer by ID", "users", url.Values{"customer": {"C0fake01"}}, 200, ""},
		{"own domain", "users", url.Values{"domain": {"example.test"}}, 200, ""},
		{"foreign domain", "users", url.Values{"domain": {"other.test"}}, 403, "forbidden"},
		{"maxResults 0", "users", url.Values{"customer": {"my_customer"}, "maxResults": {"0"}}, 400, "invalid"},
		{"maxResults 500", "users", url.Values{"customer": {"my_customer"}, "maxResults": {"500"}}, 200, ""},
		{"maxResults 501", "users", url.Values{"customer": {"my_customer"}, "maxResults": {"501"}}, 400, "invalid"},
		{"maxResults text", "users", url.Values{"customer": {"my_customer"}, "maxResults": {"ten"}}, 400, "invalid"},
		{"groups maxResults 201", "groups", url.Values{"customer": {"my_customer"}, "maxResults": {"201"}}, 400, "invalid"},
		{"members maxResults 201", "groups/grp001/members", url.Values{"maxResults": {"201"}}, 400, "invalid"},
		{"unknown parameter", "users", url.Values{"customer": {"my_customer"}, "$top": {"5"}}, 400, "invalid"},
		{"bad projection", "users", url.Values{"customer": {"my_customer"}, "projection": {"all"}}, 400, "invalid"},
		{"custom without mask", "users", url.Values{"customer": {"my_customer"}, "projection": {"custom"}}, 400, "invalid"},
		{"bad query", "users", url.Values{"customer": {"my_customer"}, "query": {"isSuspended:maybe"}}, 400, "invalid"},
		{"unknown query field", "users", url.Values{"customer": {"my_customer"}, "query": {"shoeSize=9"}}, 400, "invalid"},
		{"bad orderBy", "users", url.Values{"customer": {"my_customer"}, "orderBy": {"id"}}, 400, "invalid"},
		{"alt=proto", "users", url.Values{"customer": {"my_customer"}, "alt": {"proto"}}, 400, "invalid"},
		{"bad fields", "users", url.Values{"customer": {"my_customer"}, "fields": {"users(id"}}, 400, "invalid"},
		{"unknown user", "users/ghost@example.test", nil, 404, "notFound"},
		{"unknown path", "orgunits", nil, 404, "notFound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.get(t, bearer, tc.path, tc.query)
			if r.status != tc.status || (tc.reason != "" && r.reason() != tc.reason) {
				t.Fatalf("%d %v, want %d %s", r.status, r.body, tc.status, tc.reason)
			}
		})
	}
}

func TestUsersQueryAndShowDeleted(t *testing.T) {
	f := newFixture(t)
	bearer := f.bearer(t)
	f.c.PutUser(User{ID: "100000000000000000009", PrimaryEmail: "gone@example.test"})
	f.c.DeleteUser("100000000000000000009")
	tests := []struct {
		query url.Values
		want  []string
	}{
		{url.Values{"query": {"isSuspended=true"}}, []string{eveID}},
		{url.Values{"query": {"isSuspended=false"}}, []string{adminID, danID}},
		{url.Values{"query": {"orgUnitPath='/Sales'"}}, []string{danID, eveID}},
		{url.Values{"query": {"orgUnitPath=/Sales/EU isSuspended=true"}}, []string{eveID}},
		{url.Values{"query": {"email:da*"}}, []string{danID}},
		{url.Values{"query": {"isAdmin=true"}}, []string{adminID}},
		{url.Values{"orderBy": {"familyName"}, "sortOrder": {"DESCENDING"}}, []string{danID, eveID, adminID}},
		{url.Values{"showDeleted": {"true"}}, []string{"100000000000000000009"}},
	}
	for _, tc := range tests {
		t.Run(tc.query.Encode(), func(t *testing.T) {
			tc.query.Set("customer", "my_customer")
			r := f.get(t, bearer, "users", tc.query)
			if got := ids(r.body, "users"); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v (%d %v)", got, tc.want, r.status, r.body)
			}
		})
	}
	r := f.get(t, bearer, "users", url.Values{"customer": {"my_customer"}, "showDeleted": {"true"}})
	if del := r.body["users"].([]any)[0].(map[string]any); del["deletionTime"] != t0.Format(timeFormat) {
		t.Fatalf("deleted user %v", del)
	}
}

// A user object carries what a sync maps: aliases, non-editable aliases,
// suspension, names, etag.
func TestUserObject(t *testing.T) {
	f := newFixture(t)
	bearer := f.bearer(t)
	for _, key := range []string{danID, "dan@example.test", "d.smith@example.test"} {
		r := f.get(t, bearer, "users/"+key, nil)
		if r.status != 200 || r.body["id"] != danID {
			t.Fatalf("users/%s: %d %v", key, r.status, r.body)
		}
	}
	dan := f.get(t, bearer, "users/"+danID, nil).body
	name := dan["name"].(map[string]any)
	if name["fullName"] != "Dan Smith" || dan["orgUnitPath"] != "/Sales" || dan["suspended"] != false ||
		fmt.Sprint(dan["aliases"]) != "[d.smith@example.test]" || fmt.Sprint(dan["nonEditableAliases"]) != "[dan@alias.example.test]" ||
		!strings.HasPrefix(dan["etag"].(string), `"`) {
		t.Fatalf("dan %v", dan)
	}
	eve := f.get(t, bearer, "users/"+eveID, nil).body
	if eve["suspended"] != true || eve["suspensionReason"] != "ADMIN" {
		t.Fatalf("eve %v", eve)
	}
	if _, has := f.get(t, bearer, "users/"+adminID, nil).body["aliases"]; has {
		t.Fatal("aliases present on a user without any")
	}
}

func TestETagAndNotModified(t *testing.T) {
	f := newFixture(t)
	bearer := f.bearer(t)
	for _, path := range []string{"users/" + danID, "groups/grp001", "groups/grp001/members/" + danID} {
		t.Run(path, func(t *testing.T) {
			r := f.get(t, bearer, path, nil)
			etag := r.body["etag"].(string)
			if r.header.Get("ETag") != etag {
				t.Fatalf("header %q, body %q", r.header.Get("ETag"), etag)
			}
			if r := f.get(t, bearer, path, nil, "If-None-Match", etag); r.status != http.StatusNotModified || r.body != nil {
				t.Fatalf("If-None-Match: %d %v", r.status, r.body)
			}
			if r := f.get(t, bearer, path, nil, "If-None-Match", `"stale"`); r.status != 200 {
				t.Fatalf("stale etag: %d", r.status)
			}
		})
	}
	list := func() string {
		return f.get(t, bearer, "users", url.Values{"customer": {"my_customer"}}).body["etag"].(string)
	}
	before, userBefore := list(), f.get(t, bearer, "users/"+danID, nil).body["etag"]
	if list() != before {
		t.Fatal("list etag changed without a change")
	}
	u, _ := f.c.User(danID)
	u.Suspended = true
	f.c.PutUser(u)
	if list() == before || f.get(t, bearer, "users/"+danID, nil).body["etag"] == userBefore {
		t.Fatal("etags did not change with the user")
	}
	if r := f.get(t, bearer, "users/"+danID, nil, "If-None-Match", userBefore.(string)); r.status != 200 {
		t.Fatalf("changed user answered %d", r.status)
	}
}

func TestFieldsPartialResponse(t *testing.T) {
	f := newFixture(t)
	bearer := f.bearer(t)
	r := f.get(t, bearer, "users", url.Values{"customer": {"my_customer"}, "maxResults": {"1"},
		"fields": {"nextPageToken,users(id,name/givenName,suspended)"}})
	if r.status != 200 || r.body["nextPageToken"] == nil || r.body["kind"] != nil {
		t.Fatalf("%d %v", r.status, r.body)
	}
	u := r.body["users"].([]any)[0].(map[string]any)
	if len(u) != 3 || u["id"] != adminID || fmt.Sprint(u["name"]) != "map[givenName:Ada]" {
		t.Fatalf("user %v", u)
	}
}

// Pages are cut from the order fixed at the first page: a user deleted
// mid-enumeration is left out of the later pages, one added is not listed,
// nothing is listed twice, and the next enumeration sees the new state.
func TestMutateBetweenPages(t *testing.T) {
	f := newFixture(t)
	users := addUsers(f, 6)
	bearer := f.bearer(t)
	last := users[len(users)-1]
	f.c.MutateBetweenPages(func() {
		f.c.DeleteUser(last)
		f.c.PutUser(User{ID: "300000000000000000000", PrimaryEmail: "aaa-new@example.test"})
	})
	q := url.Values{"customer": {"my_customer"}, "maxResults": {"2"}}
	during, _ := f.listAll(t, bearer, "users", "users", q)
	if slices.Contains(during, last) || slices.Contains(during, "300000000000000000000") || len(during) != 8 {
		t.Fatalf("during: %v", during)
	}
	after, _ := f.listAll(t, bearer, "users", "users", q)
	if slices.Contains(after, last) || !slices.Contains(after, "300000000000000000000") || len(after) != 9 {
		t.Fatalf("after: %v", after)
	}
}
