package fakegoogle

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/dirgate/dirgate/internal/fakecloud"
)

func TestJWTBearerThroughClientLibrary(t *testing.T) {
	f := newFixture(t)
	noDWD, _ := f.c.ServiceAccountKey(t)
	userOnly, _ := f.c.ServiceAccountKey(t, ScopeUserReadonly)
	tests := []struct {
		name    string
		key     []byte
		subject string
		scopes  []string
		want    string // substring of the error, "" for success
	}{
		{"delegated", f.key, "admin@example.test", allScopes, ""},
		{"subject by ID", f.key, adminID, []string{ScopeUserReadonly}, ""},
		{"no delegation", noDWD, "admin@example.test", []string{ScopeUserReadonly}, "unauthorized_client"},
		{"scope not delegated", userOnly, "admin@example.test", allScopes, "unauthorized_client"},
		{"unknown subject", f.key, "nobody@example.test", allScopes, "Invalid email or User ID"},
		{"no subject needs no delegation", noDWD, "", []string{ScopeUserReadonly}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := f.token(t, tc.key, tc.subject, tc.scopes...)
			if tc.want == "" {
				if err != nil || !strings.HasPrefix(tok.AccessToken, "ya29.") {
					t.Fatalf("token = %v, %v", tok, err)
				}
				return
			}
			var re *oauth2.RetrieveError
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(tc.want, "unauthorized_client") && (!asRetrieve(err, &re) || re.Response.StatusCode != 401) {
				t.Fatalf("unauthorized_client must be 401: %v", err)
			}
		})
	}
}

func asRetrieve(err error, re **oauth2.RetrieveError) bool {
	r, ok := err.(*oauth2.RetrieveError)
	if !ok {
		return false
	}
	*re = r
	return true
}

func TestJWTBearerRefusals(t *testing.T) {
	f := newFixture(t)
	key, email := keyOf(t, f.key)
	now := time.Now()
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{"iss": email, "sub": "admin@example.test", "scope": strings.Join(allScopes, " "),
			"aud": f.c.TokenURL(), "iat": now.Add(-10 * time.Second).Unix(), "exp": now.Add(50 * time.Minute).Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	assertion := func(mod func(map[string]any)) string { return fakecloud.SignJWT(key, claims(mod)) }
	form := func(a string) url.Values { return url.Values{"grant_type": {JWTBearerGrant}, "assertion": {a}} }
	stranger := fakecloud.Key{ID: key.ID, Private: fakecloud.SharedKey().Private}
	tests := []struct {
		name        string
		form        url.Values
		contentType string
		status      int
		err, desc   string
	}{
		{"ok", form(assertion(nil)), "", 200, "", ""},
		{"wrong content type", form(assertion(nil)), "application/json", 400, "invalid_request", "grant_type"},
		{"no grant type", url.Values{"assertion": {assertion(nil)}}, "", 400, "invalid_request", "grant_type"},
		{"wrong grant type", url.Values{"grant_type": {"client_credentials"}}, "", 400, "unsupported_grant_type", "client_credentials"},
		{"no assertion", url.Values{"grant_type": {JWTBearerGrant}}, "", 400, "invalid_request", "assertion"},
		{"not a JWT", form("nonsense"), "", 400, "invalid_grant", descBadSignature},
		{"bad signature", form(fakecloud.SignJWT(stranger, claims(nil))), "", 400, "invalid_grant", descBadSignature},
		{"unknown issuer", form(assertion(func(c map[string]any) { c["iss"] = "x@fake-project.iam.gserviceaccount.com" })), "", 400, "invalid_grant", descBadSignature},
		{"wrong audience", form(assertion(func(c map[string]any) { c["aud"] = "https://elsewhere.test/token" })), "", 400, "invalid_grant", "audience"},
		{"too long-lived", form(assertion(func(c map[string]any) { c["exp"] = now.Add(2 * time.Hour).Unix() })), "", 400, "invalid_grant", "short-lived"},
		{"expired", form(assertion(func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
		})), "", 400, "invalid_grant", "short-lived"},
		{"issued in the future", form(assertion(func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(30*time.Minute).Unix(), now.Add(80*time.Minute).Unix()
		})), "", 400, "invalid_grant", "short-lived"},
		{"no exp", form(assertion(func(c map[string]any) { delete(c, "exp") })), "", 400, "invalid_grant", "short-lived"},
		{"no scope", form(assertion(func(c map[string]any) { delete(c, "scope") })), "", 400, "invalid_scope", "scope"},
		{"scope not delegated", form(assertion(func(c map[string]any) { c["scope"] = ScopeUser })), "", 401, "unauthorized_client", descUnauthorizedClient},
		{"unknown subject", form(assertion(func(c map[string]any) { c["sub"] = "ghost@example.test" })), "", 400, "invalid_grant", descInvalidSubject},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.contentType
			if ct == "" {
				ct = "application/x-www-form-urlencoded"
			}
			r := f.postForm(t, tc.form, ct)
			if r.status != tc.status {
				t.Fatalf("status %d %v, want %d", r.status, r.body, tc.status)
			}
			if tc.status == 200 {
				if r.body["token_type"] != "Bearer" || r.body["expires_in"] != float64(3599) {
					t.Fatalf("body %v", r.body)
				}
				return
			}
			if r.body["error"] != tc.err || !strings.Contains(r.body["error_description"].(string), tc.desc) {
				t.Fatalf("body %v, want %s with %q", r.body, tc.err, tc.desc)
			}
		})
	}
}

// The fake remembers each token's subject, scopes and expiry (on the fake
// clock): an expired one is refused, a user-scoped one cannot read
// groups, and a token without a subject is not an admin.
func TestAccessTokenRemembered(t *testing.T) {
	f := newFixture(t)
	f.c.SetAccessTokenLifetime(time.Minute)
	userTok, err := f.token(t, f.key, "admin@example.test", ScopeUserReadonly)
	if err != nil {
		t.Fatal(err)
	}
	saTok, err := f.token(t, f.key, "", allScopes...)
	if err != nil {
		t.Fatal(err)
	}
	danTok, err := f.token(t, f.key, "dan@example.test", allScopes...)
	if err != nil {
		t.Fatal(err)
	}
	cust := url.Values{"customer": {"my_customer"}}
	checks := []struct {
		name, bearer, path string
		status             int
		reason             string
	}{
		{"users with user scope", userTok.AccessToken, "users", 200, ""},
		{"groups with user scope", userTok.AccessToken, "groups", 403, "insufficientPermissions"},
		{"members with user scope", userTok.AccessToken, "groups/grp001/members", 403, "insufficientPermissions"},
		{"service account itself", saTok.AccessToken, "users", 403, "forbidden"},
		{"non-admin subject", danTok.AccessToken, "users", 403, "forbidden"},
		{"no token", "", "users", 401, "required"},
		{"unknown token", "ya29.forged", "users", 401, "authError"},
	}
	for _, tc := range checks {
		t.Run(tc.name, func(t *testing.T) {
			r := f.get(t, tc.bearer, tc.path, cust)
			if r.status != tc.status || (tc.reason != "" && r.reason() != tc.reason) {
				t.Fatalf("%d %v, want %d %s", r.status, r.body, tc.status, tc.reason)
			}
			if tc.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("401 without WWW-Authenticate: %v", r.header)
			}
		})
	}
	f.clk.Advance(time.Minute)
	if r := f.get(t, userTok.AccessToken, "users", cust); r.status != http.StatusUnauthorized || r.reason() != "authError" {
		t.Fatalf("expired token: %d %v", r.status, r.body)
	}
}

func TestRevokedDelegationAndDisabledAPI(t *testing.T) {
	f := newFixture(t)
	key, clientID := f.c.ServiceAccountKey(t, allScopes...)
	if _, err := f.token(t, key, "admin@example.test", allScopes...); err != nil {
		t.Fatal(err)
	}
	f.c.SetDelegation(clientID, ScopeUserReadonly)
	if _, err := f.token(t, key, "admin@example.test", allScopes...); err == nil || !strings.Contains(err.Error(), "unauthorized_client") {
		t.Fatalf("narrowed delegation: %v", err)
	}
	f.c.SetDelegation(clientID)
	if _, err := f.token(t, key, "admin@example.test", ScopeUserReadonly); err == nil || !strings.Contains(err.Error(), "unauthorized_client") {
		t.Fatalf("removed delegation: %v", err)
	}
	bearer := f.bearer(t)
	f.c.DisableAPI(true)
	r := f.get(t, bearer, "users", url.Values{"customer": {"my_customer"}})
	if r.status != 403 || r.reason() != "accessNotConfigured" {
		t.Fatalf("disabled API: %d %v", r.status, r.body)
	}
}
