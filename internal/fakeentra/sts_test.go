package fakeentra

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const graphScope = "https://graph.microsoft.com/.default"

func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}

var aadstsDesc = regexp.MustCompile(`^AADSTS(\d+): `)

func TestClientCredentials(t *testing.T) {
	tn, _ := newTestTenant(t)
	tn.AddApp(App{ClientID: "app-plus", Secret: "a+b/c~d", Roles: allGraphs})
	tok := tn.tokenURL()
	cases := []struct {
		name        string
		url, ctype  string
		body        string
		basic       []string
		status      int
		err         string
		code        int
		wantToken   bool
		description string
	}{
		{name: "secret in body", body: form("grant_type", "client_credentials", "client_id", "app-1", "client_secret", "s3cret", "scope", graphScope), status: 200, wantToken: true},
		{name: "secret as HTTP Basic", body: form("grant_type", "client_credentials", "scope", graphScope), basic: []string{"app-1", "s3cret"}, status: 200, wantToken: true},
		{name: "tenant by verified domain", url: tn.AuthorityURL() + "/contoso.onmicrosoft.com/oauth2/v2.0/token", body: form("grant_type", "client_credentials", "client_id", "app-1", "client_secret", "s3cret", "scope", graphScope), status: 200, wantToken: true},
		{name: "wrong secret", body: form("grant_type", "client_credentials", "client_id", "app-1", "client_secret", "nope", "scope", graphScope), status: 401, err: "invalid_client", code: 7000215},
		{name: "form-encoded Basic secret", body: form("grant_type", "client_credentials", "scope", graphScope), basic: []string{"app-plus", url.QueryEscape("a+b/c~d")}, status: 200, wantToken: true},
		{name: "wrong Basic secret", body: form("grant_type", "client_credentials", "scope", graphScope), basic: []string{"app-1", "nope"}, status: 401, err: "invalid_client", code: 7000215},
		{name: "secret twice", body: form("grant_type", "client_credentials", "client_id", "app-1", "client_secret", "s3cret", "scope", graphScope), basic: []string{"app-1", "s3cret"}, status: 401, err: "invalid_client", code: 7000215},
		{name: "no credential", body: form("grant_type", "client_credentials", "client_id", "app-1", "scope", graphScope), status: 401, err: "invalid_client", code: 7000218},
		{name: "unknown app", body: form("grant_type", "client_credentials", "client_id", "nobody", "client_secret", "s3cret", "scope", graphScope), status: 400, err: "unauthorized_client", code: 700016},
		{name: "unknown tenant", url: tn.AuthorityURL() + "/fabrikam.example/oauth2/v2.0/token", body: form("grant_type", "client_credentials", "client_id", "app-1", "client_secret", "s3cret", "scope", graphScope), status: 400, err: "invalid_request", code: 90002},
		{name: "common", url: tn.AuthorityURL() + "/common/oauth2/v2.0/token", body: form("grant_type", "client_credentials", "client_id", "app-1", "client_secret", "s3cret", "scope", graphScope), status: 400, err: "invalid_request", code: 9001023},
		{name: "organizations", url: tn.AuthorityURL() + "/organizations/oauth2/v2.0/token", body: form("grant_type", "client_credentials", "client_id", "app-1", "client_secret", "s3cret", "scope", graphScope), status: 400, err: "invalid_request", code: 9001023},
		{name: "missing scope", body: form("grant_type", "client_credentials", "client_id", "app-1", "client_secret", "s3cret"), status: 400, err: "invalid_request", code: 900144},
		{name: "delegated scope", body: form("grant_type", "client_credentials", "client_id", "app-1", "client_secret", "s3cret", "scope", "User.Read"), status: 400, err: "invalid_scope", code: 70011},
		{name: "two scopes", body: form("grant_type", "client_credentials", "client_id", "app-1", "client_secret", "s3cret", "scope", graphScope+" openid"), status: 400, err: "invalid_scope", code: 70011},
		{name: "usgov scope on global", body: form("grant_type", "client_credentials", "client_id", "app-1", "client_secret", "s3cret", "scope", "https://graph.microsoft.us/.default"), status: 400, err: "invalid_scope", code: 70011},
		{name: "missing client_id", body: form("grant_type", "client_credentials", "client_secret", "s3cret", "scope", graphScope), status: 400, err: "invalid_request", code: 900144},
		{name: "missing grant_type", body: form("client_id", "app-1", "client_secret", "s3cret", "scope", graphScope), status: 400, err: "invalid_request", code: 900144},
		{name: "unknown grant type", body: form("grant_type", "magic", "client_id", "app-1"), status: 400, err: "unsupported_grant_type", code: 70003},
		{name: "JSON body", ctype: "application/json", body: `{"grant_type":"client_credentials","client_id":"app-1","client_secret":"s3cret","scope":"` + graphScope + `"}`, status: 400, err: "invalid_request", code: 900144},
		{name: "no content type", ctype: "-", body: form("grant_type", "client_credentials", "client_id", "app-1", "client_secret", "s3cret", "scope", graphScope), status: 400, err: "invalid_request", code: 900144},
		{name: "public client sends a secret", body: form("grant_type", "client_credentials", "client_id", "app-pub", "client_secret", "x", "scope", graphScope), status: 400, err: "invalid_client", code: 700025},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, ct := tok, formType
			if c.url != "" {
				u = c.url
			}
			if c.ctype == "-" {
				ct = ""
			} else if c.ctype != "" {
				ct = c.ctype
			}
			r := postForm(t, tn, u, ct, c.body, c.basic...)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %v", r.status, c.status, r.body)
			}
			if c.wantToken {
				checkAppToken(t, tn, r)
				return
			}
			checkSTSError(t, tn, r, c.err, c.code)
		})
	}
}

// checkSTSError checks the documented error body shape.
func checkSTSError(t *testing.T, tn *Tenant, r stsReply, oauthErr string, code int) {
	t.Helper()
	if r.body["error"] != oauthErr || r.code() != code {
		t.Fatalf("error %v codes %v, want %s [%d]", r.body["error"], r.body["error_codes"], oauthErr, code)
	}
	desc, _ := r.body["error_description"].(string)
	if m := aadstsDesc.FindStringSubmatch(desc); m == nil || m[1] != strconv.Itoa(code) {
		t.Errorf("error_description %q does not start with AADSTS%d", desc, code)
	}
	for _, k := range []string{"timestamp", "trace_id", "correlation_id", "error_uri"} {
		if s, _ := r.body[k].(string); s == "" {
			t.Errorf("error body lacks %s: %v", k, r.body)
		}
	}
	if !strings.HasPrefix(r.body["error_uri"].(string), tn.AuthorityURL()+"/error?code=") {
		t.Errorf("error_uri %v", r.body["error_uri"])
	}
}

func checkAppToken(t *testing.T, tn *Tenant, r stsReply) {
	t.Helper()
	if r.body["token_type"] != "Bearer" || r.body["expires_in"] != float64(3599) {
		t.Fatalf("token body %v", r.body)
	}
	tok, err := jwt.ParseSigned(r.body["access_token"].(string), []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Aud   string   `json:"aud"`
		Tid   string   `json:"tid"`
		Roles []string `json:"roles"`
		Exp   int64    `json:"exp"`
	}
	if err := tok.Claims(tn.PublicKey(), &c); err != nil {
		t.Fatal(err)
	}
	if c.Aud != "https://graph.microsoft.com" || c.Tid != tn.ID() || len(c.Roles) != 2 || c.Exp != t0.Add(3599*time.Second).Unix() {
		t.Fatalf("claims %+v", c)
	}
}

func TestClientAssertion(t *testing.T) {
	tn, _ := newTestTenant(t)
	cs := appCerts(t)
	good := assertionOpts{alg: jose.RS256, key: cs[0].key, cert: cs[0].cert, thumb: "x5t", aud: tn.tokenURL(),
		iss: "app-1", sub: "app-1", exp: 5 * time.Minute}
	cases := []struct {
		name   string
		mod    func(o *assertionOpts)
		atype  string
		status int
		code   int
	}{
		{name: "RS256 x5t", mod: func(*assertionOpts) {}, status: 200},
		{name: "PS256 x5t#S256", mod: func(o *assertionOpts) { o.alg, o.thumb = jose.PS256, "x5t#S256" }, status: 200},
		{name: "wrong aud", mod: func(o *assertionOpts) { o.aud = tn.AuthorityURL() + "/common/oauth2/v2.0/token" }, status: 401, code: 50012},
		{name: "wrong iss", mod: func(o *assertionOpts) { o.iss = "app-2" }, status: 401, code: 50012},
		{name: "wrong sub", mod: func(o *assertionOpts) { o.sub = "someone" }, status: 401, code: 50012},
		{name: "no jti", mod: func(o *assertionOpts) { o.jti = "-" }, status: 401, code: 50012},
		{name: "expired", mod: func(o *assertionOpts) { o.exp = -time.Second }, status: 401, code: 700024},
		{name: "exp too far ahead", mod: func(o *assertionOpts) { o.exp = 11 * time.Minute }, status: 401, code: 700024},
		{name: "nbf in the future", mod: func(o *assertionOpts) { o.nbf = time.Minute }, status: 401, code: 700024},
		{name: "signed by another key", mod: func(o *assertionOpts) { o.key = cs[1].key }, status: 401, code: 700027},
		{name: "thumbprint of another cert", mod: func(o *assertionOpts) { o.cert = cs[1].cert; o.key = cs[1].key }, status: 401, code: 700027},
		{name: "no thumbprint", mod: func(o *assertionOpts) { o.thumb = "" }, status: 401, code: 700027},
		{name: "payload swapped after signing", mod: func(o *assertionOpts) { o.corruptPayload = true }, status: 401, code: 700027},
		{name: "wrong assertion type", mod: func(*assertionOpts) {}, atype: "urn:other", status: 400, code: 50027},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := good
			o.jti = "jti-" + strconv.Itoa(i+1)
			c.mod(&o)
			if o.jti == "-" {
				o.jti = ""
			}
			at := AssertionType
			if c.atype != "" {
				at = c.atype
			}
			r := postForm(t, tn, tn.tokenURL(), formType, form("grant_type", "client_credentials", "client_id", "app-1",
				"client_assertion_type", at, "client_assertion", makeAssertion(t, o), "scope", graphScope))
			if r.status != c.status || r.code() != c.code {
				t.Fatalf("got %d %v, want %d [%d]", r.status, r.body, c.status, c.code)
			}
			if c.status == 200 {
				checkAppToken(t, tn, r)
			}
		})
	}
	t.Run("replayed jti", func(t *testing.T) {
		o := good
		o.jti = "once"
		a := makeAssertion(t, o)
		body := form("grant_type", "client_credentials", "client_id", "app-1", "client_assertion_type", AssertionType, "client_assertion", a, "scope", graphScope)
		if r := postForm(t, tn, tn.tokenURL(), formType, body); r.status != 200 {
			t.Fatalf("first use: %d %v", r.status, r.body)
		}
		r := postForm(t, tn, tn.tokenURL(), formType, body)
		checkSTSError(t, tn, r, "invalid_client", 50012)
	})
}

func TestPasswordGrant(t *testing.T) {
	tn, _ := newTestTenant(t, WithLockoutThreshold(3))
	tn.AddApp(App{ClientID: "app-noconsent", PublicClient: true, ConsentMissing: true})
	for _, u := range []User{
		{ID: "u-ok", UserPrincipalName: "ann@contoso.example", DisplayName: "Ann", AccountEnabled: true, Password: "pw"},
		{ID: "u-off", UserPrincipalName: "off@contoso.example", Password: "pw"},
		{ID: "u-lock", UserPrincipalName: "lock@contoso.example", AccountEnabled: true, Password: "pw", Locked: true},
		{ID: "u-exp", UserPrincipalName: "exp@contoso.example", AccountEnabled: true, Password: "pw", PasswordExpired: true},
		{ID: "u-mfa", UserPrincipalName: "mfa@contoso.example", AccountEnabled: true, Password: "pw", MFARequired: true},
		{ID: "u-ca", UserPrincipalName: "ca@contoso.example", AccountEnabled: true, Password: "pw", BlockedByConditionalAccess: true},
		{ID: "u-fed", UserPrincipalName: "fed@contoso.example", AccountEnabled: true, Password: "pw", Federated: true},
		{ID: "u-gone", UserPrincipalName: "gone@contoso.example", AccountEnabled: true, Password: "pw"},
		{ID: "u-lockme", UserPrincipalName: "lockme@contoso.example", AccountEnabled: true, Password: "pw"},
	} {
		tn.PutUser(u)
	}
	tn.SoftDelete("u-gone")
	ropc := func(app, user, pw string, extra ...string) string {
		return form(append([]string{"grant_type", "password", "client_id", app, "username", user, "password", pw, "scope", "openid offline_access"}, extra...)...)
	}
	cases := []struct {
		name   string
		tenant string
		body   string
		status int
		err    string
		code   int
	}{
		{name: "success", body: ropc("app-pub", "ANN@contoso.example", "pw"), status: 200},
		{name: "success, confidential app with secret", body: ropc("app-1", "ann@contoso.example", "pw", "client_secret", "s3cret"), status: 200},
		{name: "success via organizations", tenant: "organizations", body: ropc("app-pub", "ann@contoso.example", "pw"), status: 200},
		{name: "wrong password", body: ropc("app-pub", "ann@contoso.example", "bad"), status: 400, err: "invalid_grant", code: 50126},
		{name: "federated", body: ropc("app-pub", "fed@contoso.example", "pw"), status: 400, err: "invalid_grant", code: 50126},
		{name: "unknown user", body: ropc("app-pub", "who@contoso.example", "pw"), status: 400, err: "invalid_grant", code: 50034},
		{name: "soft-deleted user", body: ropc("app-pub", "gone@contoso.example", "pw"), status: 400, err: "invalid_grant", code: 50034},
		{name: "disabled", body: ropc("app-pub", "off@contoso.example", "pw"), status: 400, err: "invalid_grant", code: 50057},
		{name: "locked", body: ropc("app-pub", "lock@contoso.example", "pw"), status: 400, err: "invalid_grant", code: 50053},
		{name: "password expired", body: ropc("app-pub", "exp@contoso.example", "pw"), status: 400, err: "invalid_grant", code: 50055},
		{name: "MFA required", body: ropc("app-pub", "mfa@contoso.example", "pw"), status: 400, err: "interaction_required", code: 50076},
		{name: "conditional access", body: ropc("app-pub", "ca@contoso.example", "pw"), status: 400, err: "invalid_grant", code: 53003},
		{name: "consent missing", body: ropc("app-noconsent", "ann@contoso.example", "pw"), status: 400, err: "invalid_grant", code: 65001},
		{name: "unknown app", body: ropc("nobody", "ann@contoso.example", "pw"), status: 400, err: "unauthorized_client", code: 700016},
		{name: "confidential app without credential", body: ropc("app-1", "ann@contoso.example", "pw"), status: 401, err: "invalid_client", code: 7000218},
		{name: "confidential app, wrong secret", body: ropc("app-1", "ann@contoso.example", "pw", "client_secret", "x"), status: 401, err: "invalid_client", code: 7000215},
		{name: "public app sends a secret", body: ropc("app-pub", "ann@contoso.example", "pw", "client_secret", "x"), status: 400, err: "invalid_client", code: 700025},
		{name: "unknown tenant", tenant: "nowhere.example", body: ropc("app-pub", "ann@contoso.example", "pw"), status: 400, err: "invalid_request", code: 90002},
		{name: "common", tenant: "common", body: ropc("app-pub", "ann@contoso.example", "pw"), status: 400, err: "invalid_request", code: 9001023},
		{name: "consumers", tenant: "consumers", body: ropc("app-pub", "ann@contoso.example", "pw"), status: 400, err: "invalid_request", code: 9001023},
		{name: "missing password", body: form("grant_type", "password", "client_id", "app-pub", "username", "ann@contoso.example", "scope", "openid"), status: 400, err: "invalid_request", code: 900144},
		{name: "missing scope", body: form("grant_type", "password", "client_id", "app-pub", "username", "ann@contoso.example", "password", "pw"), status: 400, err: "invalid_request", code: 900144},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tenant := tn.ID()
			if c.tenant != "" {
				tenant = c.tenant
			}
			r := postForm(t, tn, tn.AuthorityURL()+"/"+tenant+"/oauth2/v2.0/token", formType, c.body)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %v", r.status, c.status, r.body)
			}
			if c.status == 200 {
				if r.body["access_token"] == nil || r.body["id_token"] == nil {
					t.Fatalf("success body %v", r.body)
				}
				return
			}
			checkSTSError(t, tn, r, c.err, c.code)
		})
	}
	t.Run("smart lockout", func(t *testing.T) {
		for i := range 3 {
			r := postForm(t, tn, tn.tokenURL(), formType, ropc("app-pub", "lockme@contoso.example", "bad"))
			checkSTSError(t, tn, r, "invalid_grant", 50126)
			if got := tn.PasswordFailures("u-lockme"); got != i+1 {
				t.Fatalf("failures %d, want %d", got, i+1)
			}
		}
		r := postForm(t, tn, tn.tokenURL(), formType, ropc("app-pub", "lockme@contoso.example", "pw"))
		checkSTSError(t, tn, r, "invalid_grant", 50053)
	})
}

func TestTokenEndpointRefusesGET(t *testing.T) {
	tn, _ := newTestTenant(t)
	resp, err := tn.HTTPClient().Get(tn.tokenURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("GET token endpoint: %d", resp.StatusCode)
	}
}

func TestTLSAndUSGov(t *testing.T) {
	tn, _ := newTestTenant(t, WithTLS(), WithCloud("usgov"))
	if !strings.HasPrefix(tn.AuthorityURL(), "https://") || !strings.HasPrefix(tn.GraphURL(), "https://") || len(tn.CACertPEM()) == 0 {
		t.Fatalf("WithTLS: %s %s", tn.AuthorityURL(), tn.GraphURL())
	}
	global := postForm(t, tn, tn.tokenURL(), formType, form("grant_type", "client_credentials", "client_id", "app-1", "client_secret", "s3cret", "scope", graphScope))
	checkSTSError(t, tn, global, "invalid_scope", 70011)
	r := postForm(t, tn, tn.tokenURL(), formType, form("grant_type", "client_credentials", "client_id", "app-1", "client_secret", "s3cret", "scope", "https://graph.microsoft.us/.default"))
	if r.status != 200 {
		t.Fatalf("usgov token: %d %v", r.status, r.body)
	}
	if status, body, _ := graphGet(t, tn, r.body["access_token"].(string), usersDelta(tn)); status != 200 {
		t.Fatalf("usgov Graph over TLS: %d %v", status, body)
	}
}
