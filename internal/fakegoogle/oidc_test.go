package fakegoogle

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
)

const (
	clientID    = "dirgate-client"
	secret      = "s3cret"
	redirectURI = "https://dirgate.example.test/callback"
	verifier    = "a-verifier-of-enough-length-for-pkce-0123456789"
)

func challenge(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func authParams() url.Values {
	return url.Values{"client_id": {clientID}, "redirect_uri": {redirectURI}, "response_type": {"code"},
		"scope": {"openid email profile"}, "state": {"st"}, "nonce": {"n0nce"}, "hd": {"example.test"},
		"code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}}
}

// authorize sends the browser's request; it returns the status and, for a
// redirect, the query it sends the browser back with.
func (f *fixture) authorize(t *testing.T, q url.Values) (int, url.Values) {
	t.Helper()
	cl := f.c.HTTPClient()
	cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := cl.Get(f.c.IssuerURL() + "/o/oauth2/v2/auth?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return resp.StatusCode, nil
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), redirectURI) {
		t.Fatalf("redirect to %q", resp.Header.Get("Location"))
	}
	return resp.StatusCode, loc.Query()
}

func (f *fixture) redeem(t *testing.T, code string, mod func(url.Values)) reply {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI},
		"client_id": {clientID}, "client_secret": {secret}, "code_verifier": {verifier}}
	if mod != nil {
		mod(form)
	}
	return f.postForm(t, form, "application/x-www-form-urlencoded")
}

func oidcFixture(t *testing.T) *fixture {
	f := newFixture(t)
	f.c.AddOAuthClient(clientID, secret, redirectURI)
	return f
}

// The whole flow, verified by the OIDC library a relying party uses:
// discovery, JWKS (across a key rotation), the ID token's claims.
func TestSignInWithGoogle(t *testing.T) {
	f := oidcFixture(t)
	provider, err := oidc.NewProvider(oidc.ClientContext(f.ctx(), f.c.HTTPClient()), f.c.IssuerURL())
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	verify := provider.Verifier(&oidc.Config{ClientID: clientID, Now: f.clk.Now}).Verify
	signIn := func(who func()) map[string]any {
		who()
		status, back := f.authorize(t, authParams())
		if status != http.StatusFound || back.Get("state") != "st" || back.Get("code") == "" {
			t.Fatalf("authorize: %d %v", status, back)
		}
		r := f.redeem(t, back.Get("code"), nil)
		if r.status != 200 {
			t.Fatalf("token: %d %v", r.status, r.body)
		}
		tok, err := verify(oidc.ClientContext(f.ctx(), f.c.HTTPClient()), r.body["id_token"].(string))
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		var claims map[string]any
		if err := tok.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		return claims
	}
	claims := signIn(func() { f.c.SignInAs(danID) })
	want := map[string]any{"iss": f.c.IssuerURL(), "aud": clientID, "sub": danID, "email": "dan@example.test",
		"email_verified": true, "hd": "example.test", "name": "Dan Smith", "given_name": "Dan", "family_name": "Smith", "nonce": "n0nce"}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("%s = %v, want %v", k, claims[k], v)
		}
	}
	f.c.RotateSigningKey()
	consumer := signIn(func() { f.c.SignInConsumer("someone@gmail.test") })
	if _, has := consumer["hd"]; has || consumer["email"] != "someone@gmail.test" || consumer["sub"] == danID {
		t.Fatalf("consumer claims %v", consumer)
	}
	if hints := f.c.HDHints(); len(hints) != 2 || hints[0] != "example.test" {
		t.Fatalf("hd hints %v", hints)
	}
	f.c.SignWithUnpublishedKey(true)
	f.c.SignInAs(danID)
	_, back := f.authorize(t, authParams())
	r := f.redeem(t, back.Get("code"), nil)
	if _, err := verify(oidc.ClientContext(f.ctx(), f.c.HTTPClient()), r.body["id_token"].(string)); err == nil {
		t.Fatal("a token signed with an unpublished key verified")
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	f := oidcFixture(t)
	f.c.SignInAs(danID)
	tests := []struct {
		name   string
		mod    func(url.Values)
		setup  func()
		status int    // 400: an error page, no redirect
		err    string // the error sent back to the redirect URI
	}{
		{"unknown client", func(q url.Values) { q.Set("client_id", "other") }, nil, 400, ""},
		{"redirect not exact", func(q url.Values) { q.Set("redirect_uri", redirectURI+"/") }, nil, 400, ""},
		{"response_type token", func(q url.Values) { q.Set("response_type", "token") }, nil, 302, "unsupported_response_type"},
		{"no openid", func(q url.Values) { q.Set("scope", "email") }, nil, 302, "invalid_scope"},
		{"no state", func(q url.Values) { q.Del("state") }, nil, 302, "invalid_request"},
		{"no nonce", func(q url.Values) { q.Del("nonce") }, nil, 302, "invalid_request"},
		{"plain PKCE", func(q url.Values) { q.Set("code_challenge_method", "plain") }, nil, 302, "invalid_request"},
		{"no PKCE", func(q url.Values) { q.Del("code_challenge") }, nil, 302, "invalid_request"},
		{"FailSignIn", nil, func() { f.c.FailSignIn("access_denied") }, 302, "access_denied"},
		{"suspended user", nil, func() { f.c.SignInAs(eveID) }, 302, "access_denied"},
		{"unknown user", nil, func() { f.c.SignInAs("999") }, 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.c.SignInAs(danID)
			if tc.setup != nil {
				tc.setup()
			}
			q := authParams()
			if tc.mod != nil {
				tc.mod(q)
			}
			status, back := f.authorize(t, q)
			if status != tc.status || back.Get("error") != tc.err || back.Get("code") != "" {
				t.Fatalf("%d %v, want %d %q", status, back, tc.status, tc.err)
			}
		})
	}
}

func TestCodeRedemptionRefusals(t *testing.T) {
	f := oidcFixture(t)
	f.c.SignInAs(danID)
	tests := []struct {
		name   string
		mod    func(url.Values)
		status int
		err    string
	}{
		{"wrong secret", func(v url.Values) { v.Set("client_secret", "nope") }, 401, "invalid_client"},
		{"no client", func(v url.Values) { v.Del("client_id") }, 400, "invalid_request"},
		{"wrong verifier", func(v url.Values) { v.Set("code_verifier", verifier+"x") }, 400, "invalid_grant"},
		{"no verifier", func(v url.Values) { v.Del("code_verifier") }, 400, "invalid_grant"},
		{"other redirect", func(v url.Values) { v.Set("redirect_uri", redirectURI+"?x=1") }, 400, "redirect_uri_mismatch"},
		{"unknown code", func(v url.Values) { v.Set("code", "4/forged") }, 400, "invalid_grant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, back := f.authorize(t, authParams())
			r := f.redeem(t, back.Get("code"), tc.mod)
			if r.status != tc.status || r.body["error"] != tc.err {
				t.Fatalf("%d %v, want %d %s", r.status, r.body, tc.status, tc.err)
			}
		})
	}
	_, back := f.authorize(t, authParams())
	if r := f.redeem(t, back.Get("code"), nil); r.status != 200 {
		t.Fatalf("first redemption: %d %v", r.status, r.body)
	}
	if r := f.redeem(t, back.Get("code"), nil); r.status != 400 || r.body["error"] != "invalid_grant" {
		t.Fatalf("second redemption: %d %v", r.status, r.body)
	}
	// An ID-token flow's access token is not a Directory API token.
	_, back = f.authorize(t, authParams())
	r := f.redeem(t, back.Get("code"), nil)
	if d := f.get(t, r.body["access_token"].(string), "users", url.Values{"customer": {"my_customer"}}); d.status != 401 {
		t.Fatalf("sign-in token on the Directory API: %d", d.status)
	}
}
