package fakegoogle

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/dirgate/dirgate/clock"
	"github.com/dirgate/dirgate/internal/fakecloud"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

var allScopes = []string{ScopeUserReadonly, ScopeGroupReadonly, ScopeGroupMemberReadonly}

const (
	adminID = "100000000000000000001"
	danID   = "100000000000000000002"
	eveID   = "100000000000000000003"
)

// fixture is the customer of the reference fixture: an admin, Dan (with
// aliases, in /Sales), Eve (suspended, in /Sales/EU), and two groups
// nesting each other with all four member types.
type fixture struct {
	c   *Customer
	clk *clock.Fake
	key []byte
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clk := clock.NewFake(t0)
	c := New(t, WithClock(clk), WithDomains("example.test", "alias.example.test"))
	c.PutUser(User{ID: adminID, PrimaryEmail: "admin@example.test", GivenName: "Ada", FamilyName: "Admin", IsAdmin: true})
	c.PutUser(User{ID: danID, PrimaryEmail: "dan@example.test", GivenName: "Dan", FamilyName: "Smith", OrgUnitPath: "/Sales",
		Aliases: []string{"d.smith@example.test"}, NonEditableAliases: []string{"dan@alias.example.test"}})
	c.PutUser(User{ID: eveID, PrimaryEmail: "eve@example.test", GivenName: "Eve", FamilyName: "Old", OrgUnitPath: "/Sales/EU", Suspended: true})
	c.PutGroup(Group{ID: "grp001", Email: "sales@example.test", Name: "Sales", Aliases: []string{"team-sales@example.test"}, Members: []Member{
		{ID: danID, Role: "OWNER", Type: "USER"},
		{Email: "sales-eu@example.test", Type: "GROUP"},
		{Email: "partner@external.test", Type: "EXTERNAL", Status: "ACTIVE"},
		{Type: "CUSTOMER"},
	}})
	c.PutGroup(Group{ID: "grp002", Email: "sales-eu@example.test", Name: "Sales EU", Members: []Member{
		{Email: "eve@example.test", Type: "USER"},
		{ID: "grp001", Type: "GROUP"}, // a loop
	}})
	key, _ := c.ServiceAccountKey(t, allScopes...)
	return &fixture{c: c, clk: clk, key: key}
}

// ctx carries the fake's HTTP client for x/oauth2.
func (f *fixture) ctx() context.Context {
	return context.WithValue(context.Background(), oauth2.HTTPClient, f.c.HTTPClient())
}

// token gets an access token for subject with scopes through the client
// library a connector uses, unmodified but for the subject.
func (f *fixture) token(t *testing.T, key []byte, subject string, scopes ...string) (*oauth2.Token, error) {
	t.Helper()
	cfg, err := google.JWTConfigFromJSON(key, scopes...)
	if err != nil {
		t.Fatalf("JWTConfigFromJSON: %v", err)
	}
	cfg.Subject = subject
	return cfg.TokenSource(f.ctx()).Token()
}

// bearer is an access token for the admin with all scopes.
func (f *fixture) bearer(t *testing.T) string {
	t.Helper()
	tok, err := f.token(t, f.key, "admin@example.test", allScopes...)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	return tok.AccessToken
}

// reply is a decoded Directory answer.
type reply struct {
	status int
	header http.Header
	body   map[string]any
}

// reason is the first error reason of an error body.
func (r reply) reason() string {
	e, _ := r.body["error"].(map[string]any)
	errs, _ := e["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	first, _ := errs[0].(map[string]any)
	return first["reason"].(string)
}

func (r reply) errorDomain() string {
	e, _ := r.body["error"].(map[string]any)
	first, _ := e["errors"].([]any)[0].(map[string]any)
	return first["domain"].(string)
}

// get sends a Directory GET of path (below the API base) with query.
func (f *fixture) get(t *testing.T, bearer, path string, query url.Values, hdr ...string) reply {
	t.Helper()
	u := f.c.DirectoryURL() + apiBase + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := f.c.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return decode(t, resp)
}

func decode(t *testing.T, resp *http.Response) reply {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &r.body); err != nil {
			t.Fatalf("body %q: %v", b, err)
		}
	}
	return r
}

// postForm posts a form to the token endpoint.
func (f *fixture) postForm(t *testing.T, form url.Values, contentType string) reply {
	t.Helper()
	body := form.Encode()
	if contentType == "application/json" {
		js, _ := json.Marshal(map[string]string{"grant_type": form.Get("grant_type"), "assertion": form.Get("assertion")})
		body = string(js)
	}
	resp, err := f.c.HTTPClient().Post(f.c.TokenURL(), contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return decode(t, resp)
}

// keyOf returns the signing key of a service-account key file.
func keyOf(t *testing.T, keyJSON []byte) (fakecloud.Key, string) {
	t.Helper()
	var kf struct{ PrivateKey, PrivateKeyID, ClientEmail string }
	if err := json.Unmarshal(keyJSON, &struct {
		PrivateKey   *string `json:"private_key"`
		PrivateKeyID *string `json:"private_key_id"`
		ClientEmail  *string `json:"client_email"`
	}{&kf.PrivateKey, &kf.PrivateKeyID, &kf.ClientEmail}); err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode([]byte(kf.PrivateKey))
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return fakecloud.Key{ID: kf.PrivateKeyID, Private: k.(*rsa.PrivateKey)}, kf.ClientEmail
}

// ids returns the "id" of each item (that has one) under key of a list page.
func ids(body map[string]any, key string) []string {
	items, _ := body[key].([]any)
	var out []string
	for _, it := range items {
		if id, ok := it.(map[string]any)["id"].(string); ok {
			out = append(out, id)
		}
	}
	return out
}

// listAll follows nextPageToken through every page of a list.
func (f *fixture) listAll(t *testing.T, bearer, path, key string, query url.Values) (all []string, pages int) {
	t.Helper()
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	for {
		r := f.get(t, bearer, path, q)
		if r.status != http.StatusOK {
			t.Fatalf("%s page %d: %d %v", path, pages, r.status, r.body)
		}
		pages++
		all = append(all, ids(r.body, key)...)
		next, _ := r.body["nextPageToken"].(string)
		if next == "" {
			return all, pages
		}
		q.Set("pageToken", next)
	}
}
